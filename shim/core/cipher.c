#define _GNU_SOURCE
#include "core/cipher.h"

#include <linux/tls.h>
#include <strings.h>

static const struct ktls_cipher_desc descs[KTLS_CIPHER_COUNT] = {
	[KTLS_CIPHER_AES_128_GCM] = { "aes-128-gcm", TLS_CIPHER_AES_GCM_128,
				      16, 4, 8, 1 },
	[KTLS_CIPHER_AES_256_GCM] = { "aes-256-gcm", TLS_CIPHER_AES_GCM_256,
				      32, 4, 8, 1 },
	[KTLS_CIPHER_CHACHA20_POLY1305] = { "chacha20-poly1305",
					    TLS_CIPHER_CHACHA20_POLY1305, 32, 0,
					    12, 1 },
	/* TLS 1.3 CCM is legal, but OpenSSL 3.0's kTLS code refuses it: the
	 * shim's engines (3.0/3.1, GnuTLS) keep it TLS 1.2. OpenSSL 3.2+
	 * moves it itself (openssl/finalize.c), and 6.12 and 7.2 carry it. */
	[KTLS_CIPHER_AES_128_CCM] = { "aes-128-ccm", TLS_CIPHER_AES_CCM_128,
				      16, 4, 8, 0 },
};

const struct ktls_cipher_desc *ktls_cipher_desc(enum ktls_cipher c)
{
	if (c <= KTLS_CIPHER_NONE || c >= KTLS_CIPHER_COUNT)
		return 0;
	return &descs[c];
}

enum ktls_cipher ktls_cipher_by_name(const char *name)
{
	for (int c = 1; c < KTLS_CIPHER_COUNT; c++)
		if (strcasecmp(name, descs[c].name) == 0)
			return (enum ktls_cipher)c;
	return KTLS_CIPHER_NONE;
}

enum ktls_cipher ktls_cipher_by_kernel_type(uint16_t type)
{
	for (int c = 1; c < KTLS_CIPHER_COUNT; c++)
		if (descs[c].kernel_type == type)
			return (enum ktls_cipher)c;
	return KTLS_CIPHER_NONE;
}

const char *ktls_version_name(uint16_t version)
{
	switch (version) {
	case KTLS_TLS12: return "TLSv1.2";
	case KTLS_TLS13: return "TLSv1.3";
	default: return "other";
	}
}
