/*
 * TLS 1.2 key block (RFC 5246 6.3) for the AEAD suites the kernel takes:
 * PRF(master_secret, "key expansion", server_random + client_random), split
 * into the write keys and implicit IVs (no MAC keys for AEADs). Through
 * libcrypto's TLS1-PRF, reached by the same ops as tls13_keys.c.
 */
#ifndef KTLS_SHIM_TLS12_KEYS_H
#define KTLS_SHIM_TLS12_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "core/cipher.h"
#include "tls/tls13_keys.h"

struct ktls_tls12_keys {
	uint8_t key[2][32]; /* [0] client write, [1] server write */
	uint8_t iv[2][12];
	uint8_t key_len, iv_len;
};

/* The PRF's hash for the suites behind kc: SHA-384 for AES-256-GCM
 * (every *_SHA384 suite), SHA-256 for the others (RFC 5288, 6655, 7905). */
const char *ktls_tls12_prf_digest(enum ktls_cipher kc);

/* 0 on success; out is wiped on failure. */
int ktls_tls12_key_block(const struct ktls_kdf_ops *ops, enum ktls_cipher kc,
			 const uint8_t *master, size_t master_len,
			 const uint8_t client_random[32],
			 const uint8_t server_random[32],
			 struct ktls_tls12_keys *out);

#endif
