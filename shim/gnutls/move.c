/*
 * After GnuTLS's handshake: each direction into the kernel from
 * gnutls_record_get_state() (key, IV, sequence number), checked with
 * getsockopt(), and GnuTLS fenced off the socket for what moved.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "core/policy.h"
#include "core/shim.h"
#include "core/stats.h"
#include "gnutls/bind.h"
#include "gnutls/record.h"
#include "gnutls/secrets.h"
#include "gnutls/state.h"
#include "kernel/install.h"
#include "kernel/record_limit.h"
#include "kernel/uapi.h"
#include "session/keyupdate.h"
#include "session/publish.h"
#include "tls/record.h"

/* GnuTLS's own paths we did not interpose (heartbeat, rehandshake,
 * records GnuTLS itself would send or read) must not reach a socket whose
 * record layer is in the kernel: they would double-encrypt, or parse
 * plaintext as records. These refuse, and say why once. */
static ssize_t fence_push(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	static atomic_int said;
	(void)p, (void)d, (void)n;
	if (!atomic_exchange(&said, 1))
		ktls_err("GnuTLS tried to send a record of its own on a "
			 "session whose TX is in the kernel (a KeyUpdate, "
			 "renegotiation or heartbeat); refused");
	errno = EIO;
	return -1;
}

static ssize_t fence_pull(gnutls_transport_ptr_t p, void *d, size_t n)
{
	static atomic_int said;
	(void)p, (void)d, (void)n;
	if (!atomic_exchange(&said, 1))
		ktls_err("GnuTLS tried to read records itself on a session "
			 "whose RX is in the kernel; refused");
	errno = EIO;
	return -1;
}

/* RX, once the kernel has said it takes TLS at all (as for OpenSSL, the
 * kernel's reasons come first in what the log says). */
static enum ktls_reason rx_check(struct ktls_gts *g, uint16_t version)
{
	/* A KeyUpdate from the peer needs the next key: from the traffic
	 * secret the keylog function gave (checked against GnuTLS's key in
	 * install()), or the config's consent to fail such connections. */
	enum ktls_reason r = ktls_ku_rx_gate(version,
					     ktls_secrets_held(&g->sec, 1));
	if (r != KTLS_R_MOVED)
		return r;
	if (ktls_gt.record_check_pending(g->s) > 0)
		return KTLS_R_DATA_PENDING;
	return KTLS_R_MOVED;
}

static enum ktls_reason install(struct ktls_gts *g, int rx, uint16_t version,
				enum ktls_cipher kc, int *err)
{
	gnutls_datum_t mac = { 0 }, iv = { 0 }, key = { 0 };
	unsigned char seq[8];
	struct ktls_crypto_info ci;
	*err = 0;
	/* Pointers into GnuTLS's own state, not copies: the only copy is
	 * ci, which ktls_install_dir wipes whatever happens. */
	if (ktls_gt.record_get_state(g->s, (unsigned)rx, &mac, &iv, &key,
				     seq) < 0)
		return KTLS_R_KEY_UNAVAILABLE;
	if (ktls_gt_crypto_info(&ci, version, kc, &key, &iv, seq) != 0) {
		explicit_bzero(seq, sizeof(seq));
		return KTLS_R_CIPHER_UNSUPPORTED;
	}
	explicit_bzero(seq, sizeof(seq));
	/* A secret that does not give GnuTLS's own key is not this
	 * session's: RX then stays (a KeyUpdate would break it); TX moves
	 * and KeyUpdates on it are refused, as before secrets existed. */
	if (version == KTLS_TLS13 && (rx ? g->sec.rx_len : g->sec.tx_len) &&
	    !ktls_gt_secret_check(&g->sec, rx, kc, &key, &iv)) {
		ktls_warn("fd=%d: the TLS 1.3 traffic secret from the keylog "
			  "function does not match GnuTLS's %s key; KeyUpdate "
			  "cannot be followed",
			  g->fd, rx ? "RX" : "TX");
		if (rx) {
			ktls_crypto_info_wipe(&ci);
			return KTLS_R_NO_SECRET;
		}
	}
	return ktls_install_dir(&ktls_sockops_sys, g->fd, rx ? TLS_RX : TLS_TX,
				&ci, err);
}

/* g: the shim's state of s, NULL where it has none. */
static void record_session(const struct ktls_gts *g, gnutls_session_t s,
			   int fd, struct ktls_fd *e, uint16_t version,
			   enum ktls_cipher kc, enum ktls_reason r[2],
			   const char *engine)
{
	int own = g && (atomic_load(&g->st) & GTS_CUSTOM);
	ktls_session_publish(fd, e, version, kc, r, KTLS_FD_FINAL,
			     ktls_gt.cipher_get_name(ktls_gt.cipher_get(s)),
			     engine, own ? " transport=own" : NULL);
}

/* GnuTLS built with kTLS moved it itself ([global] ktls = true): leave
 * it to GnuTLS, and only account for it. */
static int moved_by_gnutls(struct ktls_gts *g, int fd, uint16_t version,
			   enum ktls_cipher kc)
{
	if (!ktls_gt.transport_is_ktls_enabled)
		return 0;
	unsigned k = (unsigned)ktls_gt.transport_is_ktls_enabled(g->s);
	if (!k)
		return 0;
	enum ktls_reason r[2] = {
		(k & KTLS_GT_KTLS_SEND) ? KTLS_R_MOVED : KTLS_R_LIB_DECLINED,
		(k & KTLS_GT_KTLS_RECV) ? KTLS_R_MOVED : KTLS_R_LIB_DECLINED,
	};
	struct ktls_fd *e = ktls_fd_get(fd);
	if (e)
		ktls_fd_reset(e);
	record_session(g, g->s, fd, e, version, kc, r, "gnutls-own");
	return 1;
}

/* The most plaintext one record of ours may carry, content type
 * excluded; 0 when it cannot be known. 3.8.11+ says it (ktls-utils' tlshd
 * takes one more off for TLS 1.3's content type; so do we). Before, the
 * peer's record_size_limit is read from its hellos (hello.c; it counts
 * the content type in, and where sent it overrides max_fragment_length,
 * RFC 8449 5), else what we accept is what we may send under
 * max_fragment_length. */
static unsigned tx_record_limit(struct ktls_gts *g, uint16_t version)
{
	unsigned sem = version == KTLS_TLS13;
	int peer = atomic_load(&g->peer_rsl);
	if (!ktls_gt.record_get_max_send_size && peer < 0)
		return 0;
	if (!ktls_gt.record_get_max_send_size && peer > 0) {
		/* Exact: RFC 8449's value less TLS 1.3's content type. */
		unsigned n = (unsigned)peer - sem;
		return n >= KTLS_MAX_PLAINTEXT ? KTLS_MAX_PLAINTEXT : n;
	}
	size_t n = ktls_gt.record_get_max_send_size
			   ? ktls_gt.record_get_max_send_size(g->s)
			   : ktls_gt.record_get_max_size(g->s);
	if (n <= sem)
		return 0; /* no answer: nothing to promise with */
	/* 16 KiB: no limit; below, one byte to spare in TLS 1.3. */
	return n >= KTLS_MAX_PLAINTEXT ? KTLS_MAX_PLAINTEXT
				       : (unsigned)(n - sem);
}

/* RX: the kernel takes records up to 16 KiB whatever we promised, and
 * hands several up in one read, so a record over a smaller limit of ours
 * could not be told apart and refused as GnuTLS refuses it
 * (GNUTLS_E_RECORD_OVERFLOW). Such a session's RX stays in GnuTLS. */
static enum ktls_reason rx_record_limit(struct ktls_gts *g)
{
	return ktls_gt.record_get_max_size(g->s) < KTLS_MAX_PLAINTEXT
		       ? KTLS_R_RECORD_SIZE_LIMITED
		       : KTLS_R_MOVED;
}

/* Config, socket and ULP: which directions may go into the kernel. */
static void decide(struct ktls_gts *g, struct ktls_fd *e, uint16_t version,
		   enum ktls_cipher kc, enum ktls_reason r[2])
{
	for (int rx = 0; rx < 2; rx++)
		r[rx] = ktls_policy_check(rx, version, kc);
	if (r[0] != KTLS_R_MOVED && r[1] != KTLS_R_MOVED)
		return;
	enum ktls_reason sr = ktls_check_socket(&ktls_sockops_sys, g->fd);
	int err = 0;
	if (sr == KTLS_R_MOVED)
		sr = ktls_attach_ulp(&ktls_sockops_sys, g->fd, &err);
	atomic_store(&e->ulp_err, ktls_errno8(err));
	for (int rx = 0; rx < 2; rx++)
		if (r[rx] == KTLS_R_MOVED && sr != KTLS_R_MOVED)
			r[rx] = sr;
	if (r[1] == KTLS_R_MOVED)
		r[1] = rx_check(g, version);
	if (r[1] == KTLS_R_MOVED)
		r[1] = rx_record_limit(g);
	/* Before TLS_TX: no record may leave bigger than the peer allowed. */
	unsigned lim = tx_record_limit(g, version);
	if (r[0] == KTLS_R_MOVED)
		r[0] = lim ? ktls_tx_limit_set(&ktls_sockops_sys, g->fd, lim)
			   : KTLS_R_RECORD_SIZE_LIMITED;
}

/* RX first: if TX then fails, GnuTLS keeps sending and we read; both
 * halves of the record layer are interposed either way. Each install is
 * checked with getsockopt(). */
static void install_both(struct ktls_gts *g, struct ktls_fd *e,
			 uint16_t version, enum ktls_cipher kc,
			 enum ktls_reason r[2])
{
	for (int rx = 1; rx >= 0; rx--) {
		if (r[rx] != KTLS_R_MOVED)
			continue;
		int err;
		r[rx] = install(g, rx, version, kc, &err);
		if (r[rx] == KTLS_R_MOVED &&
		    (ktls_kernel_holds(&ktls_sockops_sys, g->fd,
				       rx ? TLS_RX : TLS_TX, version, kc) != 1 ||
		     (!rx && ktls_tx_limit_holds(
				     &ktls_sockops_sys, g->fd, version,
				     tx_record_limit(g, version)) != 1)))
			r[rx] = KTLS_R_VERIFY_FAILED;
		atomic_store(rx ? &e->rx_err : &e->tx_err, ktls_errno8(err));
	}
}

/* GnuTLS fenced off what moved; secrets kept only for a direction the
 * kernel holds and may rekey; a failed verification fails the session. */
static void settle(struct ktls_gts *g, struct ktls_fd *e, uint16_t version,
		   enum ktls_cipher kc, const enum ktls_reason r[2])
{
	unsigned moved = (r[0] == KTLS_R_MOVED ? GTS_TX : 0) |
			 (r[1] == KTLS_R_MOVED ? GTS_RX : 0);
	if (moved & GTS_TX)
		ktls_gt.transport_set_push_function(g->s, fence_push);
	if (moved & GTS_RX)
		ktls_gt.transport_set_pull_function(g->s, fence_pull);
	g->kc = kc;
	if (!(moved & GTS_RX) || version != KTLS_TLS13)
		ktls_secrets_wipe(&g->sec, 1);
	if (!(moved & GTS_TX) || version != KTLS_TLS13)
		ktls_secrets_wipe(&g->sec, 0);
	else if (g->sec.tx_len)
		atomic_store(&e->tx_key_limit, ktls_policy_tx_key_budget(kc));
	if (moved) {
		atomic_fetch_or(&g->st, moved);
		ktls_gts_moved_count(1);
	}
	if (r[0] != KTLS_R_VERIFY_FAILED && r[1] != KTLS_R_VERIFY_FAILED)
		return;
	/* We set it and the kernel says otherwise: nothing is safe. */
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
	atomic_store(&g->fail_code, GNUTLS_E_INTERNAL_ERROR);
	atomic_fetch_or(&g->st, GTS_FAILED | GTS_TX | GTS_RX);
	if (!moved)
		ktls_gts_moved_count(1);
	ktls_err("fd=%d: the kernel does not hold the TLS state just "
		 "installed; failing this connection",
		 g->fd);
}

/* Nothing of this session moves: its secrets go now. */
static void leave(struct ktls_gts *g)
{
	ktls_secrets_wipe(&g->sec, 0);
	ktls_secrets_wipe(&g->sec, 1);
}

/* The program's own transport: its socket where the handshake proved it
 * (then *fd), else the session stays and says why. 1: go on. */
static int own_transport(struct ktls_gts *g, int *fd, uint16_t version,
			 enum ktls_cipher kc)
{
	enum ktls_reason why = ktls_gts_transport_verdict(g, fd);
	if (why == KTLS_R_MOVED)
		return 1;
	leave(g);
	/* Not a socket the shim would track (a pipe, AF_UNIX), or none. */
	struct ktls_fd *e = why != KTLS_R_XPORT_NOT_TCP && *fd >= 0
				    ? ktls_fd_get(*fd)
				    : NULL;
	if (e)
		ktls_fd_reset(e);
	enum ktls_reason r[2] = { why, why };
	record_session(g, g->s, *fd, e, version, kc, r, "gnutls");
	return 0;
}

void ktls_gts_after_handshake(gnutls_session_t s)
{
	if (!ktls_shim_active() || !ktls_gt_bind())
		return;
	struct ktls_gts *g = ktls_gts_lookup(s);
	int rfd = -1, wfd = -1;
	ktls_gt.transport_get_int2(s, &rfd, &wfd);
	uint16_t version = ktls_gt_version(ktls_gt.protocol_get_version(s));
	enum ktls_cipher kc = ktls_gt_cipher(ktls_gt.cipher_get(s));
	enum ktls_reason r[2];
	struct ktls_fd *e = NULL;
	if (!g) {
		/* ktls_gts_on_init had no memory for our state: the
		 * session stays with GnuTLS, and says so. */
		r[0] = r[1] = KTLS_R_NO_MEMORY;
		record_session(NULL, s, rfd, NULL, version, kc, r, "gnutls");
		return;
	}
	if (atomic_fetch_or(&g->st, GTS_FINAL) & GTS_FINAL)
		return; /* a TLS 1.2 renegotiation of a session left alone */
	if (atomic_load(&g->st) & GTS_CUSTOM) {
		if (!own_transport(g, &rfd, version, kc))
			return;
		wfd = rfd;
	} else if (rfd >= 0 && moved_by_gnutls(g, rfd, version, kc)) {
		leave(g);
		return;
	}
	if (rfd < 0 || rfd != wfd || !(e = ktls_fd_get(rfd))) {
		leave(g);
		ktls_stats_session(KTLS_R_NOT_SOCKET_BIO, KTLS_R_NOT_SOCKET_BIO);
		ktls_dbg("GnuTLS session on two fds: stays in userspace");
		return;
	}
	g->fd = rfd;
	g->version = version;
	/* Whatever an earlier socket with this number left is stale. */
	ktls_fd_reset(e);
	decide(g, e, version, kc, r);
	install_both(g, e, version, kc, r);
	settle(g, e, version, kc, r);
	record_session(g, s, rfd, e, version, kc, r, "gnutls");
}
