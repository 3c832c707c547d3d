/*
 * Building the kernel's struct tls12_crypto_info_* from key material.
 * Pure functions: no I/O, so they are unit-tested against known layouts.
 */
#ifndef KTLS_SHIM_CRYPTO_INFO_H
#define KTLS_SHIM_CRYPTO_INFO_H

#include <linux/tls.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/cipher.h"

struct ktls_crypto_info {
	union {
		struct tls_crypto_info base;
		struct tls12_crypto_info_aes_gcm_128 gcm128;
		struct tls12_crypto_info_aes_gcm_256 gcm256;
		struct tls12_crypto_info_chacha20_poly1305 chacha;
		struct tls12_crypto_info_aes_ccm_128 ccm128;
	} u;
	socklen_t len;
};

/*
 * iv: TLS 1.3: the 12-byte write IV. TLS 1.2: the implicit IV from the key
 * block (4 bytes for AES-GCM/CCM, 12 for ChaCha20-Poly1305).
 * explicit_nonce: TLS 1.2 AES only, 8 bytes or NULL to use seq; it must not
 * repeat a nonce already used with this key.
 * seq: the sequence number of the next record in this direction.
 * Returns 0, or -1 when the combination is not one the kernel accepts.
 */
int ktls_crypto_info_build(struct ktls_crypto_info *ci, uint16_t version,
			   enum ktls_cipher cipher, const uint8_t *key,
			   size_t key_len, const uint8_t *iv, size_t iv_len,
			   const uint8_t *explicit_nonce, uint64_t seq);

/* Wipes the whole structure (keys included) in a way the compiler keeps. */
void ktls_crypto_info_wipe(struct ktls_crypto_info *ci);

#endif
