#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "crypto_info.h"
#include "fault.h"
#include "engine_state.h"
#include "ktls_install.h"
#include "log.h"
#include "ossl.h"
#include "ossl_record.h"
#include "real.h"
#include "policy.h"
#include "shim.h"
#include "stats.h"
#include "tls12_keys.h"
#include "tls13_keys.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define TLS_CT_HANDSHAKE 22
#define TLS_CT_APPLICATION_DATA 23
#define TLS_HS_KEY_UPDATE 24
#define TLS_MAX_PLAINTEXT 16384
/* Internal in 3.0/3.1 (include/internal/bio.h; the public header lists it
 * in a comment as reserved): enable kTLS on a socket BIO, num 1 TX, 0 RX. */
#define OSSL_BIO_CTRL_SET_KTLS 72


/*
 * What OpenSSL 3.0/3.1 pass to BIO_CTRL_SET_KTLS on Linux (struct
 * tls_crypto_info_all, include/internal/ktls.h): the kernel's struct in a
 * union of all of them, then its length. Not public, so the setsockopt()
 * it turns into is checked against what we put in before it reaches the
 * kernel (ktls_engine_check_setsockopt).
 */
struct ossl_ktls_info {
	union {
		struct tls12_crypto_info_aes_gcm_128 gcm128;
		struct tls12_crypto_info_aes_gcm_256 gcm256;
		struct tls12_crypto_info_aes_ccm_128 ccm128;
		struct tls12_crypto_info_chacha20_poly1305 chacha;
	} u;
	size_t len;
};

static _Thread_local struct {
	int fd, name;
	const void *val;
	socklen_t len;
	int seen; /* the BIO did call setsockopt() */
} expect = { -1, 0, NULL, 0, 0 };

static const struct ktls_kdf_ops *kdf(void)
{
	static struct ktls_kdf_ops ops;
	ops.fetch = ktls_ossl.EVP_KDF_fetch;
	ops.free = ktls_ossl.EVP_KDF_free;
	ops.ctx_new = ktls_ossl.EVP_KDF_CTX_new;
	ops.ctx_free = ktls_ossl.EVP_KDF_CTX_free;
	ops.derive = ktls_ossl.EVP_KDF_derive;
	ops.cleanse = ktls_ossl.OPENSSL_cleanse;
	return &ops;
}

static void wipe(void *p, size_t n)
{
	ktls_ossl.OPENSSL_cleanse(p, n);
}

/* The engine drives 3.0/3.1's record layer through the socket BIO's kTLS
 * flags. 3.2's record layer picks its kTLS method when keys change and
 * would never notice the flags; it moves TLS 1.3 RX itself anyway. */
static int record_layer_known(void)
{
	return ktls_ossl.modern &&
	       ktls_ossl.OpenSSL_version_num() < 0x30200000L;
}

/*
 * Whether this libssl's socket BIO takes the kTLS ctrl at all: a build
 * without kTLS ignores it, and then nothing OpenSSL does can move a
 * session. Asked once, on a socket that is not TCP, with a crypto_info the
 * setsockopt() hook recognises as ours and refuses before any kernel sees
 * it (its cipher is none).
 */
static int probe_lib_ktls(void)
{
	int saved = errno; /* the program's, inside its SSL_CTX_new() */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errno = saved;
		return 1; /* cannot tell: the BIO path, which fails safe */
	}
	ktls_fault_quiet(1);
	BIO *b = ktls_ossl.BIO_new_socket(fd, BIO_NOCLOSE);
	struct ossl_ktls_info oi;
	memset(&oi, 0, sizeof(oi));
	oi.len = sizeof(oi.u.gcm128);
	expect.fd = fd;
	expect.name = TLS_TX;
	expect.val = &oi.u;
	expect.len = (socklen_t)oi.len;
	expect.seen = 0;
	if (b)
		ktls_ossl.BIO_ctrl(b, OSSL_BIO_CTRL_SET_KTLS, 1, &oi);
	int seen = expect.seen;
	expect.fd = -1;
	expect.val = NULL;
	if (b)
		ktls_ossl.BIO_free(b);
	struct ktls_fd *e = ktls_fd_get(fd);
	if (e)
		ktls_fd_reset(e);
	ktls_real_ensure();
	ktls_real.close(fd);
	ktls_fault_quiet(0);
	errno = saved;
	return b ? seen : 1;
}

int ktls_engine_lib_has_ktls(void)
{
	static _Atomic int known = -1;
	int k = atomic_load(&known);
	if (k < 0) {
		k = probe_lib_ktls();
		atomic_store(&known, k);
		if (!k)
			ktls_dbg("libssl has no kTLS (its socket BIO ignores the "
				 "kTLS ctrl): the shim's engine and record "
				 "layer move sessions");
	}
	return k;
}

int ktls_engine_all(void)
{
	if (!record_layer_known())
		return 0;
	return ktls_cfg.engine == KTLS_ENGINE_SHIM ||
	       (ktls_cfg.engine == KTLS_ENGINE_AUTO &&
		!ktls_engine_lib_has_ktls());
}

int ktls_engine_own(void)
{
	return ktls_engine_all() && !ktls_engine_lib_has_ktls();
}

int ktls_engine_wanted(void)
{
	return ktls_engine_all() ||
	       (ktls_cfg.engine == KTLS_ENGINE_AUTO && record_layer_known() &&
		(ktls_cfg.versions & KTLS_VERSION_BIT_TLS13) &&
		(ktls_cfg.directions & KTLS_DIR_RX));
}

int ktls_engine_kernel_rekeys(void)
{
	/* The rekey counters arrived with rekey itself (6.14). */
	static _Atomic int known = -1;
	int k = atomic_load(&known);
	if (k >= 0)
		return k;
	char buf[4096];
	ssize_t n = 0;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/net/tls_stat",
			      O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
		syscall(SYS_close, fd);
	}
	buf[n > 0 ? n : 0] = 0;
	k = strstr(buf, "TlsRxRekeyOk") != NULL;
	atomic_store(&known, k);
	return k;
}

/* TLS 1.2: the key block from the session's master secret. */
static enum ktls_reason build12(SSL *s, struct ktls_keys *k,
				struct ktls_crypto_info *ci, enum ktls_cipher kc,
				int rx, uint64_t seq)
{
	uint8_t master[SSL_MAX_MASTER_KEY_LENGTH], cr[32], sr[32], nonce[8];
	struct ktls_tls12_keys kb;
	SSL_SESSION *sess = ktls_ossl.SSL_get_session(s);
	size_t ml = sess ? ktls_ossl.SSL_SESSION_get_master_key(
				   sess, master, sizeof(master))
			 : 0;
	enum ktls_reason r = KTLS_R_NO_SECRET;
	/* Whose key: the client writes with the first, the server with the
	 * second; we read with the other side's. */
	int mine = ktls_ossl.SSL_is_server(s) ? 1 : 0, i = rx ? !mine : mine;
	const uint8_t *explicit_nonce = NULL;

	if (!ml || ktls_ossl.SSL_get_client_random(s, cr, 32) != 32 ||
	    ktls_ossl.SSL_get_server_random(s, sr, 32) != 32)
		goto cleanup;
	/* The kernel sends its explicit nonce and counts up from it. OpenSSL
	 * sealed its Finished with one it chose (at random, for GCM):
	 * carry on from that one, as its own installer does, so no nonce is
	 * ever used twice under this key. ChaCha20 has none. */
	if (!rx && kc != KTLS_CIPHER_CHACHA20_POLY1305) {
		r = KTLS_R_SEQ_UNKNOWN;
		if (!k->seq.nonce_ok)
			goto cleanup;
		/* The Finished was record 0 under this key: the next
		 * record's nonce is its own plus seq (big-endian). */
		memcpy(nonce, k->seq.nonce, sizeof(nonce));
		unsigned carry = 0;
		for (int b = 7; b >= 0; b--) {
			unsigned v = nonce[b] + (unsigned)((seq >> (8 * (7 - b))) &
							   0xff) +
				     carry;
			nonce[b] = (uint8_t)v;
			carry = v >> 8;
		}
		explicit_nonce = nonce;
	}
	r = KTLS_R_CIPHER_UNSUPPORTED;
	if (ktls_tls12_key_block(kdf(), kc, master, ml, cr, sr, &kb) != 0)
		goto cleanup;
	if (ktls_crypto_info_build(ci, KTLS_TLS12, kc, kb.key[i], kb.key_len,
				   kb.iv[i], kb.iv_len, explicit_nonce,
				   seq) == 0)
		r = KTLS_R_MOVED;
	wipe(&kb, sizeof(kb));
cleanup:
	wipe(master, sizeof(master));
	return r;
}

static enum ktls_reason attach(int fd, struct ktls_fd *e)
{
	int err = 0;
	if (atomic_load(&e->flags) & KTLS_FD_ULP)
		return KTLS_R_MOVED;
	enum ktls_reason r = ktls_check_socket(&ktls_sockops_sys, fd);
	if (r != KTLS_R_MOVED)
		return r;
	if (ktls_has_ulp(&ktls_sockops_sys, fd) != 1) {
		r = ktls_attach_ulp(&ktls_sockops_sys, fd, &err);
		if (r != KTLS_R_MOVED) {
			atomic_store(&e->ulp_err, (uint8_t)(err > 0 && err < 256
								  ? err
								  : 255));
			atomic_fetch_or(&e->flags, KTLS_FD_ULP_TRIED);
			return r;
		}
	}
	atomic_fetch_or(&e->flags, KTLS_FD_ULP | KTLS_FD_ULP_TRIED);
	return KTLS_R_MOVED;
}

/* The kernel's crypto_info for one direction, at the next record's
 * sequence number; everything checked that can be before installing. */
static enum ktls_reason prepare(SSL *s, int fd, struct ktls_fd *e,
				struct ktls_keys *k, enum ktls_cipher kc, int rx,
				struct ktls_crypto_info *ci)
{
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	/* Records OpenSSL already holds were read under this key, and the
	 * kernel would never see them. Never guess. */
	if (rx && ktls_ossl.SSL_has_pending(s))
		return KTLS_R_DATA_PENDING;
	/* engine=shim counts records; auto moves only from the callback at
	 * the end of the handshake, before any record under the key. */
	int64_t seq = ktls_engine_all() ? ktls_recseq_next(&k->seq, rx) : 0;
	if (seq < 0)
		return KTLS_R_SEQ_UNKNOWN;
	enum ktls_reason r = attach(fd, e);
	if (r != KTLS_R_MOVED)
		return r;
	/* After the ULP, so that a kernel without kTLS says so first. */
	if (rx && version == KTLS_TLS13 && !ktls_engine_kernel_rekeys() &&
	    !ktls_cfg.tls13_rx_without_rekey)
		return KTLS_R_TLS13_RX_NO_REKEY;

	memset(ci, 0, sizeof(*ci));
	if (version == KTLS_TLS13) {
		const uint8_t *secret = rx ? k->rx : k->tx;
		size_t len = rx ? k->rx_len : k->tx_len;
		if (!len)
			return KTLS_R_NO_SECRET;
		if (ktls_tls13_crypto_info(kdf(), ci, kc, secret, len,
					   (uint64_t)seq) != 0)
			return KTLS_R_CIPHER_UNSUPPORTED;
		return KTLS_R_MOVED;
	}
	if (version == KTLS_TLS12)
		return build12(s, k, ci, kc, rx, (uint64_t)seq);
	return KTLS_R_VERSION_UNSUPPORTED;
}

enum ktls_reason ktls_engine_move(SSL *s, int fd, struct ktls_fd *e,
				  enum ktls_cipher kc, int rx)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	int all = ktls_engine_all();
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	BIO *b = rx ? ktls_ossl.SSL_get_rbio(s) : ktls_ossl.SSL_get_wbio(s);

	if (!ktls_engine_wanted() || (!all && (!rx || version != KTLS_TLS13)))
		return rx && version == KTLS_TLS13
			       ? KTLS_R_TLS13_RX_NEEDS_ENGINE
			       : KTLS_R_LIB_DECLINED;
	if (!k)
		return KTLS_R_NO_SECRET;
	struct ktls_crypto_info ci;
	enum ktls_reason r = prepare(s, fd, e, k, kc, rx, &ci);
	if (r != KTLS_R_MOVED) {
		ktls_crypto_info_wipe(&ci);
		return r;
	}

	struct ossl_ktls_info oi;
	memset(&oi, 0, sizeof(oi));
	memcpy(&oi.u, &ci.u, ci.len < sizeof(oi.u) ? ci.len : sizeof(oi.u));
	oi.len = ci.len;
	ktls_crypto_info_wipe(&ci);

	/* OpenSSL's socket BIO makes the setsockopt() and flips its own
	 * kTLS flag, which is what its record layer goes by. */
	expect.fd = fd;
	expect.name = rx ? TLS_RX : TLS_TX;
	expect.val = &oi.u;
	expect.len = (socklen_t)oi.len;
	expect.seen = 0;
	long ok = ktls_ossl.BIO_ctrl(b, OSSL_BIO_CTRL_SET_KTLS, rx ? 0 : 1, &oi);
	expect.fd = -1;
	expect.val = NULL;
	wipe(&oi, sizeof(oi));
	if (ok != 1 ||
	    ktls_ossl.BIO_ctrl(b, rx ? BIO_CTRL_GET_KTLS_RECV
				     : BIO_CTRL_GET_KTLS_SEND,
			       0, NULL) != 1) {
		int err = atomic_load(rx ? &e->rx_err : &e->tx_err);
		/* A libssl built without kTLS ignores the ctrl: no
		 * setsockopt() ever came. */
		return err	    ? ktls_reason_from_install_errno(err)
		       : !expect.seen ? KTLS_R_LIB_NO_KTLS
				      : KTLS_R_LIB_DECLINED;
	}
	/* What OpenSSL's own installer does: kTLS cannot renegotiate. */
	if (version == KTLS_TLS12)
		ktls_ossl.SSL_set_options(s, SSL_OP_NO_RENEGOTIATION);
	k->kc = kc;
	k->fd = fd;
	atomic_store(&e->keys, (uintptr_t)k);
	atomic_fetch_or(&e->flags,
			rx ? KTLS_FD_RX_SHIM |
				     (version == KTLS_TLS13 ? KTLS_FD_RX_SHIM13
							    : 0)
			   : KTLS_FD_TX_SHIM);
	return KTLS_R_MOVED;
}

void ktls_engine_settle(SSL *s, struct ktls_fd *e, enum ktls_cipher kc)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	if (!k)
		return;
	k->kc = kc;
	ktls_engine_restore_callbacks(s, k);
	k->settled = 1;
	uint32_t f = atomic_load(&e->flags);
	int rekeys = ktls_engine_kernel_rekeys();
	/* Kept only while the kernel may need the next key of a direction
	 * it holds; OpenSSL keeps its own copy of these secrets anyway. */
	if (!rekeys || !(f & KTLS_FD_RX_SHIM)) {
		wipe(k->rx, sizeof(k->rx));
		k->rx_len = 0;
	}
	if (!rekeys || !(f & KTLS_FD_TX) ||
	    atomic_load(&e->version) != KTLS_TLS13) {
		wipe(k->tx, sizeof(k->tx));
		k->tx_len = 0;
	}
	if (k->rx_len || k->tx_len) {
		k->fd = (int)(e - ktls_fdtab);
		atomic_store(&e->keys, (uintptr_t)k);
	}
	if (k->tx_len)
		atomic_store(&e->tx_key_limit, ktls_policy_tx_key_budget(kc));
}

void ktls_engine_key_update_due(SSL *s, int fd, struct ktls_fd *e,
				int (*key_update)(SSL *, int))
{
	if (!(atomic_fetch_and(&e->flags, ~(uint32_t)KTLS_FD_REKEY_DUE) &
	      KTLS_FD_REKEY_DUE) ||
	    !ktls_engine_tx_rekey_ready(e))
		return;
	if (key_update(s, SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
		/* A write waiting for its retry: next time. */
		atomic_fetch_or(&e->flags, KTLS_FD_REKEY_DUE);
		return;
	}
	ktls_dbg("fd=%d: %llu bytes under this TX key: KeyUpdate scheduled",
		 fd, (unsigned long long)atomic_load(&e->tx_key_bytes));
}

/* Installs the next key of a direction after a KeyUpdate (kernel 6.14+). */
static int rekey(int fd, struct ktls_keys *k, int rx)
{
	uint8_t *secret = rx ? k->rx : k->tx;
	size_t len = rx ? k->rx_len : k->tx_len;
	struct ktls_crypto_info ci;
	int err = 0;
	if (!len || !ktls_engine_kernel_rekeys() ||
	    ktls_tls13_next_secret(kdf(), secret, len) != 0 ||
	    ktls_tls13_crypto_info(kdf(), &ci, k->kc, secret, len, 0) != 0)
		return -1;
	enum ktls_reason r = ktls_install_dir(&ktls_sockops_sys, fd,
					      rx ? TLS_RX : TLS_TX, &ci, &err);
	if (r != KTLS_R_MOVED) {
		errno = err;
		return -1;
	}
	atomic_fetch_add(rx ? &ktls_stats.rekeys_rx : &ktls_stats.rekeys_tx,
			 1);
	return 0;
}

static struct ktls_keys *keys_at(struct ktls_fd *e)
{
	return (struct ktls_keys *)atomic_load(&e->keys);
}

static int cmsg_record_type(struct msghdr *m, struct cmsghdr **at)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_TLS &&
		    c->cmsg_type == TLS_GET_RECORD_TYPE &&
		    c->cmsg_len >= CMSG_LEN(1)) {
			*at = c;
			return *CMSG_DATA(c);
		}
	return -1;
}

/* Where in a handshake record a KeyUpdate sits: 0 first (the only place
 * the kernel looks for one), 1 behind other messages, -1 none. */
static int key_update_at(const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off + 4 <= n) {
		if (p[off] == TLS_HS_KEY_UPDATE)
			return off == 0 ? 0 : 1;
		off += 4 + ((size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 |
			    p[off + 3]);
	}
	return -1;
}

static ssize_t fail(int fd, struct ktls_fd *e, const char *why)
{
	ktls_err("fd=%d: TLS 1.3 KeyUpdate from the peer: %s; failing this "
		 "connection rather than reading under a stale key",
		 fd, why);
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
	errno = EKEYEXPIRED;
	return -1;
}

ssize_t ktls_engine_recvmsg(int fd, struct ktls_fd *e, struct msghdr *m,
			    int flags,
			    ssize_t (*real)(int, struct msghdr *, int),
			    int *record_type)
{
	*record_type = -1;
	/* Only OpenSSL's ktls_read_record() shape is ours to adjust. */
	if (!m || m->msg_iovlen != 1 || !m->msg_control ||
	    m->msg_iov[0].iov_len < 2)
		return real(fd, m, flags);
	if (atomic_load(&e->flags) & KTLS_FD_POISONED) {
		errno = EKEYEXPIRED;
		return -1;
	}
	/* One record per call (the kernel would merge data records, which
	 * 3.0 would reject as too long), and room behind it for the inner
	 * content type byte. */
	size_t want = m->msg_iov[0].iov_len;
	m->msg_iov[0].iov_len = want - 1 < TLS_MAX_PLAINTEXT ? want - 1
							     : TLS_MAX_PLAINTEXT;
	ssize_t n = real(fd, m, flags);
	m->msg_iov[0].iov_len = want;
	struct cmsghdr *c = NULL;
	int type;
	if (n < 0 || (type = cmsg_record_type(m, &c)) < 0)
		return n;
	*record_type = type;
	uint8_t *p = m->msg_iov[0].iov_base;
	if (type == TLS_CT_HANDSHAKE) {
		int at = key_update_at(p, (size_t)n);
		if (at == 1)
			return fail(fd, e, "behind another message in one "
					   "record, where the kernel does not "
					   "look for it");
		if (at == 0) {
			struct ktls_keys *k = keys_at(e);
			if (!ktls_engine_kernel_rekeys())
				return fail(fd, e, "this kernel cannot take "
						   "the next key (6.14+ can)");
			if (!k || rekey(fd, k, 1) != 0)
				return fail(fd, e, "installing the next key "
						   "failed");
			ktls_dbg("fd=%d: TLS 1.3 KeyUpdate received; next RX "
				 "key installed",
				 fd);
		}
	}
	/* 3.0 reads a TLS 1.3 record as an encrypted one would decrypt to:
	 * content, then the true type; the header says application data. */
	p[n] = (uint8_t)type;
	*CMSG_DATA(c) = TLS_CT_APPLICATION_DATA;
	return n + 1;
}

/*
 * libssl without kTLS: both directions straight into the kernel, and the
 * shim's record layer (ossl_record.c) runs the session from here on. Both
 * or neither: OpenSSL cannot read or write records through a socket with
 * one direction in the kernel. RX goes first: it is the one a kernel is
 * likelier to refuse, and refused first it leaves nothing behind.
 */
void ktls_engine_move_own(SSL *s, int fd, struct ktls_fd *e,
			  enum ktls_cipher kc, enum ktls_reason r[2])
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	struct ktls_crypto_info ci[2];
	memset(ci, 0, sizeof(ci));
	int bio = atomic_load(&ktls_orl_ssl_bio);
	for (int rx = 1; rx >= 0; rx--) {
		if (r[rx] != KTLS_R_LIB_DECLINED &&
		    r[rx] != KTLS_R_TLS13_RX_NEEDS_ENGINE)
			continue;
		r[rx] = bio ? KTLS_R_SSL_BIO
		      : !k  ? KTLS_R_NO_SECRET
			    : prepare(s, fd, e, k, kc, rx, &ci[rx]);
	}
	struct ktls_orl *o = NULL;
	if (r[0] == KTLS_R_MOVED && r[1] == KTLS_R_MOVED &&
	    !(o = ktls_orl_new(fd, (uint16_t)version, kc,
			       ktls_ossl.SSL_is_server(s))))
		r[0] = r[1] = KTLS_R_NO_MEMORY;
	if (r[0] != KTLS_R_MOVED || r[1] != KTLS_R_MOVED) {
		for (int rx = 0; rx < 2; rx++)
			if (r[rx] == KTLS_R_MOVED)
				r[rx] = KTLS_R_OTHER_DIRECTION;
		ktls_crypto_info_wipe(&ci[0]);
		ktls_crypto_info_wipe(&ci[1]);
		return;
	}
	int err = 0;
	r[1] = ktls_install_dir(&ktls_sockops_sys, fd, TLS_RX, &ci[1], &err);
	if (r[1] != KTLS_R_MOVED) {
		ktls_crypto_info_wipe(&ci[0]);
		ktls_orl_free(o);
		r[0] = KTLS_R_OTHER_DIRECTION;
		return;
	}
	r[0] = ktls_install_dir(&ktls_sockops_sys, fd, TLS_TX, &ci[0], &err);
	k->kc = kc;
	k->fd = fd;
	k->orl = o;
	atomic_store(&e->keys, (uintptr_t)k);
	uint32_t f = KTLS_FD_RX_SHIM | KTLS_FD_OWN;
	if (r[0] == KTLS_R_MOVED) {
		f |= KTLS_FD_TX_SHIM;
	} else {
		/* RX is in the kernel for good and OpenSSL cannot read it;
		 * our record layer can, but has no TX to write with: reads
		 * go on, writes fail (never in plaintext). */
		ktls_err("fd=%d: the kernel took RX but refused TX (errno %d); "
			 "writes on this connection will fail",
			 fd, err);
		f |= KTLS_FD_POISONED;
	}
	atomic_fetch_or(&e->flags, f);
	atomic_store(&ktls_orl_active, 1);
}

int ktls_engine_rekey(int fd, struct ktls_fd *e, int rx)
{
	struct ktls_keys *k = (struct ktls_keys *)atomic_load(&e->keys);
	return k ? rekey(fd, k, rx) : -1;
}

int ktls_engine_tx_rekey_ready(struct ktls_fd *e)
{
	struct ktls_keys *k = keys_at(e);
	return k && k->tx_len && ktls_engine_kernel_rekeys();
}

void ktls_engine_after_key_update_sent(int fd, struct ktls_fd *e)
{
	struct ktls_keys *k = keys_at(e);
	if (k && rekey(fd, k, 0) == 0) {
		atomic_store(&e->tx_key_bytes, 0);
		ktls_dbg("fd=%d: TLS 1.3 KeyUpdate sent; next TX key installed",
			 fd);
		return;
	}
	/* Whatever OpenSSL writes next would go out under the old key. */
	ktls_err("fd=%d: TLS 1.3 KeyUpdate sent but the kernel did not take "
		 "the next TX key; refusing to send on this connection",
		 fd);
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
}

int ktls_engine_check_setsockopt(int fd, int name, const void *val,
				 socklen_t len)
{
	if (expect.fd != fd || name != expect.name)
		return 0;
	expect.seen = 1;
	return val == expect.val && len == expect.len ? 1 : -1;
}
