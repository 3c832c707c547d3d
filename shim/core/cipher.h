/* The AEADs the kernel's TLS layer accepts and the shim knows how to move. */
#ifndef KTLS_SHIM_CIPHER_H
#define KTLS_SHIM_CIPHER_H

#include <stdint.h>

enum ktls_cipher {
	KTLS_CIPHER_NONE = 0,
	KTLS_CIPHER_AES_128_GCM,
	KTLS_CIPHER_AES_256_GCM,
	KTLS_CIPHER_CHACHA20_POLY1305,
	KTLS_CIPHER_AES_128_CCM,
	KTLS_CIPHER_COUNT,
};

#define KTLS_CIPHER_BIT(c) (1u << (c))
#define KTLS_CIPHERS_ALL                                                      \
	(KTLS_CIPHER_BIT(KTLS_CIPHER_AES_128_GCM) |                           \
	 KTLS_CIPHER_BIT(KTLS_CIPHER_AES_256_GCM) |                           \
	 KTLS_CIPHER_BIT(KTLS_CIPHER_CHACHA20_POLY1305) |                     \
	 KTLS_CIPHER_BIT(KTLS_CIPHER_AES_128_CCM))

/* TLS protocol versions as on the wire (and in struct tls_crypto_info). */
#define KTLS_TLS12 0x0303
#define KTLS_TLS13 0x0304
#define KTLS_VERSION_BIT_TLS12 1u
#define KTLS_VERSION_BIT_TLS13 2u

struct ktls_cipher_desc {
	const char *name;      /* config spelling, e.g. "aes-128-gcm" */
	uint16_t kernel_type;  /* TLS_CIPHER_* of linux/tls.h */
	uint8_t key_len;
	uint8_t salt_len;      /* implicit nonce part (0 for ChaCha20) */
	uint8_t iv_len;        /* what the kernel calls iv */
	uint8_t tls13_ok;      /* the kernel and RFC 8446 allow it in TLS 1.3 */
};

const struct ktls_cipher_desc *ktls_cipher_desc(enum ktls_cipher c);
enum ktls_cipher ktls_cipher_by_name(const char *name);
enum ktls_cipher ktls_cipher_by_kernel_type(uint16_t type);
const char *ktls_version_name(uint16_t version);

#endif
