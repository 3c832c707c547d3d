#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/obj_mac.h>
#include <string.h>
#include <unistd.h>

#include "cipher.h"
#include "engine.h"
#include "ktls_install.h"
#include "log.h"
#include "ossl.h"
#include "ossl_record.h"
#include "real.h"
#include "reason.h"
#include "shim.h"
#include "sendfile_emul.h"
#include "stats.h"
#include "policy.h"
#include "register.h"
#include "zerocopy_ro.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define TLS_CT_HANDSHAKE 22
#define TLS_CT_APPLICATION_DATA 23
#define TLS_HS_KEY_UPDATE 24

/* ex_data notes: an SSL without a socket BIO, counted once; an SSL whose
 * first handshake was settled. */
#define NOTE_COUNTED ((void *)1)
#define NOTE_FINAL ((void *)2)

/* Some fd's TX key ran out of budget at least once (KTLS_FD_REKEY_DUE). */
static _Atomic int rekey_due_seen;

static int sock_fd(BIO *b)
{
	if (!b || ktls_ossl.BIO_method_type(b) != BIO_TYPE_SOCKET)
		return -1;
	return (int)ktls_ossl.BIO_ctrl(b, BIO_C_GET_FD, 0, NULL);
}


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

static uint8_t errno8(int e)
{
	return (uint8_t)(e > 0 && e < 256 ? e : 255);
}

/* OpenSSL's own installer, asked with SSL_OP_ENABLE_KTLS; not under
 * engine = shim, where the shim's engine moves every direction. */
static int want_ktls(void)
{
	return ktls_cfg.directions && ktls_cfg.ciphers && ktls_cfg.versions &&
	       ktls_ossl.modern && !ktls_engine_all();
}

static void handshake_done(SSL *s, int from_cb);
static void forget_stale(SSL *s);

static ktls_info_cb program_cb(const SSL *s)
{
	ktls_info_cb cb = ktls_sess_get_info_cb(s);
	return cb ? cb : ktls_sess_get_ctx_info_cb(ktls_ossl.SSL_get_SSL_CTX(s));
}

/* Ours runs first, so a program's callback asking ktls_shim_fd_info()
 * at HANDSHAKE_DONE already gets the final answer. */
static void info_cb(const SSL *cs, int where, int ret)
{
	SSL *s = (SSL *)cs; /* OpenSSL hands callbacks a const view */
	if (where & SSL_CB_HANDSHAKE_START)
		forget_stale(s);
	if (where & SSL_CB_HANDSHAKE_DONE)
		handshake_done(s, 1);
	ktls_info_cb cb = program_cb(cs);
	if (cb)
		cb(cs, where, ret);
}

#define HIDDEN ((void *)1)

void ktls_sess_on_ctx_new(SSL_CTX *ctx)
{
	/* OpenSSL >= 3.0 installs the keys itself once asked, and every SSL
	 * made from this context (BIO_new_ssl included) inherits it. The
	 * program does not see the option (ktls_sess_options): programs and
	 * test suites compare their options with what they set. */
	if (want_ktls() &&
	    !(ktls_ossl.SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS)) {
		ktls_ossl.SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
		ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_hidden,
					      HIDDEN);
	}
	ktls_ossl.SSL_CTX_set_info_callback(ctx, info_cb);
	ktls_engine_on_ctx_new(ctx);
}

void ktls_sess_on_new(SSL *s)
{
	/* For contexts made before the shim was active. */
	if (want_ktls()) {
		SSL_CTX *ctx = ktls_ossl.SSL_get_SSL_CTX(s);
		int hide = ctx && ktls_ossl.SSL_CTX_get_ex_data(
					  ctx, ktls_ossl.ctx_ex_hidden) == HIDDEN;
		if (!(ktls_ossl.SSL_get_options(s) & SSL_OP_ENABLE_KTLS)) {
			ktls_ossl.SSL_set_options(s, SSL_OP_ENABLE_KTLS);
			hide = 1;
		}
		if (hide)
			ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_hidden,
						  HIDDEN);
	}
	if (ktls_ossl.SSL_get_info_callback(s) != info_cb &&
	    ktls_ossl.SSL_CTX_get_info_callback(ktls_ossl.SSL_get_SSL_CTX(s)) !=
		    info_cb)
		ktls_ossl.SSL_set_info_callback(s, info_cb);
	ktls_engine_on_new(s);
}

/* Function pointers ride in ex_data slots (void *): POSIX guarantees the
 * round trip (dlsym relies on it too). Where a slot cannot be set (out of
 * memory) the program's callback goes straight to OpenSSL: the shim then
 * settles that session after its next I/O call (ktls_sess_after_io), and
 * the program loses nothing. */
void ktls_sess_set_ctx_info_cb(SSL_CTX *ctx, ktls_info_cb cb)
{
	int kept = ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_cb,
						 (void *)cb);
	ktls_ossl.SSL_CTX_set_info_callback(ctx, kept ? info_cb : cb);
}

ktls_info_cb ktls_sess_get_ctx_info_cb(const SSL_CTX *ctx)
{
	if (!ctx)
		return NULL;
	ktls_info_cb r = ktls_ossl.SSL_CTX_get_info_callback((SSL_CTX *)ctx);
	return r == info_cb ? (ktls_info_cb)ktls_ossl.SSL_CTX_get_ex_data(
				      ctx, ktls_ossl.ctx_ex_cb)
			    : r;
}

void ktls_sess_set_info_cb(SSL *s, ktls_info_cb cb)
{
	int kept = ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_cb, (void *)cb);
	ktls_ossl.SSL_set_info_callback(s, kept ? info_cb : cb);
}

ktls_info_cb ktls_sess_get_info_cb(const SSL *s)
{
	ktls_info_cb r = ktls_ossl.SSL_get_info_callback(s);
	return r == info_cb ? (ktls_info_cb)ktls_ossl.SSL_get_ex_data(
				      s, ktls_ossl.ex_cb)
			    : r;
}

/*
 * A handshake on an fd whose entry is already final means the number was
 * reused behind our back (closed through a path we do not see: fclose(),
 * close_range()) or the session renegotiates: either way start afresh.
 */
static void forget_stale(SSL *s)
{
	/* TLS 1.3 has no renegotiation: a "handshake" on a settled SSL is a
	 * post-handshake message (NewSessionTicket, KeyUpdate), and the
	 * session goes on as it was. */
	if (ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_note) == NOTE_FINAL &&
	    ktls_ossl.SSL_version(s) == TLS1_3_VERSION)
		return;
	struct ktls_fd *e = ktls_fd_get(sock_fd(ktls_ossl.SSL_get_wbio(s)));
	if (e && (atomic_load(&e->flags) & KTLS_FD_FINAL))
		ktls_fd_reset(e);
}

static enum ktls_reason explain(struct ktls_fd *e, int fd, int rx,
				unsigned version, enum ktls_cipher kc)
{
	unsigned f = atomic_load(&e->flags);
	enum ktls_reason p = ktls_policy_check(rx, version, kc);

	if (p != KTLS_R_MOVED)
		return p;
	if (!ktls_ossl.modern)
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
	if (rx && version == KTLS_TLS13)
		return KTLS_R_TLS13_RX_NEEDS_ENGINE;
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
	uint16_t v = 0, ct = 0;
	int k = ktls_query_dir(&ktls_sockops_sys, fd, dir, &v, &ct);
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	int kernel_has = k == 1 && d && v == version && ct == d->kernel_type;
	if (lib_says && kernel_has)
		return KTLS_R_MOVED;
	if (!lib_says && k != 1)
		return KTLS_R_LIB_DECLINED; /* consistent; caller explains */
	return KTLS_R_VERIFY_FAILED;
}

static void finalize(SSL *s, int fd, struct ktls_fd *e, int from_cb)
{
	BIO *wb = ktls_ossl.SSL_get_wbio(s), *rb = ktls_ossl.SSL_get_rbio(s);
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	enum ktls_cipher kc = cipher_of(s);
	int lib_tx = ktls_ossl.BIO_ctrl(wb, BIO_CTRL_GET_KTLS_SEND, 0, NULL) > 0;
	int lib_rx = sock_fd(rb) == fd &&
		     ktls_ossl.BIO_ctrl(rb, BIO_CTRL_GET_KTLS_RECV, 0, NULL) > 0;
	enum ktls_reason r[2];
	int poison = 0;

	for (int rx = 0; rx < 2; rx++) {
		r[rx] = verify(fd, rx ? TLS_RX : TLS_TX, rx ? lib_rx : lib_tx,
			       version, kc);
		if (r[rx] == KTLS_R_VERIFY_FAILED)
			poison = 1;
		else if (r[rx] != KTLS_R_MOVED)
			r[rx] = explain(e, fd, rx, version, kc);
	}
	/* What OpenSSL left and the shim's engine can take: TLS 1.3 RX
	 * (auto), or everything OpenSSL was not asked to move (shim). auto
	 * only from the callback at the end of the handshake: then no record
	 * has been read under the new key yet, so its sequence number is 0;
	 * shim counts records and knows it anyway. */
	int all = ktls_engine_all(), by_shim[2] = { 0, 0 };
	int own = all && !poison && sock_fd(rb) == fd && ktls_engine_own();
	/* libssl without kTLS: both directions at once, or neither. */
	if (own)
		ktls_engine_move_own(s, fd, e, kc, r);
	for (int rx = 0; rx < 2; rx++) {
		if (!own) {
			int take = r[rx] == KTLS_R_TLS13_RX_NEEDS_ENGINE ||
				   (all && r[rx] == KTLS_R_LIB_DECLINED);
			if (!take || poison || (!from_cb && !all) ||
			    sock_fd(rx ? rb : wb) != fd)
				continue;
			r[rx] = ktls_engine_move(s, fd, e, kc, rx);
		}
		if (r[rx] != KTLS_R_MOVED)
			continue;
		by_shim[rx] = 1;
		r[rx] = verify(fd, rx ? TLS_RX : TLS_TX, 1, version, kc);
		if (r[rx] == KTLS_R_VERIFY_FAILED)
			poison = 1;
	}
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	atomic_store(&e->version, (uint16_t)version);
	atomic_store(&e->cipher_type, d ? d->kernel_type : 0);
	atomic_store(&e->tx_reason, (uint8_t)r[0]);
	atomic_store(&e->rx_reason, (uint8_t)r[1]);
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
	atomic_fetch_or(&e->flags,
			KTLS_FD_TLS | (r[0] == KTLS_R_MOVED ? KTLS_FD_TX : 0) |
				(r[1] == KTLS_R_MOVED ? KTLS_FD_RX : 0) |
				(poison ? KTLS_FD_POISONED : 0));
	ktls_stats_session(r[0], r[1]);
	if (by_shim[0] && r[0] == KTLS_R_MOVED)
		atomic_fetch_add(&ktls_stats.tx_shim, 1);
	if (by_shim[1] && r[1] == KTLS_R_MOVED)
		atomic_fetch_add(&ktls_stats.rx_shim, 1);
	ktls_engine_settle(s, e, kc);
	ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_note, NOTE_FINAL);
	if (r[0] == KTLS_R_MOVED || r[1] == KTLS_R_MOVED)
		ktls_policy_bpf_register(fd, version, d ? d->kernel_type : 0,
			     r[0] == KTLS_R_MOVED, r[1] == KTLS_R_MOVED);

	/* Opt-in, after TX is settled in the kernel; a refusal changes
	 * nothing but the line below. */
	char zc_buf[48];
	const char *zc = "";
	if (ktls_cfg.tx_zerocopy_ro && r[0] == KTLS_R_MOVED && !poison)
		zc = ktls_tx_zerocopy_ro_name(
			ktls_tx_zerocopy_ro(&ktls_sockops_sys, fd), zc_buf,
			sizeof(zc_buf));

	const SSL_CIPHER *c = ktls_ossl.SSL_get_current_cipher(s);
	if (poison)
		ktls_err("fd=%d: OpenSSL and the kernel disagree on kTLS state "
			 "(tx lib=%d, rx lib=%d); refusing to send on this "
			 "connection",
			 fd, lib_tx, lib_rx);
	ktls_dbg("session fd=%d %s %s tx=%s rx=%s engine=%s "
		 "verified=getsockopt%s%s",
		 fd, ktls_version_name((uint16_t)version),
		 c ? ktls_ossl.SSL_CIPHER_get_name(c) : "none",
		 r[0] == KTLS_R_MOVED ? "kernel" : ktls_reason_name(r[0]),
		 r[1] == KTLS_R_MOVED ? "kernel" : ktls_reason_name(r[1]),
		 own && by_shim[1] ? "shim,record-layer:shim"
		 : all ? "shim"
		 : by_shim[1] ? "openssl,rx:shim"
			      : "openssl",
		 *zc ? " tx_zerocopy_ro=" : "", zc);
}

static void note_non_socket(SSL *s)
{
	if (ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_note) == NOTE_COUNTED)
		return;
	ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_note, NOTE_COUNTED);
	ktls_stats_session(KTLS_R_NOT_SOCKET_BIO, KTLS_R_NOT_SOCKET_BIO);
	ktls_dbg("session without a socket BIO (memory or custom BIO): "
		 "stays in userspace");
}

static void handshake_done(SSL *s, int from_cb)
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
	int fd = sock_fd(ktls_ossl.SSL_get_wbio(s));
	if (fd < 0) {
		note_non_socket(s);
		return;
	}
	struct ktls_fd *e = ktls_fd_get(fd);
	/* Whoever sets FINAL first does the check: no lock on this path. */
	if (e && !(atomic_fetch_or(&e->flags, KTLS_FD_FINAL | KTLS_FD_TLS) &
		   KTLS_FD_FINAL))
		finalize(s, fd, e, from_cb);
}

void ktls_sess_after_io(SSL *s)
{
	/* Cheap when final already: the callback normally got here first. */
	if (ktls_ossl.SSL_is_init_finished(s))
		handshake_done(s, 0);
}

void ktls_sess_before_write(SSL *s)
{
	/* Every SSL_write passes here: one load until a budget ever ran out
	 * in this process (never, with the default 256 GiB). */
	if (!atomic_load_explicit(&rekey_due_seen, memory_order_relaxed))
		return;
	/* Only here: the KeyUpdate goes out with this very write. Scheduled
	 * anywhere else, it could be left pending, and OpenSSL refuses
	 * SSL_shutdown() while it is. */
	int fd = sock_fd(ktls_ossl.SSL_get_wbio(s));
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (e && (atomic_load_explicit(&e->flags, memory_order_relaxed) &
		  KTLS_FD_REKEY_DUE))
		ktls_engine_key_update_due(s, fd, e, ktls_ossl.SSL_key_update);
}

void ktls_sess_count(struct ktls_fd *e, enum ktls_io io, size_t bytes)
{
	uint32_t bit = io == KTLS_IO_WRITE ? KTLS_FD_TX : KTLS_FD_RX;
	if (!bytes || !(atomic_load_explicit(&e->flags, memory_order_relaxed) &
			bit))
		return;
	atomic_fetch_add_explicit(io == KTLS_IO_WRITE ? &e->tx_bytes
						      : &e->rx_bytes,
				  bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&ktls_stats.bytes[io == KTLS_IO_WRITE ? 0 : 1],
				  bytes, memory_order_relaxed);
	uint64_t lim;
	if (io == KTLS_IO_WRITE &&
	    (lim = atomic_load_explicit(&e->tx_key_limit,
					memory_order_relaxed)) &&
	    atomic_fetch_add(&e->tx_key_bytes, bytes) + bytes >= lim) {
		atomic_fetch_or(&e->flags, KTLS_FD_REKEY_DUE);
		atomic_store_explicit(&rekey_due_seen, 1, memory_order_relaxed);
	}
}

int ktls_sess_send_refused(struct ktls_fd *e)
{
	if (!(atomic_load(&e->flags) & KTLS_FD_POISONED))
		return 0;
	atomic_fetch_add(&ktls_stats.refused_writes, 1);
	errno = EKEYEXPIRED;
	return 1;
}

int ktls_sess_key_update_ok(SSL *s)
{
	int fd = sock_fd(ktls_ossl.SSL_get_wbio(s));
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (!e || !(atomic_load(&e->flags) & KTLS_FD_TX) ||
	    atomic_load(&e->version) != KTLS_TLS13 ||
	    ktls_engine_tx_rekey_ready(e))
		return 1;
	ktls_warn("fd=%d: refusing SSL_key_update: the kernel holds the TX "
		  "key and OpenSSL 3.0 cannot hand it the next one",
		  fd);
	return 0;
}

int ktls_sess_setsockopt(int fd, int level, int name, const void *val,
			 socklen_t len)
{
	struct ktls_fd *e = ktls_fd_get(fd);
	int rc, err;

	if (!e) {
		/* Beyond the table: only the engine's own probe, which must
		 * still be told it was seen. */
		if (level == SOL_TLS &&
		    ktls_engine_check_setsockopt(fd, name, val, len) < 0) {
			errno = EINVAL;
			return -1;
		}
		return ktls_real.setsockopt(fd, level, name, val, len);
	}
	if (level == IPPROTO_TCP && name == TCP_ULP) {
		if (!val || len < 3 || memcmp(val, "tls", 3) != 0)
			return ktls_real.setsockopt(fd, level, name, val, len);
		rc = ktls_real.setsockopt(fd, level, name, val, len);
		err = rc ? errno : 0;
		/* OpenSSL asks again before each direction's keys: EEXIST
		 * is the same session. Anything else starts a new one, and
		 * whatever an earlier socket with this number left is stale. */
		if (err != EEXIST) {
			ktls_fd_reset(e);
			atomic_store(&e->ulp_err, errno8(err));
			atomic_store(&e->flags,
				     KTLS_FD_TLS | KTLS_FD_ULP_TRIED |
					     (rc == 0 ? KTLS_FD_ULP : 0));
		}
		errno = err;
		return rc;
	}
	if (level != SOL_TLS || (name != TLS_TX && name != TLS_RX) || !val ||
	    len < sizeof(struct tls_crypto_info))
		return ktls_real.setsockopt(fd, level, name, val, len);

	if (ktls_engine_check_setsockopt(fd, name, val, len) < 0) {
		/* Our bytes went in through an OpenSSL whose internals we
		 * do not know: do not let them near the kernel. */
		errno = EINVAL;
		return -1;
	}
	/* Only the 4-byte header is looked at, never the key behind it. */
	struct tls_crypto_info hdr;
	memcpy(&hdr, val, sizeof(hdr));
	int rx = name == TLS_RX;
	enum ktls_cipher kc = ktls_cipher_by_kernel_type(hdr.cipher_type);
	atomic_fetch_or(&e->flags,
			KTLS_FD_TLS | (rx ? KTLS_FD_RX_TRIED : KTLS_FD_TX_TRIED));
	if (!(ktls_cfg.directions & (rx ? KTLS_DIR_RX : KTLS_DIR_TX)) ||
	    !(ktls_cfg.versions & ktls_version_bit(hdr.version)) ||
	    kc == KTLS_CIPHER_NONE || !(ktls_cfg.ciphers & KTLS_CIPHER_BIT(kc))) {
		/* OpenSSL treats any failure here as "stay in userspace";
		 * explain() later names the config key that said no. */
		errno = EOPNOTSUPP;
		return -1;
	}
	rc = ktls_real.setsockopt(fd, level, name, val, len);
	err = rc ? errno : 0;
	atomic_store(rx ? &e->rx_err : &e->tx_err, errno8(err));
	errno = err;
	return rc;
}

int ktls_sess_record_type(const struct msghdr *m, int cmsg_type)
{
	if (!m || !m->msg_control)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
	     c = CMSG_NXTHDR((struct msghdr *)m, c))
		if (c->cmsg_level == SOL_TLS && c->cmsg_type == cmsg_type &&
		    c->cmsg_len >= CMSG_LEN(1))
			return *CMSG_DATA(c);
	return -1;
}

static int is_key_update(struct ktls_fd *e, const struct msghdr *m)
{
	uint32_t f = atomic_load(&e->flags);
	return (f & KTLS_FD_TX) && atomic_load(&e->version) == KTLS_TLS13 &&
	       m && ktls_sess_record_type(m, TLS_SET_RECORD_TYPE) ==
			    TLS_CT_HANDSHAKE &&
	       m->msg_iovlen >= 1 && m->msg_iov && m->msg_iov[0].iov_len >= 1 &&
	       ((const uint8_t *)m->msg_iov[0].iov_base)[0] ==
		       TLS_HS_KEY_UPDATE;
}

/*
 * OpenSSL 3.0 with kTLS TX sends a TLS 1.3 KeyUpdate through the kernel and
 * then switches to the next key in userspace only (openssl#16307): every
 * later record would be sealed with a key the peer has dropped. Where the
 * kernel can rekey, the engine gives it the next key right after the
 * KeyUpdate went out (ktls_sess_after_sendmsg); elsewhere refuse the
 * KeyUpdate itself, so the connection fails loudly and nothing goes out
 * under the wrong key.
 */
int ktls_sess_sendmsg_refused(int fd, struct ktls_fd *e, const struct msghdr *m)
{
	if (ktls_sess_send_refused(e))
		return 1;
	if (!is_key_update(e, m) || ktls_engine_tx_rekey_ready(e))
		return 0;
	ktls_err("fd=%d: TLS 1.3 KeyUpdate: OpenSSL 3.0 cannot give the kernel "
		 "the next TX key; failing this connection rather than "
		 "sending under a stale key",
		 fd);
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
	return ktls_sess_send_refused(e);
}

void ktls_sess_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		       long argl, void *argp)
{
	(void)ad, (void)idx, (void)argl, (void)argp;
	if (!ptr)
		return;
	struct ktls_fd *e = ktls_fd_get((int)((uintptr_t)ptr - 1));
	uintptr_t mine = (uintptr_t)parent;
	if (e)
		atomic_compare_exchange_strong(&e->ssl, &mine, 0);
}

static ssize_t emul_read(int fd, void *b, size_t n)
{
	return ktls_real.read(fd, b, n); /* not counted: it is file input */
}

static int emul_ssl_write(SSL *s, const void *b, int n)
{
	return ktls_ossl.SSL_write(s, b, n);
}

static int emul_ssl_get_error(const SSL *s, int r)
{
	return ktls_ossl.SSL_get_error(s, r);
}

ssize_t ktls_sess_sendfile(struct ktls_fd *e, int out_fd, int in_fd,
			   off_t *offset, size_t count,
			   ssize_t (*real)(int, int, off_t *, size_t))
{
	if (ktls_sess_send_refused(e))
		return -1;
	uint32_t f = atomic_load(&e->flags);
	SSL *s = (SSL *)atomic_load(&e->ssl);
	if (!(f & KTLS_FD_TX) && (f & KTLS_FD_NO_SSL)) {
		ktls_err("fd=%d: sendfile() refused: the session is in "
			 "userspace and the shim could not keep its SSL (out "
			 "of memory); a raw sendfile() would send plaintext",
			 out_fd);
		errno = ENOMEM;
		return -1;
	}
	if ((f & KTLS_FD_TX) || !(f & KTLS_FD_FINAL) || !s) {
		ssize_t n = real(out_fd, in_fd, offset, count);
		if (n > 0) {
			ktls_sess_count(e, KTLS_IO_WRITE, (size_t)n);
			if (f & KTLS_FD_TX)
				atomic_fetch_add(&ktls_stats.sendfile_kernel,
						 (unsigned long long)n);
		}
		return n;
	}
	/* A retried write after EAGAIN re-reads the same bytes into a
	 * buffer that may sit elsewhere: tell OpenSSL that is fine. */
	ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
			   NULL);
	static const struct ktls_emul_ops ops = {
		pread, emul_read, lseek, emul_ssl_write, emul_ssl_get_error,
	};
	ssize_t n = ktls_sendfile_emulate(&ops, s, in_fd, offset, count);
	if (n > 0)
		atomic_fetch_add(&ktls_stats.sendfile_emulated, (unsigned long long)n);
	return n;
}

void ktls_sess_close(int fd, struct ktls_fd *e)
{
	uint32_t f = atomic_load(&e->flags);
	if (f & KTLS_FD_FINAL)
		ktls_dbg("close fd=%d kernel_tx_bytes=%llu kernel_rx_bytes=%llu",
			 fd, (unsigned long long)atomic_load(&e->tx_bytes),
			 (unsigned long long)atomic_load(&e->rx_bytes));
	if (f & (KTLS_FD_TX | KTLS_FD_RX))
		ktls_bpf_unregister(fd);
	ktls_fd_reset(e);
}

void ktls_sess_after_sendmsg(int fd, struct ktls_fd *e, const struct msghdr *m,
			     ssize_t n)
{
	if (n <= 0 || !is_key_update(e, m))
		return;
	int saved = errno; /* the program's, from its sendmsg() */
	size_t total = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		total += m->msg_iov[i].iov_len;
	if ((size_t)n == total) {
		ktls_engine_after_key_update_sent(fd, e);
		errno = saved;
		return;
	}
	/* Part of a KeyUpdate is in the kernel; the rest would follow under
	 * whatever key we choose, and neither choice is right for all of
	 * it. Never seen with OpenSSL (5 bytes); fail rather than guess. */
	ktls_err("fd=%d: TLS 1.3 KeyUpdate only partly sent; refusing to send "
		 "on this connection",
		 fd);
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
	errno = saved;
}

ssize_t ktls_sess_recvmsg(int fd, struct ktls_fd *e, struct msghdr *m,
			  int flags)
{
	ssize_t n;
	int type = -1;
	if (atomic_load_explicit(&e->flags, memory_order_relaxed) &
	    KTLS_FD_RX_SHIM13) {
		n = ktls_engine_recvmsg(fd, e, m, flags, ktls_real.recvmsg,
					&type);
		/* The engine appended the record type: one byte more. */
		if (n > 1 && type == TLS_CT_APPLICATION_DATA)
			ktls_sess_count(e, KTLS_IO_READ, (size_t)n - 1);
		return n;
	}
	n = ktls_real.recvmsg(fd, m, flags);
	type = ktls_sess_record_type(m, TLS_GET_RECORD_TYPE);
	/* Alerts and handshake records are not the program's bytes. */
	if (n > 0 && (type < 0 || type == TLS_CT_APPLICATION_DATA))
		ktls_sess_count(e, KTLS_IO_READ, (size_t)n);
	return n;
}

uint64_t ktls_sess_options(SSL_CTX *ctx, SSL *s, uint64_t set, uint64_t clear)
{
	/* The program naming the option, either way, makes it its own. */
	if ((set | clear) & SSL_OP_ENABLE_KTLS) {
		if (ctx)
			ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_hidden,
						      NULL);
		else
			ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_hidden, NULL);
	}
	uint64_t r;
	if (ctx)
		r = set     ? ktls_ossl.SSL_CTX_set_options(ctx, set)
		    : clear ? ktls_ossl.SSL_CTX_clear_options(ctx, clear)
			    : ktls_ossl.SSL_CTX_get_options(ctx);
	else
		r = set     ? ktls_ossl.SSL_set_options(s, set)
		    : clear ? ktls_ossl.SSL_clear_options(s, clear)
			    : ktls_ossl.SSL_get_options(s);
	int hidden = ctx ? ktls_ossl.SSL_CTX_get_ex_data(
				   ctx, ktls_ossl.ctx_ex_hidden) == HIDDEN
			 : ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_hidden) ==
				   HIDDEN;
	return hidden ? r & ~(uint64_t)SSL_OP_ENABLE_KTLS : r;
}
