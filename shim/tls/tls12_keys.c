#include "tls/tls12_keys.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <string.h>

#define LABEL "key expansion"

const char *ktls_tls12_prf_digest(enum ktls_cipher kc)
{
	return kc == KTLS_CIPHER_AES_256_GCM ? "SHA384" : "SHA256";
}

int ktls_tls12_key_block(const struct ktls_kdf_ops *ops, enum ktls_cipher kc,
			 const uint8_t *master, size_t master_len,
			 const uint8_t client_random[32],
			 const uint8_t server_random[32],
			 struct ktls_tls12_keys *out)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	uint8_t seed[sizeof(LABEL) - 1 + 64], block[2 * 32 + 2 * 12];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!d || d->key_len > sizeof(out->key[0]))
		return -1;
	size_t key_len = d->key_len, iv_len = d->salt_len ? d->salt_len : 12;
	size_t need = 2 * key_len + 2 * iv_len;
	/* The PRF's seed is label + seed (RFC 5246 5); note the order:
	 * server random first for the key block. */
	memcpy(seed, LABEL, sizeof(LABEL) - 1);
	memcpy(seed + sizeof(LABEL) - 1, server_random, 32);
	memcpy(seed + sizeof(LABEL) - 1 + 32, client_random, 32);
	const char *md = ktls_tls12_prf_digest(kc);
	/* Built by hand, as in tls13_keys.c: no OSSL_PARAM_construct_*. */
	OSSL_PARAM p[] = {
		{ OSSL_KDF_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING, (void *)md,
		  strlen(md), OSSL_PARAM_UNMODIFIED },
		{ OSSL_KDF_PARAM_SECRET, OSSL_PARAM_OCTET_STRING,
		  (void *)master, master_len, OSSL_PARAM_UNMODIFIED },
		{ OSSL_KDF_PARAM_SEED, OSSL_PARAM_OCTET_STRING, seed,
		  sizeof(seed), OSSL_PARAM_UNMODIFIED },
		{ NULL, 0, NULL, 0, 0 },
	};
	EVP_KDF *kdf = ops->fetch(NULL, "TLS1-PRF", NULL);
	EVP_KDF_CTX *ctx = kdf ? ops->ctx_new(kdf) : NULL;
	if (ctx && ops->derive(ctx, block, need, p) == 1) {
		/* client key, server key, client IV, server IV */
		memcpy(out->key[0], block, key_len);
		memcpy(out->key[1], block + key_len, key_len);
		memcpy(out->iv[0], block + 2 * key_len, iv_len);
		memcpy(out->iv[1], block + 2 * key_len + iv_len, iv_len);
		out->key_len = (uint8_t)key_len;
		out->iv_len = (uint8_t)iv_len;
		rc = 0;
	}
	if (ctx)
		ops->ctx_free(ctx);
	if (kdf)
		ops->free(kdf);
	ops->cleanse(block, sizeof(block));
	if (rc)
		ops->cleanse(out, sizeof(*out));
	return rc;
}
