#define _GNU_SOURCE
/*
 * Unit tests of shim/tls12_keys.c: the TLS 1.2 key block through libcrypto's
 * TLS1-PRF, against P_hash computed independently (Python hmac, RFC 5246
 * 5) when the test was written: master = 00..2f, client random = a0..bf,
 * server random = 40..5f.
 */
#include <criterion/criterion.h>

#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <string.h>

#include "tls/tls12_keys.h"

static const struct ktls_kdf_ops ops = {
	.fetch = EVP_KDF_fetch, .free = EVP_KDF_free,
	.ctx_new = EVP_KDF_CTX_new, .ctx_free = EVP_KDF_CTX_free,
	.derive = EVP_KDF_derive, .cleanse = OPENSSL_cleanse,
};

static void expect_hex(const uint8_t *got, size_t n, const char *want)
{
	char h[2 * 64 + 1] = "";
	for (size_t i = 0; i < n; i++)
		sprintf(h + 2 * i, "%02x", got[i]);
	cr_expect_str_eq(h, want);
}

static void block(enum ktls_cipher kc, struct ktls_tls12_keys *k)
{
	uint8_t master[48], cr[32], sr[32];
	for (int i = 0; i < 48; i++)
		master[i] = (uint8_t)i;
	for (int i = 0; i < 32; i++) {
		cr[i] = (uint8_t)(0xa0 + i);
		sr[i] = (uint8_t)(0x40 + i);
	}
	cr_assert_eq(ktls_tls12_key_block(&ops, kc, master, 48, cr, sr, k), 0);
}

/* cipher, key and IV lengths, then client key, server key, client IV,
 * server IV. AES-256-GCM's suites use SHA-384; the others SHA-256. */
static const struct vec {
	enum ktls_cipher kc;
	uint8_t key_len, iv_len;
	const char *k0, *k1, *iv0, *iv1;
} vecs[] = {
	{ KTLS_CIPHER_AES_128_GCM, 16, 4, "6ebea2729f33018fd6acc3c52f4ff9f1",
	  "f7b386b404403851bec8f0ac366170ad", "9cc1ba55", "34fc5929" },
	{ KTLS_CIPHER_AES_256_GCM, 32, 4,
	  "80d851904895ad97107d220e8aaea1b4ce342410b519175e91be317fd2bfad84",
	  "fd05a57f18680671f4aef2179c12f5e9aca106a9acff5e04c7e6765168cc9e9c",
	  "a8e2fa2c", "a98c562f" },
	{ KTLS_CIPHER_CHACHA20_POLY1305, 32, 12,
	  "6ebea2729f33018fd6acc3c52f4ff9f1f7b386b404403851bec8f0ac366170ad",
	  "9cc1ba5534fc592991c0180f9223b9c1db0338f8902a7ea52a8c7bf7cdce0ee1",
	  "3f7f3d888390d9c67b365358", "d019b7cb26d26a0886629425" },
	{ KTLS_CIPHER_AES_128_CCM, 16, 4, "6ebea2729f33018fd6acc3c52f4ff9f1",
	  "f7b386b404403851bec8f0ac366170ad", "9cc1ba55", "34fc5929" },
};

Test(tls12_keys, key_blocks)
{
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		const struct vec *v = &vecs[i];
		struct ktls_tls12_keys k;
		block(v->kc, &k);
		cr_assert_eq(k.key_len, v->key_len, "cipher %d", v->kc);
		cr_assert_eq(k.iv_len, v->iv_len, "cipher %d", v->kc);
		expect_hex(k.key[0], k.key_len, v->k0);
		expect_hex(k.key[1], k.key_len, v->k1);
		expect_hex(k.iv[0], k.iv_len, v->iv0);
		expect_hex(k.iv[1], k.iv_len, v->iv1);
	}
	cr_assert_str_eq(ktls_tls12_prf_digest(KTLS_CIPHER_AES_256_GCM),
			 "SHA384");
	cr_assert_str_eq(ktls_tls12_prf_digest(KTLS_CIPHER_AES_128_GCM),
			 "SHA256");
}

Test(tls12_keys, unknown_cipher_refused_and_wiped)
{
	struct ktls_tls12_keys k;
	uint8_t m[48] = { 0 }, r[32] = { 0 };
	memset(&k, 0xee, sizeof(k));
	cr_assert_eq(ktls_tls12_key_block(&ops, KTLS_CIPHER_NONE, m, 48, r, r,
					  &k),
		     -1);
	cr_assert_eq(k.key_len, 0);
	cr_assert_eq(k.key[0][0], 0);
}
