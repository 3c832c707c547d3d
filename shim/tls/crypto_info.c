#define _GNU_SOURCE
#include "tls/crypto_info.h"

#include <string.h>

static void put_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

/*
 * The kernel's AES structs share one layout (info, iv, key, salt, rec_seq)
 * with different key sizes, and ChaCha20 has no salt: fill through pointers
 * so one routine serves them all.
 */
int ktls_crypto_info_build(struct ktls_crypto_info *ci, uint16_t version,
			   enum ktls_cipher cipher, const uint8_t *key,
			   size_t key_len, const uint8_t *iv, size_t iv_len,
			   const uint8_t *explicit_nonce, uint64_t seq)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(cipher);
	uint8_t *k_key, *k_iv, *k_salt, *k_seq;

	memset(ci, 0, sizeof(*ci));
	if (!d || key == NULL || iv == NULL || key_len != d->key_len)
		return -1;
	if (version == KTLS_TLS13) {
		if (!d->tls13_ok || iv_len != 12)
			return -1;
	} else if (version == KTLS_TLS12) {
		if (iv_len != (size_t)(d->salt_len ? d->salt_len : 12))
			return -1;
	} else {
		return -1;
	}

	switch (cipher) {
	case KTLS_CIPHER_AES_128_GCM:
		k_key = ci->u.gcm128.key; k_iv = ci->u.gcm128.iv;
		k_salt = ci->u.gcm128.salt; k_seq = ci->u.gcm128.rec_seq;
		ci->len = sizeof(ci->u.gcm128);
		break;
	case KTLS_CIPHER_AES_256_GCM:
		k_key = ci->u.gcm256.key; k_iv = ci->u.gcm256.iv;
		k_salt = ci->u.gcm256.salt; k_seq = ci->u.gcm256.rec_seq;
		ci->len = sizeof(ci->u.gcm256);
		break;
	case KTLS_CIPHER_AES_128_CCM:
		k_key = ci->u.ccm128.key; k_iv = ci->u.ccm128.iv;
		k_salt = ci->u.ccm128.salt; k_seq = ci->u.ccm128.rec_seq;
		ci->len = sizeof(ci->u.ccm128);
		break;
	case KTLS_CIPHER_CHACHA20_POLY1305:
		k_key = ci->u.chacha.key; k_iv = ci->u.chacha.iv;
		k_salt = NULL; k_seq = ci->u.chacha.rec_seq;
		ci->len = sizeof(ci->u.chacha);
		break;
	default:
		return -1;
	}

	ci->u.base.version = version;
	ci->u.base.cipher_type = d->kernel_type;
	memcpy(k_key, key, key_len);
	put_be64(k_seq, seq);
	if (!k_salt) {
		/* ChaCha20-Poly1305: the whole 12-byte IV, both versions. */
		memcpy(k_iv, iv, 12);
	} else if (version == KTLS_TLS13) {
		/* RFC 8446 5.3: nonce = iv XOR seq; the kernel splits the IV
		 * into a 4-byte salt and an 8-byte iv and does the XOR. */
		memcpy(k_salt, iv, 4);
		memcpy(k_iv, iv + 4, 8);
	} else {
		/* TLS 1.2 AEAD (RFC 5288): salt is the implicit part, iv the
		 * explicit nonce the kernel sends and then increments. */
		memcpy(k_salt, iv, 4);
		if (explicit_nonce)
			memcpy(k_iv, explicit_nonce, 8);
		else
			put_be64(k_iv, seq);
	}
	return 0;
}

void ktls_crypto_info_wipe(struct ktls_crypto_info *ci)
{
	explicit_bzero(ci, sizeof(*ci));
}
