#define _GNU_SOURCE
#include "tls/secrets.h"

#include <string.h>

void ktls_secrets_set(struct ktls_secrets *k, int rx, const uint8_t *secret,
		      size_t len)
{
	if (!secret || (len != 32 && len != 48))
		return;
	memcpy(rx ? k->rx : k->tx, secret, len);
	*(rx ? &k->rx_len : &k->tx_len) = (uint8_t)len;
}

void ktls_secrets_wipe(struct ktls_secrets *k, int rx)
{
	explicit_bzero(rx ? k->rx : k->tx, KTLS_TLS13_MAX_SECRET);
	*(rx ? &k->rx_len : &k->tx_len) = 0;
}

int ktls_secrets_match(const struct ktls_kdf_ops *ops, struct ktls_secrets *k,
		       int rx, enum ktls_cipher kc, const uint8_t *key,
		       size_t key_len, const uint8_t *iv, size_t iv_len)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	uint8_t len = rx ? k->rx_len : k->tx_len;
	uint8_t dk[32], div[12];
	unsigned diff = 1;
	if (len && d && d->key_len <= sizeof(dk) && key && iv &&
	    key_len == d->key_len && iv_len == sizeof(div) &&
	    ktls_tls13_key_iv(ops, rx ? k->rx : k->tx, len, dk, d->key_len,
			      div) == 0) {
		diff = 0;
		for (size_t i = 0; i < d->key_len; i++)
			diff |= dk[i] ^ key[i];
		for (size_t i = 0; i < sizeof(div); i++)
			diff |= div[i] ^ iv[i];
	}
	explicit_bzero(dk, sizeof(dk));
	explicit_bzero(div, sizeof(div));
	if (diff)
		ktls_secrets_wipe(k, rx);
	return !diff;
}
