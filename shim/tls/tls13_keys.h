/*
 * TLS 1.3 key schedule pieces the shim needs to move a direction itself:
 * reading a traffic secret out of a keylog line, and RFC 8446 section 7
 * HKDF-Expand-Label for the record key, the IV and the next secret after a
 * KeyUpdate. libcrypto is reached through ops so the shim never links it and
 * unit tests can hand in the real functions.
 */
#ifndef KTLS_SHIM_TLS13_KEYS_H
#define KTLS_SHIM_TLS13_KEYS_H

#include <openssl/core.h>
#include <openssl/kdf.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cipher.h"
#include "tls/crypto_info.h"

#define KTLS_TLS13_MAX_SECRET 48 /* SHA-384 */

struct ktls_kdf_ops {
	EVP_KDF *(*fetch)(OSSL_LIB_CTX *, const char *, const char *);
	void (*free)(EVP_KDF *);
	EVP_KDF_CTX *(*ctx_new)(EVP_KDF *);
	void (*ctx_free)(EVP_KDF_CTX *);
	int (*derive)(EVP_KDF_CTX *, unsigned char *, size_t,
		      const OSSL_PARAM *);
	void (*cleanse)(void *, size_t);
	/* When set, HKDF-Expand goes through here instead of EVP_KDF (the
	 * GnuTLS backend, gnutls_kdf.c, for programs that never load
	 * libcrypto; the EVP fields may then be NULL). SHA-384 when prk_len
	 * is 48, else SHA-256. 0 on success. */
	int (*expand)(const struct ktls_kdf_ops *self, const uint8_t *prk,
		      size_t prk_len, const uint8_t *info, size_t info_len,
		      uint8_t *out, size_t out_len);
};

enum ktls_secret_kind {
	KTLS_SECRET_NONE = 0,
	KTLS_SECRET_CLIENT_APP, /* CLIENT_TRAFFIC_SECRET_0 */
	KTLS_SECRET_SERVER_APP, /* SERVER_TRAFFIC_SECRET_0 */
};

/*
 * Parses an NSS keylog line as OpenSSL hands it to the keylog callback
 * ("LABEL <client_random hex> <secret hex>", no newline). Returns the kind
 * and copies the secret into out (at most KTLS_TLS13_MAX_SECRET bytes) for
 * the two application traffic secrets; every other line is
 * KTLS_SECRET_NONE and nothing is copied.
 */
enum ktls_secret_kind ktls_keylog_parse(const char *line, uint8_t *out,
					size_t *out_len);

/* HKDF-Expand-Label(secret, label, "", out_len) with SHA-256 or SHA-384
 * (chosen by secret_len: 32 or 48). 0 on success. */
int ktls_tls13_expand(const struct ktls_kdf_ops *ops, const uint8_t *secret,
		      size_t secret_len, const char *label, uint8_t *out,
		      size_t out_len);

/* The record key (key_len bytes) and the 12-byte IV of a traffic secret. */
int ktls_tls13_key_iv(const struct ktls_kdf_ops *ops, const uint8_t *secret,
		      size_t secret_len, uint8_t *key, size_t key_len,
		      uint8_t iv[12]);

/* The kernel's TLS 1.3 struct for a traffic secret, starting at record
 * seq (0 after the handshake or a KeyUpdate; a TLS 1.3 server has sent its
 * tickets by then). 0, or -1 with ci wiped. */
int ktls_tls13_crypto_info(const struct ktls_kdf_ops *ops,
			   struct ktls_crypto_info *ci, enum ktls_cipher kc,
			   const uint8_t *secret, size_t secret_len,
			   uint64_t seq);

/* KeyUpdate: the next application traffic secret, in place. */
int ktls_tls13_next_secret(const struct ktls_kdf_ops *ops, uint8_t *secret,
			   size_t secret_len);

#endif
