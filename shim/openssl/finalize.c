/*
 * The end of an OpenSSL handshake on a socket: what OpenSSL's own kTLS
 * installed, checked against the kernel (getsockopt); what it left, taken
 * by the shim's engine where configured; the outcome published
 * (session/publish.c). Whoever sets KTLS_FD_FINAL first does it, without
 * a lock.
 */
#define _GNU_SOURCE
#include "openssl/session.h"

#include <openssl/obj_mac.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/policy.h"
#include "core/shim.h"
#include "core/stats.h"
#include "kernel/install.h"
#include "kernel/record_limit.h"
#include "kernel/uapi.h"
#include "kernel/zerocopy_ro.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/padding.h"
#include "openssl/record_layer.h"
#include "openssl/transport.h"
#include "session/publish.h"
#include "tls/record.h"

/* ex_data notes: an SSL without a socket BIO, counted once; an SSL whose
 * first handshake was settled. */
#define NOTE_COUNTED ((void *)1)
#define NOTE_FINAL ((void *)2)

static enum ktls_cipher cipher_of(SSL *s)
{
	const SSL_CIPHER *c = ktls_ossl.SSL_get_current_cipher(s);
	if (!c)
		return KTLS_CIPHER_NONE;
	switch (ktls_ossl.SSL_CIPHER_get_cipher_nid(c)) {
	case NID_aes_128_gcm:
		return KTLS_CIPHER_AES_128_GCM;
	case NID_aes_256_gcm:
		return KTLS_CIPHER_AES_256_GCM;
	case NID_chacha20_poly1305:
		return KTLS_CIPHER_CHACHA20_POLY1305;
	case NID_aes_128_ccm: {
		/* CCM_8 has an 8-byte tag the kernel does not do. */
		const char *n = ktls_ossl.SSL_CIPHER_get_name(c);
		if (n && (strstr(n, "CCM8") || strstr(n, "CCM_8")))
			return KTLS_CIPHER_NONE;
		return KTLS_CIPHER_AES_128_CCM;
	}
	default:
		return KTLS_CIPHER_NONE;
	}
}

/*
 * A handshake on an fd whose entry is already final means the number was
 * reused behind our back (closed through a path we do not see: fclose(),
 * close_range()) or the session renegotiates: either way start afresh.
 */
void ktls_sess_handshake_start(SSL *s)
{
	/* TLS 1.3 has no renegotiation: a "handshake" on a settled SSL is a
	 * post-handshake message (NewSessionTicket, KeyUpdate), and the
	 * session goes on as it was. */
	if (ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_note) == NOTE_FINAL &&
	    ktls_ossl.SSL_version(s) == TLS1_3_VERSION)
		return;
	struct ktls_fd *e = ktls_fd_get(ktls_ssl_sock_fd(ktls_ossl.SSL_get_wbio(s)));
	if (e && (atomic_load(&e->flags) & KTLS_FD_FINAL))
		ktls_fd_reset(e);
}

static enum ktls_reason explain(struct ktls_fd *e, int fd, int rx,
				unsigned version, enum ktls_cipher kc)
{
	unsigned f = atomic_load(&e->flags);
	/* core/cipher.c keeps TLS 1.3 CCM out of the shim's own engines, as
	 * OpenSSL 3.0 does; 3.2+ moves it itself (intact on 6.12 and 7.2),
	 * so there the cipher is never why a direction stayed. */
	enum ktls_reason p =
		ktls_ossl.rekeys_itself && kc == KTLS_CIPHER_AES_128_CCM
			? ktls_policy_config(rx, version, kc)
			: ktls_policy_check(rx, version, kc);

	if (p != KTLS_R_MOVED)
		return p;
	/* engine = shim drives 3.0/3.1's record layer, which 3.2 replaced:
	 * there nothing is asked to move (session.c's want_ktls). */
	if (ktls_ossl.rekeys_itself && ktls_cfg.engine == KTLS_ENGINE_SHIM)
		return KTLS_R_ENGINE_NEEDS_30;
	/* The record layer for a libssl without kTLS also needs 3.0/3.1's. */
	if (!ktls_ossl.modern ||
	    (ktls_ossl.rekeys_itself && !ktls_engine_lib_has_ktls()))
		return KTLS_R_LIB_NO_KTLS;
	if ((f & KTLS_FD_ULP_TRIED) && !(f & KTLS_FD_ULP))
		return ktls_reason_from_ulp_errno(atomic_load(&e->ulp_err));
	if (!(f & KTLS_FD_ULP_TRIED)) {
		enum ktls_reason r = ktls_check_socket(&ktls_sockops_sys, fd);
		return r != KTLS_R_MOVED ? r : KTLS_R_LIB_DECLINED;
	}
	if (f & (rx ? KTLS_FD_RX_TRIED : KTLS_FD_TX_TRIED)) {
		int err = atomic_load(rx ? &e->rx_err : &e->tx_err);
		if (err)
			return ktls_reason_from_install_errno(err);
	}
	if (rx && version == KTLS_TLS13 && !ktls_ossl.rekeys_itself)
		return KTLS_R_TLS13_RX_NEEDS_ENGINE;
	/* 3.2+ asked, and the setsockopt() hook said no: the gate's reason. */
	if (rx && version == KTLS_TLS13 && (f & KTLS_FD_RX_TRIED)) {
		enum ktls_reason g = ktls_sess_lib_rx_gate((uint16_t)version);
		if (g != KTLS_R_MOVED)
			return g;
	}
	return KTLS_R_LIB_DECLINED;
}

/*
 * OpenSSL's view (the BIO flag) and the kernel's (getsockopt) must agree:
 * if OpenSSL believes the kernel encrypts and it does not, the next write
 * is plaintext on the wire; the other way round, records get encrypted
 * twice. Either is a reason to stop sending, never to carry on.
 */
static enum ktls_reason verify(int fd, int dir, int lib_says, unsigned version,
			       enum ktls_cipher kc)
{
	int k = ktls_kernel_holds(&ktls_sockops_sys, fd, dir,
				  (uint16_t)version, kc);
	if (lib_says && k == 1)
		return KTLS_R_MOVED;
	if (!lib_says && k < 0)
		return KTLS_R_LIB_DECLINED; /* consistent; caller explains */
	return KTLS_R_VERIFY_FAILED;
}

/* verify(), and for TX also the peer's record size limit: a kernel that
 * took TLS_TX but not the limit would send records the peer refuses. */
static enum ktls_reason verify_dir(SSL *s, int fd, int rx, int lib_says,
				   unsigned version, enum ktls_cipher kc)
{
	enum ktls_reason r = verify(fd, rx ? TLS_RX : TLS_TX, lib_says,
				    version, kc);
	if (!rx && r == KTLS_R_MOVED &&
	    ktls_tx_limit_holds(&ktls_sockops_sys, fd, (uint16_t)version,
				ktls_engine_record_limit(s)) != 1)
		return KTLS_R_VERIFY_FAILED;
	return r;
}

/*
 * What OpenSSL left and the shim's engine can take: TLS 1.3 RX (auto), or
 * everything OpenSSL was not asked to move (shim); with libssl without
 * kTLS, both directions at once or neither. auto only from the callback at
 * the end of the handshake: then no record has been read under the new key
 * yet, so its sequence number is 0; shim counts records and knows it
 * anyway. Each direction it moved is verified like OpenSSL's.
 */
static void engine_takes(SSL *s, int fd, struct ktls_fd *e, int from_cb,
			 enum ktls_cipher kc, enum ktls_reason r[2],
			 int by_shim[2], int *poison, int *own)
{
	BIO *wb = ktls_ossl.SSL_get_wbio(s), *rb = ktls_ossl.SSL_get_rbio(s);
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	int all = ktls_engine_all();
	*own = all && !*poison && ktls_ssl_sock_fd(rb) == fd &&
	       ktls_engine_own();
	if (*own)
		ktls_engine_move_own(s, fd, e, kc, r, 0);
	for (int rx = 0; rx < 2; rx++) {
		if (!*own) {
			int take = r[rx] == KTLS_R_TLS13_RX_NEEDS_ENGINE ||
				   (all && r[rx] == KTLS_R_LIB_DECLINED);
			if (!take || *poison || (!from_cb && !all) ||
			    ktls_ssl_sock_fd(rx ? rb : wb) != fd)
				continue;
			r[rx] = ktls_engine_move(s, fd, e, kc, rx);
		}
		if (r[rx] != KTLS_R_MOVED)
			continue;
		by_shim[rx] = 1;
		r[rx] = verify_dir(s, fd, rx, 1, version, kc);
		if (r[rx] == KTLS_R_VERIFY_FAILED)
			*poison = 1;
	}
}

static const char *engine_name(int own, const int by_shim[2])
{
	return own && by_shim[1] ? "shim,record-layer:shim"
	       : ktls_engine_all() ? "shim"
	       : by_shim[1]        ? "openssl,rx:shim"
				   : "openssl";
}

static void finalize(SSL *s, int fd, struct ktls_fd *e, int from_cb)
{
	BIO *wb = ktls_ossl.SSL_get_wbio(s), *rb = ktls_ossl.SSL_get_rbio(s);
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	enum ktls_cipher kc = cipher_of(s);
	int lib_tx = ktls_ossl.BIO_ctrl(wb, BIO_CTRL_GET_KTLS_SEND, 0, NULL) > 0;
	int lib_rx = ktls_ssl_sock_fd(rb) == fd &&
		     ktls_ossl.BIO_ctrl(rb, BIO_CTRL_GET_KTLS_RECV, 0, NULL) > 0;
	enum ktls_reason r[2];
	int poison = 0, own = 0, by_shim[2] = { 0, 0 };

	for (int rx = 0; rx < 2; rx++) {
		r[rx] = verify_dir(s, fd, rx, rx ? lib_rx : lib_tx, version,
				   kc);
		if (r[rx] == KTLS_R_VERIFY_FAILED)
			poison = 1;
		else if (r[rx] != KTLS_R_MOVED)
			r[rx] = explain(e, fd, rx, version, kc);
	}
	engine_takes(s, fd, e, from_cb, kc, r, by_shim, &poison, &own);
	/* OpenSSL's own installer declines a session with a smaller limit
	 * (3.0-3.5), both ways: say why. */
	for (int rx = 0; rx < 2; rx++)
		if (r[rx] == KTLS_R_LIB_DECLINED &&
		    ktls_engine_record_limit(s) < KTLS_MAX_PLAINTEXT)
			r[rx] = KTLS_R_RECORD_SIZE_LIMITED;
	/* Padding: the setsockopt() hook refused OpenSSL's TLS_TX (3.0
	 * moves block-padded sessions itself), or OpenSSL declined. */
	if (r[0] == KTLS_R_LIB_DECLINED && ktls_pad_explains_decline(s, version))
		r[0] = KTLS_R_PADDING_REQUESTED;
	/* Only with the ex_data note whose free callback drops it again,
	 * else a later sendfile() could reach a freed SSL; without it (out
	 * of memory) sendfile() is refused, never sent in plaintext. */
	if (r[0] != KTLS_R_MOVED && !poison) {
		if (ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_fd,
					      (void *)(uintptr_t)(fd + 1)))
			atomic_store(&e->ssl, (uintptr_t)s);
		else
			atomic_fetch_or(&e->flags, KTLS_FD_NO_SSL);
	}
	if (poison)
		ktls_err("fd=%d: OpenSSL and the kernel disagree on kTLS state "
			 "(tx lib=%d, rx lib=%d); refusing to send on this "
			 "connection",
			 fd, lib_tx, lib_rx);
	/* Opt-in, once TX is in the kernel; a refusal changes nothing but
	 * the session line. */
	char zc[64] = "", zc_name[48];
	if (ktls_cfg.tx_zerocopy_ro && r[0] == KTLS_R_MOVED && !poison)
		snprintf(zc, sizeof(zc), " tx_zerocopy_ro=%s",
			 ktls_tx_zerocopy_ro_name(
				 ktls_tx_zerocopy_ro(&ktls_sockops_sys, fd),
				 zc_name, sizeof(zc_name)));
	const SSL_CIPHER *c = ktls_ossl.SSL_get_current_cipher(s);
	ktls_session_publish(fd, e, (uint16_t)version, kc, r,
			     poison ? KTLS_FD_POISONED : 0,
			     c ? ktls_ossl.SSL_CIPHER_get_name(c) : NULL,
			     engine_name(own, by_shim), zc);
	if (by_shim[0] && r[0] == KTLS_R_MOVED)
		atomic_fetch_add(&ktls_stats.tx_shim, 1);
	if (by_shim[1] && r[1] == KTLS_R_MOVED)
		atomic_fetch_add(&ktls_stats.rx_shim, 1);
	ktls_engine_settle(s, e, kc);
	if (!poison && r[0] == KTLS_R_MOVED)
		ktls_sess_lib_tx_budget(e, kc);
	ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_note, NOTE_FINAL);
}

/*
 * The program's own BIO, proven a pass-through to one TCP socket
 * (transport.c): the shim's engine installs both directions on that
 * socket, at the sequence numbers it counted, and its record layer serves
 * the session from here on (SSL_read, SSL_write, ... over the kernel),
 * bypassing the program's BIO; both or neither, as for a libssl without
 * kTLS. Each direction moved is verified like OpenSSL's.
 */
static void move_own_bio(SSL *s, int fd, int io_flags)
{
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	enum ktls_cipher kc = cipher_of(s);
	struct ktls_fd *e = ktls_fd_get(fd);
	enum ktls_reason r[2] = { KTLS_R_NO_MEMORY, KTLS_R_NO_MEMORY };
	int poison = 0, by_shim[2] = { 0, 0 };
	if (e) {
		/* Whatever an earlier socket with this number left is stale;
		 * nobody else finalizes this fd (no socket BIO names it). */
		ktls_fd_reset(e);
		ktls_fd_set_tls(e, KTLS_FD_FINAL);
		for (int rx = 0; rx < 2; rx++) {
			r[rx] = ktls_policy_check(rx, version, kc);
			/* What ktls_engine_move_own takes. */
			if (r[rx] == KTLS_R_MOVED)
				r[rx] = KTLS_R_LIB_DECLINED;
		}
		ktls_engine_move_own(s, fd, e, kc, r, io_flags);
	}
	for (int rx = 0; rx < 2; rx++) {
		if (r[rx] != KTLS_R_MOVED)
			continue;
		by_shim[rx] = 1;
		r[rx] = verify_dir(s, fd, rx, 1, version, kc);
		if (r[rx] == KTLS_R_VERIFY_FAILED)
			poison = 1;
	}
	if (poison)
		ktls_err("fd=%d: the kernel does not hold the TLS state just "
			 "installed; refusing to send on this connection",
			 fd);
	const SSL_CIPHER *c = ktls_ossl.SSL_get_current_cipher(s);
	ktls_session_publish(fd, e, (uint16_t)version, kc, r,
			     poison ? KTLS_FD_POISONED : 0,
			     c ? ktls_ossl.SSL_CIPHER_get_name(c) : NULL,
			     engine_name(1, by_shim), " transport=own");
	if (by_shim[0] && r[0] == KTLS_R_MOVED)
		atomic_fetch_add(&ktls_stats.tx_shim, 1);
	if (by_shim[1] && r[1] == KTLS_R_MOVED)
		atomic_fetch_add(&ktls_stats.rx_shim, 1);
	ktls_engine_settle(s, e, kc);
	if (e && !poison && r[0] == KTLS_R_MOVED)
		ktls_sess_lib_tx_budget(e, kc);
}

/* No socket BIO: memory BIOs, and the program's own (transport.c says
 * what its handshake proved). A proven own BIO moves (any libssl 3,
 * engine auto or shim), from the end of the I/O call that finished the
 * handshake with nothing of OpenSSL's left to write, as a libssl without
 * kTLS does; everything else stays in userspace. */
static void note_non_socket(SSL *s, int from_cb)
{
	if (ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_note) == NOTE_COUNTED)
		return;
	int fd, io_flags;
	enum ktls_reason why = ktls_oxp_verdict(s, &fd, &io_flags);
	if (why == KTLS_R_MOVED && !ktls_engine_own_bio())
		why = KTLS_R_OWN_BIO_NOT_MOVED;
	if (why == KTLS_R_MOVED &&
	    (from_cb || ktls_ossl.SSL_want(s) != SSL_NOTHING))
		return;
	ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_note, NOTE_COUNTED);
	if (why == KTLS_R_MOVED) {
		move_own_bio(s, fd, io_flags);
		return;
	}
	ktls_engine_settle(s, NULL, cipher_of(s));
	if (why == KTLS_R_NOT_SOCKET_BIO) {
		ktls_stats_session(why, why);
		ktls_dbg("session without a socket BIO (memory or custom "
			 "BIO): stays in userspace");
		return;
	}
	enum ktls_reason r[2] = { why, why };
	const SSL_CIPHER *c = ktls_ossl.SSL_get_current_cipher(s);
	ktls_session_publish(fd, NULL, (uint16_t)ktls_ossl.SSL_version(s),
			     cipher_of(s), r, 0,
			     c ? ktls_ossl.SSL_CIPHER_get_name(c) : NULL,
			     "openssl", " transport=own");
}

void ktls_sess_handshake_done(SSL *s, int from_cb)
{
	/* libssl without kTLS: OpenSSL must be done writing before the
	 * shim's record layer takes over, and a TLS 1.3 server says
	 * HANDSHAKE_DONE before it writes its tickets. So from the I/O call
	 * that finished, with nothing of OpenSSL's left to write; the
	 * sequence numbers are counted either way. (Not in a process with
	 * SSL BIOs, where nothing moves and the callback settles it.) */
	if (ktls_engine_own() && !atomic_load(&ktls_orl_ssl_bio) &&
	    (from_cb || ktls_ossl.SSL_want(s) != SSL_NOTHING))
		return;
	int fd = ktls_ssl_sock_fd(ktls_ossl.SSL_get_wbio(s));
	if (fd < 0) {
		note_non_socket(s, from_cb);
		return;
	}
	struct ktls_fd *e = ktls_fd_get(fd);
	/* Whoever sets FINAL first does the check: no lock on this path. */
	if (e && !(ktls_fd_set_tls(e, KTLS_FD_FINAL) & KTLS_FD_FINAL))
		finalize(s, fd, e, from_cb);
}

void ktls_sess_after_io(SSL *s)
{
	/* Cheap when final already: the callback normally got here first. */
	if (ktls_ossl.SSL_is_init_finished(s))
		ktls_sess_handshake_done(s, 0);
}
