/*
 * The shim's engine for OpenSSL: whether it runs (engine = auto/shim, a
 * libssl without kTLS), libcrypto's KDFs, and the hand-over of keys
 * through OpenSSL's socket BIO with the setsockopt() it makes policed.
 * engine_move.c moves sessions, engine_keyupdate.c follows KeyUpdates.
 */
#define _GNU_SOURCE
#include "openssl/engine.h"

#include "kernel/uapi.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/policy.h"
#include "core/real.h"
#include "core/shim.h"
#include "core/stats.h"
#include "kernel/install.h"
#include "kernel/probe.h"
#include "openssl/bind.h"
#include "openssl/engine_state.h"
#include "openssl/record_layer.h"
#include "session/keyupdate.h"
#include "tls/crypto_info.h"
#include "tls/handshake.h"
#include "tls/record.h"
#include "tls/tls12_keys.h"
#include "tls/tls13_keys.h"


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

/* Filled once: every thread reads the same table (it used to be rewritten
 * on each call, from any thread: a data race). */
static struct ktls_kdf_ops kdf_ops;
static pthread_once_t kdf_once = PTHREAD_ONCE_INIT;

static void kdf_init(void)
{
	kdf_ops.fetch = ktls_ossl.EVP_KDF_fetch;
	kdf_ops.free = ktls_ossl.EVP_KDF_free;
	kdf_ops.ctx_new = ktls_ossl.EVP_KDF_CTX_new;
	kdf_ops.ctx_free = ktls_ossl.EVP_KDF_CTX_free;
	kdf_ops.derive = ktls_ossl.EVP_KDF_derive;
	kdf_ops.cleanse = ktls_ossl.OPENSSL_cleanse;
}

const struct ktls_kdf_ops *ktls_engine_kdf(void)
{
	pthread_once(&kdf_once, kdf_init);
	return &kdf_ops;
}

/*
 * Hands OpenSSL's socket BIO one direction's crypto_info (a copy, wiped
 * here), as its own installer would: the BIO makes the setsockopt() and
 * flips its kTLS flag, which is what 3.0/3.1's record layer goes by. The
 * setsockopt() hook lets through only the bytes put in here
 * (ktls_engine_check_setsockopt). *seen: the BIO did call setsockopt().
 */
long ktls_engine_bio_set_ktls(BIO *b, int fd, int rx,
			      const struct ktls_crypto_info *ci, int *seen)
{
	struct ossl_ktls_info oi;
	memset(&oi, 0, sizeof(oi));
	memcpy(&oi.u, &ci->u, ci->len < sizeof(oi.u) ? ci->len : sizeof(oi.u));
	oi.len = ci->len;
	expect.fd = fd;
	expect.name = rx ? TLS_RX : TLS_TX;
	expect.val = &oi.u;
	expect.len = (socklen_t)oi.len;
	expect.seen = 0;
	long ok = b ? ktls_ossl.BIO_ctrl(b, OSSL_BIO_CTRL_SET_KTLS, rx ? 0 : 1,
					 &oi)
		    : 0;
	*seen = expect.seen;
	expect.fd = -1;
	expect.val = NULL;
	ktls_ossl.OPENSSL_cleanse(&oi, sizeof(oi));
	return ok;
}

/* The engine drives 3.0/3.1's record layer through the socket BIO's kTLS
 * flags. 3.2's record layer picks its kTLS method when keys change and
 * would never notice the flags; it moves TLS 1.3 RX itself anyway. */
static int record_layer_known(void)
{
	return ktls_ossl.modern && !ktls_ossl.rekeys_itself;
}

int ktls_engine_check_setsockopt(int fd, int name, const void *val,
				 socklen_t len)
{
	if (expect.fd != fd || name != expect.name)
		return 0;
	expect.seen = 1;
	return val == expect.val && len == expect.len ? 1 : -1;
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
	struct ktls_crypto_info none;
	memset(&none, 0, sizeof(none));
	none.len = sizeof(none.u.gcm128);
	int seen = 0;
	ktls_engine_bio_set_ktls(b, fd, 0 /* TX */, &none, &seen);
	if (b)
		ktls_ossl.BIO_free(b);
	struct ktls_fd *e = ktls_fd_get(fd);
	if (e)
		ktls_fd_reset(e);
	ktls_real_ensure();
	KTLS_REAL(close)(fd);
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
				 "kTLS ctrl): %s",
				 record_layer_known()
					 ? "the shim's engine and record layer "
					   "move sessions"
					 : "sessions stay in userspace (the "
					   "shim's record layer needs OpenSSL "
					   "3.0 or 3.1)");
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

/* A proven own BIO with any libssl 3: the shim's record layer serves the
 * session over the public SSL_* calls alone, never through OpenSSL's
 * record layer (its BIO_read/BIO_write on the socket are fenced), so
 * 3.2's new record layer does not matter here as it does for the
 * socket BIO above. */
int ktls_engine_own_bio(void)
{
	return ktls_cfg.custom_transports && ktls_ossl.modern &&
	       ktls_cfg.engine != KTLS_ENGINE_OPENSSL;
}

int ktls_engine_wanted(void)
{
	return ktls_engine_all() || ktls_engine_own_bio() ||
	       (ktls_cfg.engine == KTLS_ENGINE_AUTO && record_layer_known() &&
		(ktls_cfg.versions & KTLS_VERSION_BIT_TLS13) &&
		(ktls_cfg.directions & KTLS_DIR_RX));
}

/* Not where nothing could use them: engine = auto on a kernel known to
 * have kTLS without rekey and no opt-in to TLS 1.3 RX there (RX stays, TX
 * is OpenSSL's own, KeyUpdates refused). OpenSSL 3.0 formats each keylog
 * line with one sprintf() per byte: callgrind in the 6.1 VM (ktls_bench
 * conn, TLS 1.3, 22 handshakes) put 225k instructions per handshake on
 * each side there, most of the shim's 270k. Where the tls module is not
 * loaded yet nothing is known, and the callback goes in as before. */
int ktls_engine_wants_secrets(void)
{
	return ktls_engine_wanted() &&
	       (ktls_engine_all() || ktls_cfg.tls13_rx_without_rekey ||
		!ktls_kernel_cannot_rekey());
}
