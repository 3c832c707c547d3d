#define _GNU_SOURCE
#include "gnutls_engine.h"

#include <errno.h>
#include <limits.h>
#include <linux/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "fdtab.h"
#include "gnutls_bind.h"
#include "gnutls_record.h"
#include "gnutls_rekey.h"
#include "ktls_install.h"
#include "log.h"
#include "policy.h"
#include "real.h"
#include "record_io.h"
#include "session.h"
#include "shim.h"
#include "stats.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

enum {
	GTS_CUSTOM = 1u << 0, /* program's own push/pull: never moved */
	GTS_FINAL = 1u << 1,  /* the post-handshake decision was made */
	GTS_TX = 1u << 2,     /* TX in the kernel, by us */
	GTS_RX = 1u << 3,     /* RX in the kernel, by us */
	GTS_EOF = 1u << 4,    /* close_notify received */
	GTS_FAILED = 1u << 5, /* fatal: every later call fails */
	GTS_BYE = 1u << 6,    /* our close_notify went out */
	GTS_SERVER = 1u << 7,
	GTS_KEYLOG = 1u << 8, /* our keylog function is the session's */
	GTS_KU_OWED = 1u << 9, /* peer asked for our KeyUpdate: before data */
};

/* Handshake messages after the handshake are small (tickets, KeyUpdate);
 * one bigger than this is refused rather than buffered without bound. */
#define CTRL_MAX 65536
/* After GNUTLS_E_AGAIN a program may retry with (NULL, 0) and expect the
 * same data to go out (GnuTLS keeps it encrypted); we keep up to one
 * record's worth of plaintext for that. */
#define PEND_MAX 16384
#define CONTINUE INT_MIN

struct ktls_gts {
	gnutls_session_t s;
	struct ktls_gts *next;
	unsigned init_flags;
	_Atomic unsigned st;
	_Atomic int fail_code, last_dir, last_alert;
	int fd;
	uint16_t version;
	enum ktls_cipher kc;
	/* The program's keylog function, called behind ours. */
	_Atomic(gnutls_keylog_func) prog_keylog;
	/* TLS 1.3 traffic secrets: rx used by the reader, tx by the writer. */
	struct ktls_gt_secrets sec;
	/* RX, one reader at a time: a control record being collected;
	 * rec: where in ctrl the last record read begins (SIZE_MAX: before
	 * ctrl[0]), head: whether ctrl[0] begins a record. */
	uint8_t ctrl_type;
	size_t ctrl_len, ctrl_rec;
	int ctrl_head;
	int async; /* the last GNUTLS_E_AGAIN came from async_done() */
	uint8_t *ctrl;
	/* TX, one writer at a time. */
	uint8_t *pend;
	size_t pend_len;
};

#define NBUCKETS 1024
static struct ktls_gts *buckets[NBUCKETS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int n_moved; /* sessions with a direction in the kernel */
static atomic_int used;

int ktls_gts_used(void)
{
	return atomic_load(&used);
}

static unsigned bucket(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 17;
	x *= 0x9E3779B97F4A7C15ull;
	return (unsigned)(x >> 40) % NBUCKETS;
}

static struct ktls_gts *lookup(gnutls_session_t s)
{
	struct ktls_gts *g;
	pthread_mutex_lock(&mu);
	for (g = buckets[bucket(s)]; g && g->s != s; g = g->next)
		;
	pthread_mutex_unlock(&mu);
	return g;
}

/* Chained in front of the program's (or GnuTLS's SSLKEYLOGFILE writer,
 * the default): the application traffic secrets of the handshake are
 * kept for KeyUpdate; every line still reaches the program. */
static int keylog_cb(gnutls_session_t s, const char *label,
		     const gnutls_datum_t *secret)
{
	struct ktls_gts *g = lookup(s);
	if (!g)
		return 0;
	unsigned st = atomic_load(&g->st);
	if (!(st & GTS_FINAL) && label)
		ktls_gt_secret_capture(&g->sec, (st & GTS_SERVER) != 0, label,
				       secret);
	gnutls_keylog_func prog = atomic_load(&g->prog_keylog);
	return prog ? prog(s, label, secret) : 0;
}

int ktls_gts_set_keylog(gnutls_session_t s, gnutls_keylog_func f)
{
	struct ktls_gts *g = lookup(s);
	if (!g || !(atomic_load(&g->st) & GTS_KEYLOG))
		return 0;
	atomic_store(&g->prog_keylog, f);
	return 1;
}

int ktls_gts_get_keylog(gnutls_session_t s, gnutls_keylog_func *f)
{
	struct ktls_gts *g = lookup(s);
	if (!g || !(atomic_load(&g->st) & GTS_KEYLOG))
		return 0;
	*f = atomic_load(&g->prog_keylog);
	return 1;
}

void ktls_gts_on_init(gnutls_session_t s, unsigned flags)
{
	struct ktls_gts *g = calloc(1, sizeof(*g));
	atomic_store(&used, 1);
	if (!g)
		return; /* untracked: it simply stays in GnuTLS */
	g->s = s;
	g->init_flags = flags;
	g->fd = -1;
	atomic_store(&g->last_alert, -1);
	if (flags & GNUTLS_SERVER)
		atomic_store(&g->st, GTS_SERVER);
	/* DTLS: the kernel does TLS over TCP only. */
	if (flags & GNUTLS_DATAGRAM)
		atomic_fetch_or(&g->st, GTS_CUSTOM);
	pthread_mutex_lock(&mu);
	unsigned b = bucket(s);
	g->next = buckets[b];
	buckets[b] = g;
	pthread_mutex_unlock(&mu);
	/* In the table first: GnuTLS calls keylog_cb from the handshake. */
	if (!(flags & GNUTLS_DATAGRAM) && ktls_gt_bind() &&
	    ktls_gt_rekey_wanted()) {
		atomic_store(&g->prog_keylog,
			     ktls_gt.session_get_keylog_function(s));
		atomic_fetch_or(&g->st, GTS_KEYLOG);
		ktls_gt.session_set_keylog_function(s, keylog_cb);
	}
}

void ktls_gts_on_deinit(gnutls_session_t s)
{
	struct ktls_gts **pp, *g = NULL;
	pthread_mutex_lock(&mu);
	for (pp = &buckets[bucket(s)]; *pp; pp = &(*pp)->next)
		if ((*pp)->s == s) {
			g = *pp;
			*pp = g->next;
			break;
		}
	pthread_mutex_unlock(&mu);
	if (!g)
		return;
	if (atomic_load(&g->st) & (GTS_TX | GTS_RX))
		atomic_fetch_sub(&n_moved, 1);
	/* Plaintext only, but the program's: do not leave it in the heap. */
	if (g->pend)
		explicit_bzero(g->pend, PEND_MAX);
	if (g->ctrl)
		explicit_bzero(g->ctrl, CTRL_MAX);
	free(g->pend);
	free(g->ctrl);
	explicit_bzero(g, sizeof(*g)); /* the secrets */
	free(g);
}

void ktls_gts_note_custom(gnutls_session_t s)
{
	struct ktls_gts *g = lookup(s);
	if (!g)
		return;
	unsigned st = atomic_fetch_or(&g->st, GTS_CUSTOM);
	if (st & (GTS_TX | GTS_RX))
		ktls_warn("fd=%d: program set its own GnuTLS transport after "
			  "the session moved into the kernel; GnuTLS's own "
			  "records would now bypass the kernel's keys",
			  g->fd);
}

struct ktls_gts *ktls_gts_moved(gnutls_session_t s)
{
	if (!atomic_load_explicit(&n_moved, memory_order_relaxed))
		return NULL;
	struct ktls_gts *g = lookup(s);
	return g && (atomic_load(&g->st) & (GTS_TX | GTS_RX)) ? g : NULL;
}

int ktls_gts_tx(const struct ktls_gts *g)
{
	return (atomic_load(&g->st) & GTS_TX) != 0;
}

int ktls_gts_rx(const struct ktls_gts *g)
{
	return (atomic_load(&g->st) & GTS_RX) != 0;
}

/* ---- moving a session ------------------------------------------------ */

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
	/* A KeyUpdate from the peer needs the next key: where the kernel
	 * can take it, from the traffic secret the keylog function gave
	 * (checked against GnuTLS's key in install()); where it cannot,
	 * only with the config's consent to fail such connections. */
	if (version == KTLS_TLS13 && ktls_engine_kernel_rekeys()) {
		if (!g->sec.rx_len)
			return KTLS_R_NO_SECRET;
	} else if (version == KTLS_TLS13 && !ktls_cfg.tls13_rx_without_rekey) {
		return KTLS_R_TLS13_RX_NO_REKEY;
	}
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

static int kernel_has(int fd, int dir, uint16_t version, enum ktls_cipher kc)
{
	uint16_t v = 0, ct = 0;
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	return ktls_query_dir(&ktls_sockops_sys, fd, dir, &v, &ct) == 1 && d &&
	       v == version && ct == d->kernel_type;
}

static void record_session(gnutls_session_t s, int fd, struct ktls_fd *e,
			   uint16_t version, enum ktls_cipher kc,
			   enum ktls_reason r[2], const char *engine)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	unsigned ct = d ? d->kernel_type : 0;
	if (e) {
		atomic_store(&e->version, version);
		atomic_store(&e->cipher_type, (uint16_t)ct);
		atomic_store(&e->tx_reason, (uint8_t)r[0]);
		atomic_store(&e->rx_reason, (uint8_t)r[1]);
		atomic_fetch_or(&e->flags,
				KTLS_FD_TLS | KTLS_FD_FINAL |
					(r[0] == KTLS_R_MOVED ? KTLS_FD_TX : 0) |
					(r[1] == KTLS_R_MOVED ? KTLS_FD_RX : 0));
	}
	ktls_stats_session(r[0], r[1]);
	if (e && (r[0] == KTLS_R_MOVED || r[1] == KTLS_R_MOVED))
		ktls_policy_bpf_register(fd, version, ct, r[0] == KTLS_R_MOVED,
			     r[1] == KTLS_R_MOVED);
	ktls_dbg("session fd=%d %s %s tx=%s rx=%s engine=%s "
		 "verified=getsockopt",
		 fd, ktls_version_name(version),
		 ktls_gt.cipher_get_name(ktls_gt.cipher_get(s))
			 ? ktls_gt.cipher_get_name(ktls_gt.cipher_get(s))
			 : "none",
		 r[0] == KTLS_R_MOVED ? "kernel" : ktls_reason_name(r[0]),
		 r[1] == KTLS_R_MOVED ? "kernel" : ktls_reason_name(r[1]),
		 engine);
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
	record_session(g->s, fd, e, version, kc, r, "gnutls-own");
	return 1;
}

void ktls_gts_after_handshake(gnutls_session_t s)
{
	if (!ktls_shim_active() || !ktls_gt_bind())
		return;
	struct ktls_gts *g = lookup(s);
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
		record_session(s, rfd, NULL, version, kc, r, "gnutls");
		return;
	}
	if (atomic_fetch_or(&g->st, GTS_FINAL) & GTS_FINAL)
		return; /* a TLS 1.2 renegotiation of a session left alone */

	if (rfd >= 0 && moved_by_gnutls(g, rfd, version, kc)) {
		ktls_gt_secret_wipe(&g->sec, 0);
		ktls_gt_secret_wipe(&g->sec, 1);
		return;
	}
	if ((atomic_load(&g->st) & GTS_CUSTOM) || rfd < 0 || rfd != wfd ||
	    !(e = ktls_fd_get(rfd))) {
		ktls_gt_secret_wipe(&g->sec, 0);
		ktls_gt_secret_wipe(&g->sec, 1);
		r[0] = r[1] = KTLS_R_NOT_SOCKET_BIO;
		ktls_stats_session(r[0], r[1]);
		ktls_dbg("GnuTLS session without a plain socket transport "
			 "(own push/pull functions or two fds): stays in "
			 "userspace");
		return;
	}
	g->fd = rfd;
	g->version = version;
	/* Whatever an earlier socket with this number left is stale. */
	ktls_fd_reset(e);
	for (int rx = 0; rx < 2; rx++)
		r[rx] = ktls_policy_check(rx, version, kc);
	if (r[0] == KTLS_R_MOVED || r[1] == KTLS_R_MOVED) {
		enum ktls_reason sr = ktls_check_socket(&ktls_sockops_sys, rfd);
		int err = 0;
		if (sr == KTLS_R_MOVED)
			sr = ktls_attach_ulp(&ktls_sockops_sys, rfd, &err);
		atomic_store(&e->ulp_err, (uint8_t)(err > 0 && err < 256 ? err : 0));
		for (int rx = 0; rx < 2; rx++)
			if (r[rx] == KTLS_R_MOVED && sr != KTLS_R_MOVED)
				r[rx] = sr;
		if (r[1] == KTLS_R_MOVED)
			r[1] = rx_check(g, version);
	}
	/* RX first: if TX then fails, GnuTLS keeps sending and we read;
	 * both halves of the record layer are interposed either way. */
	for (int rx = 1; rx >= 0; rx--) {
		if (r[rx] != KTLS_R_MOVED)
			continue;
		int err;
		r[rx] = install(g, rx, version, kc, &err);
		if (r[rx] == KTLS_R_MOVED &&
		    !kernel_has(rfd, rx ? TLS_RX : TLS_TX, version, kc))
			r[rx] = KTLS_R_VERIFY_FAILED;
		atomic_store(rx ? &e->rx_err : &e->tx_err,
			     (uint8_t)(err > 0 && err < 256 ? err : 0));
	}
	unsigned moved = (r[0] == KTLS_R_MOVED ? GTS_TX : 0) |
			 (r[1] == KTLS_R_MOVED ? GTS_RX : 0);
	if (moved & GTS_TX)
		ktls_gt.transport_set_push_function(s, fence_push);
	if (moved & GTS_RX)
		ktls_gt.transport_set_pull_function(s, fence_pull);
	/* Secrets only for a direction the kernel holds and may rekey. */
	g->kc = kc;
	if (!(moved & GTS_RX) || version != KTLS_TLS13)
		ktls_gt_secret_wipe(&g->sec, 1);
	if (!(moved & GTS_TX) || version != KTLS_TLS13)
		ktls_gt_secret_wipe(&g->sec, 0);
	else if (g->sec.tx_len)
		atomic_store(&e->tx_key_limit, ktls_policy_tx_key_budget(kc));
	if (moved) {
		atomic_fetch_or(&g->st, moved);
		atomic_fetch_add(&n_moved, 1);
	}
	if (r[0] == KTLS_R_VERIFY_FAILED || r[1] == KTLS_R_VERIFY_FAILED) {
		/* We set it and the kernel says otherwise: nothing is safe. */
		atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
		atomic_store(&g->fail_code, GNUTLS_E_INTERNAL_ERROR);
		atomic_fetch_or(&g->st, GTS_FAILED | GTS_TX | GTS_RX);
		if (!moved)
			atomic_fetch_add(&n_moved, 1);
		ktls_err("fd=%d: the kernel does not hold the TLS state just "
			 "installed; failing this connection",
			 rfd);
	}
	record_session(s, rfd, e, version, kc, r, "gnutls");
}

/* ---- the record layer over the kernel -------------------------------- */

static int fail(struct ktls_gts *g, int code)
{
	int expected = 0;
	atomic_compare_exchange_strong(&g->fail_code, &expected, code);
	atomic_fetch_or(&g->st, GTS_FAILED);
	return atomic_load(&g->fail_code);
}

static void count(struct ktls_gts *g, enum ktls_io io, size_t n)
{
	struct ktls_fd *e = ktls_fd_tracked(g->fd);
	if (e)
		ktls_sess_count(e, io, n);
}

static int send_flags(const struct ktls_gts *g)
{
	return (g->init_flags & GNUTLS_NO_SIGNAL) ? MSG_NOSIGNAL : 0;
}

/* One record of a type other than data, through the kernel. */
static ssize_t send_record(struct ktls_gts *g, uint8_t type, const void *body,
			   size_t len)
{
	return ktls_record_send(g->fd, type, body, len, send_flags(g));
}

/* Our TLS 1.3 KeyUpdate through the kernel, then the kernel's next TX
 * key. 0; GNUTLS_E_AGAIN/INTERRUPTED when nothing went out (retry);
 * otherwise the connection failed. */
static int send_key_update(struct ktls_gts *g, int request)
{
	uint8_t msg[5] = { 24, 0, 0, 1, (uint8_t)(request ? 1 : 0) };
	struct ktls_fd *e = ktls_fd_tracked(g->fd);
	ssize_t n = send_record(g, KTLS_CT_HANDSHAKE, msg, sizeof(msg));
	if (n < 0) {
		int err = errno, rc = ktls_gt_err_from_errno(err, 1);
		if (rc == GNUTLS_E_AGAIN)
			atomic_store(&g->last_dir, 1);
		errno = err;
		return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED
			       ? rc
			       : fail(g, rc);
	}
	const char *why = NULL;
	if (n != (ssize_t)sizeof(msg))
		why = "only partly sent";
	else if (ktls_gt_rekey(&g->sec, g->fd, 0, g->kc) != 0)
		why = "sent, but the kernel did not take the next TX key";
	if (why) {
		/* The peer reads under the next key from here on. */
		ktls_err("fd=%d: TLS 1.3 KeyUpdate %s; failing this "
			 "connection rather than sending under a stale key",
			 g->fd, why);
		if (e)
			atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
		return fail(g, GNUTLS_E_INTERNAL_ERROR);
	}
	atomic_fetch_and(&g->st, ~(unsigned)GTS_KU_OWED);
	if (e) {
		atomic_store(&e->tx_key_bytes, 0);
		atomic_fetch_and(&e->flags, ~(uint32_t)KTLS_FD_REKEY_DUE);
	}
	ktls_dbg("fd=%d: TLS 1.3 KeyUpdate sent%s; next TX key installed",
		 g->fd, request ? " (update requested)" : "");
	return 0;
}

/* Before data: the KeyUpdate the peer asked for, or the one the TX key's
 * byte budget calls for. 0: go on with the data. */
static int key_update_first(struct ktls_gts *g)
{
	struct ktls_fd *e;
	if (atomic_load_explicit(&g->st, memory_order_relaxed) & GTS_KU_OWED)
		return send_key_update(g, 0);
	if (g->sec.tx_len && (e = ktls_fd_tracked(g->fd)) &&
	    (atomic_load_explicit(&e->flags, memory_order_relaxed) &
	     KTLS_FD_REKEY_DUE)) {
		int rc = send_key_update(g, 0);
		/* The budget stays far below the limit: next time. */
		return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ? 0
									  : rc;
	}
	return 0;
}

int ktls_gts_key_update(struct ktls_gts *g, unsigned flags)
{
	unsigned st = atomic_load(&g->st);
	if (!(st & GTS_TX))
		return 1; /* GnuTLS sends it; an answer comes through our RX */
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_BYE)
		return GNUTLS_E_INVALID_SESSION;
	if (g->version != KTLS_TLS13)
		return GNUTLS_E_INVALID_REQUEST; /* as GnuTLS answers */
	if (!ktls_gt_can_rekey(&g->sec, 0)) {
		ktls_err("fd=%d: refusing gnutls_session_key_update: the kernel "
			 "holds this session's TX key and %s",
			 g->fd,
			 ktls_engine_kernel_rekeys()
				 ? "the traffic secret of the next one is not "
				   "known"
				 : "cannot take the next one (6.14+ can)");
		return GNUTLS_E_UNIMPLEMENTED_FEATURE;
	}
	return send_key_update(g, (flags & GNUTLS_KU_PEER) != 0);
}

ssize_t ktls_gts_send(struct ktls_gts *g, const void *data, size_t size)
{
	unsigned st = atomic_load(&g->st);
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_BYE)
		return GNUTLS_E_INVALID_SESSION;
	if (!data && !size) { /* the retry after AGAIN/INTERRUPTED */
		if (!g->pend_len)
			return 0;
		data = g->pend;
		size = g->pend_len;
	}
	int err, rc = key_update_first(g);
	if (rc == 0) {
		ssize_t n = ktls_data_send(g->fd, data, size, send_flags(g));
		if (n >= 0) {
			g->pend_len = 0;
			count(g, KTLS_IO_WRITE, (size_t)n);
			return n;
		}
		rc = ktls_gt_err_from_errno(errno, 1);
	}
	err = errno;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		atomic_store(&g->last_dir, 1);
		if (data != g->pend) {
			if (!g->pend)
				g->pend = malloc(PEND_MAX);
			g->pend_len = 0;
			if (g->pend) {
				g->pend_len = size < PEND_MAX ? size : PEND_MAX;
				memcpy(g->pend, data, g->pend_len);
			}
		}
	}
	errno = err;
	return rc;
}

ssize_t ktls_gts_send_file(struct ktls_gts *g, int fd, off_t *offset,
			   size_t count_)
{
	unsigned st = atomic_load(&g->st);
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_BYE)
		return GNUTLS_E_INVALID_SESSION;
	int rc = key_update_first(g);
	if (rc != 0)
		return rc;
	ktls_real_ensure();
	/* Zero copy: the kernel encrypts the file's pages on the way out. */
	ssize_t n = ktls_real.sendfile(g->fd, fd, offset, count_);
	if (n >= 0) {
		count(g, KTLS_IO_WRITE, (size_t)n);
		atomic_fetch_add(&ktls_stats.sendfile_kernel,
				 (unsigned long long)n);
		return n;
	}
	rc = ktls_gt_err_from_errno(errno, 1);
	if (rc == GNUTLS_E_AGAIN)
		atomic_store(&g->last_dir, 1);
	return rc;
}

/* One recvmsg: the record type comes in a cmsg (data when absent). */
static ssize_t krecv(struct ktls_gts *g, void *buf, size_t len, int *type)
{
	return ktls_record_recv(g->fd, buf, len, type);
}

static int recv_error(struct ktls_gts *g, int err)
{
	int rc = ktls_gt_err_from_errno(err, 0);
	if (rc == GNUTLS_E_AGAIN) {
		atomic_store(&g->last_dir, 0);
	} else if (rc != GNUTLS_E_INTERRUPTED) {
		if (err == EKEYEXPIRED)
			ktls_err("fd=%d: the kernel paused RX for a TLS 1.3 "
				 "KeyUpdate it cannot follow; failing this "
				 "connection",
				 g->fd);
		rc = fail(g, rc);
	}
	errno = err;
	return rc;
}

/* EOF from TCP: a truncation attack unless close_notify came first. */
static int eof(struct ktls_gts *g)
{
	return (atomic_load(&g->st) & GTS_EOF) ? 0
					       : GNUTLS_E_PREMATURE_TERMINATION;
}

/* The rest of the control record being collected. */
static int ctrl_more(struct ktls_gts *g)
{
	int type;
	ssize_t n = krecv(g, g->ctrl + g->ctrl_len, CTRL_MAX - g->ctrl_len,
			  &type);
	if (n < 0)
		return recv_error(g, errno);
	if (n == 0)
		return fail(g, eof(g));
	if (type != g->ctrl_type)
		return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
	g->ctrl_rec = g->ctrl_len;
	g->ctrl_len += (size_t)n;
	return CONTINUE;
}

static void consume(struct ktls_gts *g, size_t n)
{
	memmove(g->ctrl, g->ctrl + n, g->ctrl_len - n);
	g->ctrl_len -= n;
	/* Emptied: the next read is a new record. Otherwise ctrl[0] begins
	 * one only where the last record read began; an earlier record's
	 * start is not tracked, which can only make a KeyUpdate look
	 * misplaced (a failed connection, never a wrong key). */
	g->ctrl_head = !g->ctrl_len || g->ctrl_rec == n;
	g->ctrl_rec = g->ctrl_rec >= n ? g->ctrl_rec - n : SIZE_MAX;
}

/* GnuTLS answers a TLS 1.3 post-handshake message it handled with
 * GNUTLS_E_AGAIN, blocking socket or not, and programs rely on it: gnutls-cli
 * goes back to select(), and reading on here would block it while its
 * stdin waits. */
static int async_done(struct ktls_gts *g)
{
	g->async = 1;
	atomic_store(&g->last_dir, 0);
	return GNUTLS_E_AGAIN;
}

/* A TLS 1.3 KeyUpdate read by the kernel, which stopped reading until it
 * has the next key (6.14+; older kernels read on under the old one and
 * fail the next record). */
static int key_update_received(struct ktls_gts *g, int at_start, int req)
{
	const char *why = NULL;
	if (req != 0 && req != 1) {
		ktls_err("fd=%d: malformed TLS 1.3 KeyUpdate from the peer; "
			 "failing this connection",
			 g->fd);
		return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
	}
	if (!at_start)
		why = "behind another message in one record, where the kernel "
		      "does not look for it";
	else if (!ktls_engine_kernel_rekeys())
		why = "this kernel cannot take the next key (6.14+ can)";
	else if (!ktls_gt_can_rekey(&g->sec, 1))
		why = "the traffic secret the next key derives from is not "
		      "known (GnuTLS without keylog functions or HKDF)";
	else if (ktls_gt_rekey(&g->sec, g->fd, 1, g->kc) != 0)
		why = "installing the next key failed";
	if (why) {
		ktls_err("fd=%d: TLS 1.3 KeyUpdate from the peer: %s; failing "
			 "this connection rather than reading under a stale "
			 "key",
			 g->fd, why);
		return fail(g, GNUTLS_E_UNIMPLEMENTED_FEATURE);
	}
	ktls_dbg("fd=%d: TLS 1.3 KeyUpdate received; next RX key installed",
		 g->fd);
	/* RFC 8446 4.6.3: ours goes out before our next data, as GnuTLS
	 * itself does it (from the next send). With TX left in GnuTLS, the
	 * request never reached GnuTLS and stays unanswered: the peer's
	 * keys are unaffected either way. */
	if (req && (atomic_load(&g->st) & GTS_TX) &&
	    ktls_gt_can_rekey(&g->sec, 0))
		atomic_fetch_or(&g->st, GTS_KU_OWED);
	return async_done(g);
}

static int handshake_msg(struct ktls_gts *g, uint8_t type, size_t len,
			 int at_start, int req)
{
	static atomic_int said_ticket;
	int server = (atomic_load(&g->st) & GTS_SERVER) != 0;
	switch (ktls_gt_hs_kind(g->version, server, type)) {
	case KTLS_GT_HS_DROP:
		if (!atomic_exchange(&said_ticket, 1))
			ktls_dbg("fd=%d: TLS 1.3 NewSessionTicket read by the "
				 "kernel is dropped: this session cannot be "
				 "resumed",
				 g->fd);
		return async_done(g);
	case KTLS_GT_HS_KEY_UPDATE:
		return key_update_received(g, at_start, len == 5 ? req : -1);
	case KTLS_GT_HS_REHANDSHAKE:
		return GNUTLS_E_REHANDSHAKE;
	default:
		return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
	}
}

static int ctrl_process(struct ktls_gts *g)
{
	for (;;) {
		if (g->ctrl_type == KTLS_CT_ALERT) {
			if (g->ctrl_len < 2) {
				int r = ctrl_more(g);
				if (r != CONTINUE)
					return r;
				continue;
			}
			uint8_t level = g->ctrl[0], desc = g->ctrl[1];
			g->ctrl_len = 0; /* one alert per record */
			atomic_store(&g->last_alert, desc);
			int rc = ktls_gt_alert_result(g->version, level, desc);
			if (rc == 0)
				atomic_fetch_or(&g->st, GTS_EOF);
			else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
				fail(g, rc);
			return rc;
		}
		if (g->ctrl_type != KTLS_CT_HANDSHAKE) {
			g->ctrl_len = 0;
			return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
		}
		if (!g->ctrl_len)
			return CONTINUE;
		size_t need = ktls_gt_hs_msg_len(g->ctrl, g->ctrl_len);
		if (need > CTRL_MAX) {
			g->ctrl_len = 0;
			return fail(g, GNUTLS_E_RECORD_OVERFLOW);
		}
		if (!need || need > g->ctrl_len) {
			int r = ctrl_more(g);
			if (r != CONTINUE)
				return r;
			continue;
		}
		uint8_t type = g->ctrl[0];
		int req = need > 4 ? g->ctrl[4] : -1, head = g->ctrl_head;
		consume(g, need);
		int r = handshake_msg(g, type, need, head, req);
		if (r != CONTINUE)
			return r;
	}
}

ssize_t ktls_gts_recv(struct ktls_gts *g, void *data, size_t size)
{
	unsigned st = atomic_load(&g->st);
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_EOF)
		return 0;
	if (!size)
		return 0;
	g->async = 0;
	for (;;) {
		int r;
		if (g->ctrl_len) {
			r = ctrl_process(g);
		} else {
			int type;
			ssize_t n = krecv(g, data, size, &type);
			if (n < 0)
				return recv_error(g, errno);
			if (n == 0)
				return eof(g);
			if (type == KTLS_CT_APPLICATION_DATA) {
				count(g, KTLS_IO_READ, (size_t)n);
				return n;
			}
			/* A control record landed in the caller's buffer
			 * (maybe only its start): collect it in ours. */
			if (!g->ctrl && !(g->ctrl = malloc(CTRL_MAX)))
				return fail(g, GNUTLS_E_MEMORY_ERROR);
			if ((size_t)n > CTRL_MAX)
				return fail(g, GNUTLS_E_RECORD_OVERFLOW);
			memcpy(g->ctrl, data, (size_t)n);
			g->ctrl_len = (size_t)n;
			g->ctrl_rec = 0;
			g->ctrl_head = 1;
			g->ctrl_type = (uint8_t)type;
			r = ctrl_process(g);
		}
		if (r != CONTINUE)
			return r;
	}
}

static int send_alert(struct ktls_gts *g, uint8_t level, uint8_t desc)
{
	uint8_t body[2] = { level, desc };
	ssize_t n = send_record(g, KTLS_CT_ALERT, body, sizeof(body));
	if (n == (ssize_t)sizeof(body))
		return 0;
	if (n >= 0) /* a 2-byte record is never split; be safe anyway */
		return fail(g, GNUTLS_E_PUSH_ERROR);
	int rc = ktls_gt_err_from_errno(errno, 1);
	if (rc == GNUTLS_E_AGAIN)
		atomic_store(&g->last_dir, 1);
	return rc;
}

int ktls_gts_alert_send(struct ktls_gts *g, int level, int desc)
{
	if (!(atomic_load(&g->st) & GTS_TX))
		return 1; /* caller: GnuTLS sends it */
	if (atomic_load(&g->st) & (GTS_FAILED | GTS_BYE))
		return GNUTLS_E_INVALID_SESSION;
	return send_alert(g, (uint8_t)level, (uint8_t)desc);
}

int ktls_gts_bye(struct ktls_gts *g, gnutls_close_request_t how)
{
	unsigned st = atomic_load(&g->st);
	int rc;
	if (!(st & GTS_BYE)) {
		if (st & GTS_FAILED)
			return atomic_load(&g->fail_code);
		rc = (st & GTS_TX) ? send_alert(g, GNUTLS_AL_WARNING,
						GNUTLS_A_CLOSE_NOTIFY)
				   : ktls_gt.bye(g->s, GNUTLS_SHUT_WR);
		if (rc < 0)
			return rc;
		atomic_fetch_or(&g->st, GTS_BYE);
	}
	if (how != GNUTLS_SHUT_RDWR)
		return 0;
	/* Wait for the peer's close_notify; whatever data comes first is
	 * dropped, as GnuTLS does. */
	char scratch[4096];
	for (;;) {
		ssize_t n = (st & GTS_RX)
				    ? ktls_gts_recv(g, scratch, sizeof(scratch))
				    : ktls_gt.record_recv(g->s, scratch,
							  sizeof(scratch));
		/* A ticket or KeyUpdate on the way is no reason to stop. */
		if (n == GNUTLS_E_AGAIN && (st & GTS_RX) && g->async)
			continue;
		if (n <= 0) {
			explicit_bzero(scratch, sizeof(scratch));
			return (int)n;
		}
	}
}

int ktls_gts_last_alert(struct ktls_gts *g)
{
	return atomic_load(&g->last_alert);
}

int ktls_gts_direction(struct ktls_gts *g)
{
	return atomic_load(&g->last_dir);
}

int ktls_gts_refuse(struct ktls_gts *g, const char *what)
{
	ktls_err("fd=%d: refusing %s: this GnuTLS session's records are in "
		 "the kernel, and GnuTLS cannot give it new keys",
		 g->fd, what);
	return GNUTLS_E_UNIMPLEMENTED_FEATURE;
}
