#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "crypto_info.h"
#include "ktls_install.h"
#include "log.h"
#include "ossl.h"
#include "shim.h"
#include "stats.h"
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

/* Per SSL (ex_data), freed with it. The fd entry borrows the pointer for
 * the recvmsg/sendmsg hooks, which run inside this SSL's own I/O. */
struct ktls_keys {
	uint8_t rx[KTLS_TLS13_MAX_SECRET], tx[KTLS_TLS13_MAX_SECRET];
	uint8_t rx_len, tx_len; /* 0: not held */
	enum ktls_cipher kc;
	int fd; /* -1 until the fd entry points here */
};

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
	int fd;
	const void *val;
	socklen_t len;
} expect = { -1, NULL, 0 };

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

int ktls_engine_wanted(void)
{
	/* 3.2 moves TLS 1.3 RX itself, with a record layer that needs none
	 * of the help below. */
	return ktls_cfg.engine == KTLS_ENGINE_AUTO && ktls_ossl.modern &&
	       ktls_ossl.OpenSSL_version_num() < 0x30200000L &&
	       (ktls_cfg.versions & KTLS_VERSION_BIT_TLS13) &&
	       (ktls_cfg.directions & KTLS_DIR_RX);
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

static struct ktls_keys *keys_of(const SSL *s, int create)
{
	struct ktls_keys *k = ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_keys);
	if (k || !create)
		return k;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->fd = -1;
	if (!ktls_ossl.SSL_set_ex_data((SSL *)s, ktls_ossl.ex_keys, k)) {
		free(k);
		return NULL;
	}
	return k;
}

static void keylog_cb(const SSL *s, const char *line)
{
	uint8_t secret[KTLS_TLS13_MAX_SECRET];
	size_t len;
	enum ktls_secret_kind kind = ktls_keylog_parse(line, secret, &len);
	if (kind != KTLS_SECRET_NONE) {
		/* Ours is what the peer sends with (RX) and what we send
		 * with (TX, only kept for a KeyUpdate). */
		int server = ktls_ossl.SSL_is_server((SSL *)s);
		int rx = (kind == KTLS_SECRET_CLIENT_APP) == server;
		struct ktls_keys *k = keys_of(s, 1);
		if (k && (rx || ktls_engine_kernel_rekeys())) {
			memcpy(rx ? k->rx : k->tx, secret, len);
			*(rx ? &k->rx_len : &k->tx_len) = (uint8_t)len;
		}
		wipe(secret, sizeof(secret));
	}
	ktls_keylog_cb cb = ktls_engine_get_keylog_cb(
		ktls_ossl.SSL_get_SSL_CTX((SSL *)s));
	if (cb)
		cb(s, line);
}

void ktls_engine_on_ctx_new(SSL_CTX *ctx)
{
	if (ktls_engine_wanted())
		ktls_ossl.SSL_CTX_set_keylog_callback(ctx, keylog_cb);
}

void ktls_engine_set_keylog_cb(SSL_CTX *ctx, ktls_keylog_cb cb)
{
	ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_keylog,
				      (void *)cb);
	if (!ktls_engine_wanted())
		ktls_ossl.SSL_CTX_set_keylog_callback(ctx, cb);
}

ktls_keylog_cb ktls_engine_get_keylog_cb(const SSL_CTX *ctx)
{
	if (!ctx)
		return NULL;
	if (!ktls_engine_wanted())
		return ktls_ossl.SSL_CTX_get_keylog_callback(ctx);
	return (ktls_keylog_cb)ktls_ossl.SSL_CTX_get_ex_data(
		ctx, ktls_ossl.ctx_ex_keylog);
}

static int build(struct ktls_crypto_info *ci, enum ktls_cipher kc,
		 const uint8_t *secret, size_t secret_len)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	uint8_t key[32], iv[12];
	int rc = -1;
	if (d && d->key_len <= sizeof(key) &&
	    ktls_tls13_key_iv(kdf(), secret, secret_len, key, d->key_len,
			      iv) == 0) {
		rc = ktls_crypto_info_build(ci, KTLS_TLS13, kc, key, d->key_len,
					    iv, sizeof(iv), NULL, 0);
		wipe(key, sizeof(key));
		wipe(iv, sizeof(iv));
	}
	return rc;
}

enum ktls_reason ktls_engine_move_rx13(SSL *s, int fd, struct ktls_fd *e,
				       enum ktls_cipher kc)
{
	struct ktls_keys *k = keys_of(s, 0);
	BIO *rb = ktls_ossl.SSL_get_rbio(s);
	int err = 0;

	if (!ktls_engine_wanted())
		return KTLS_R_TLS13_RX_NEEDS_ENGINE;
	if (!ktls_engine_kernel_rekeys() && !ktls_cfg.tls13_rx_without_rekey)
		return KTLS_R_TLS13_RX_NO_REKEY;
	if (!k || !k->rx_len)
		return KTLS_R_NO_SECRET;
	/* Records OpenSSL already holds were read under this key: the
	 * kernel would start at the wrong sequence number. Never guess. */
	if (ktls_ossl.SSL_has_pending(s))
		return KTLS_R_DATA_PENDING;
	uint32_t f = atomic_load(&e->flags);
	if (!(f & KTLS_FD_ULP)) {
		enum ktls_reason r = ktls_check_socket(&ktls_sockops_sys, fd);
		if (r != KTLS_R_MOVED)
			return r;
		if (ktls_has_ulp(&ktls_sockops_sys, fd) != 1) {
			r = ktls_attach_ulp(&ktls_sockops_sys, fd, &err);
			if (r != KTLS_R_MOVED)
				return r;
		}
		atomic_fetch_or(&e->flags, KTLS_FD_ULP | KTLS_FD_ULP_TRIED);
	}

	struct ktls_crypto_info ci;
	struct ossl_ktls_info oi;
	if (build(&ci, kc, k->rx, k->rx_len) != 0)
		return KTLS_R_CIPHER_UNSUPPORTED;
	memset(&oi, 0, sizeof(oi));
	memcpy(&oi.u, &ci.u, ci.len < sizeof(oi.u) ? ci.len : sizeof(oi.u));
	oi.len = ci.len;
	ktls_crypto_info_wipe(&ci);

	expect.fd = fd;
	expect.val = &oi.u;
	expect.len = (socklen_t)oi.len;
	long ok = ktls_ossl.BIO_ctrl(rb, OSSL_BIO_CTRL_SET_KTLS, 0, &oi);
	expect.fd = -1;
	expect.val = NULL;
	wipe(&oi, sizeof(oi));
	if (ok != 1 || ktls_ossl.BIO_ctrl(rb, BIO_CTRL_GET_KTLS_RECV, 0,
					  NULL) != 1) {
		int rx_err = atomic_load(&e->rx_err);
		return rx_err ? ktls_reason_from_install_errno(rx_err)
			      : KTLS_R_LIB_DECLINED;
	}
	k->kc = kc;
	k->fd = fd;
	atomic_store(&e->keys, (uintptr_t)k);
	atomic_fetch_or(&e->flags, KTLS_FD_RX_SHIM);
	return KTLS_R_MOVED;
}

/* RFC 8446 5.5: AES-GCM may protect 2^24.5 full records under one key;
 * 2^38 bytes (256 GiB) stays below that. ChaCha20-Poly1305's limit is
 * beyond any connection's life. */
static uint64_t tx_budget(enum ktls_cipher kc)
{
	if (ktls_cfg.key_update_bytes != KTLS_KEY_UPDATE_AUTO)
		return ktls_cfg.key_update_bytes;
	return kc == KTLS_CIPHER_AES_128_GCM || kc == KTLS_CIPHER_AES_256_GCM
		       ? 1ull << 38
		       : 0;
}

void ktls_engine_settle(SSL *s, struct ktls_fd *e, enum ktls_cipher kc)
{
	struct ktls_keys *k = keys_of(s, 0);
	if (!k)
		return;
	k->kc = kc;
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
		atomic_store(&e->tx_key_limit, tx_budget(kc));
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
	    build(&ci, k->kc, secret, len) != 0)
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
	if (expect.fd != fd || name != TLS_RX)
		return 0;
	return val == expect.val && len == expect.len ? 1 : -1;
}

void ktls_engine_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
			 long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	struct ktls_keys *k = ptr;
	if (!k)
		return;
	struct ktls_fd *e = k->fd >= 0 ? ktls_fd_get(k->fd) : NULL;
	uintptr_t mine = (uintptr_t)k;
	if (e)
		atomic_compare_exchange_strong(&e->keys, &mine, 0);
	wipe(k, sizeof(*k));
	free(k);
}
