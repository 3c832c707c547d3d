/*
 * What the engine keeps per SSL, and how it learns it: the keylog and
 * message callbacks it chains in front of the program's (engine_callbacks.c)
 * fill it; the installer (engine.c) reads it. Internal to the engine.
 */
#ifndef KTLS_SHIM_ENGINE_STATE_H
#define KTLS_SHIM_ENGINE_STATE_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "core/cipher.h"
#include "openssl/engine.h"
#include "tls/crypto_info.h"
#include "tls/recseq.h"
#include "tls/secrets.h"
#include "tls/tls13_keys.h"

/* Per SSL (ex_data), freed with it. The fd entry borrows the pointer for
 * the recvmsg/sendmsg hooks, which run inside this SSL's own I/O. */
struct ktls_keys {
	struct ktls_secrets sec; /* TLS 1.3 traffic secrets */
	enum ktls_cipher kc;
	int fd; /* -1 until the fd entry points here */
	struct ktls_recseq seq; /* engine=shim: from the message callback */
	uint8_t mode_ours;      /* we set SSL_MODE_RELEASE_BUFFERS */
	uint8_t settled;        /* the first handshake's outcome is final */
	uint8_t own_bio;        /* over the program's own BIO: counted too */
	/* libssl without kTLS: the record layer the shim runs for it */
	struct ktls_orl *orl;
};

/* Whether the engine counts this SSL's records and keeps its TLS 1.3 TX
 * secret: engine = shim, a libssl without kTLS, or an own-BIO session. */
static inline int ktls_engine_counts(const struct ktls_keys *k)
{
	return ktls_engine_all() || (k && k->own_bio);
}

/* The SSL's state; with create, made on first use (NULL: out of memory). */
struct ktls_keys *ktls_engine_keys(const SSL *s, int create);

/* Once the first handshake is settled: the program's own message callback
 * straight from OpenSSL again, and its own buffer mode. */
void ktls_engine_restore_callbacks(SSL *s, struct ktls_keys *k);

/* engine.c: one direction's crypto_info through OpenSSL's socket BIO
 * (BIO_CTRL_SET_KTLS), its setsockopt() policed; *seen: it was made. */
long ktls_engine_bio_set_ktls(BIO *b, int fd, int rx,
			      const struct ktls_crypto_info *ci, int *seen);

#endif
