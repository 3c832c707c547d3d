#define _GNU_SOURCE
/*
 * Unit tests of shim/tls13_keys.c: keylog parsing and the TLS 1.3 key
 * schedule steps the shim's own engine uses, against RFC 8448 and against
 * values computed independently (Python hmac/hashlib HKDF) when the test
 * was written.
 */
#include <criterion/criterion.h>

#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <string.h>

#include "gnutls/kdf.h"
#include "tls/tls13_keys.h"

static const struct ktls_kdf_ops ops = {
	.fetch = EVP_KDF_fetch, .free = EVP_KDF_free,
	.ctx_new = EVP_KDF_CTX_new, .ctx_free = EVP_KDF_CTX_free,
	.derive = EVP_KDF_derive, .cleanse = OPENSSL_cleanse,
};

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

static void expect_hex(const uint8_t *got, const char *want)
{
	char h[2 * 64 + 1] = "";
	size_t n = strlen(want) / 2;
	for (size_t i = 0; i < n; i++)
		sprintf(h + 2 * i, "%02x", got[i]);
	cr_expect_str_eq(h, want);
}

/* RFC 8448 section 3: server application traffic secret. */
#define RFC8448_S_AP                                                         \
	"a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"

Test(tls13_keys, rfc8448_server_app_key_and_iv)
{
	uint8_t s[32], key[16], iv[12];
	unhex(RFC8448_S_AP, s);
	cr_assert_eq(ktls_tls13_key_iv(&ops, s, 32, key, 16, iv), 0);
	expect_hex(key, "9f02283b6c9c07efc26bb9f2ac92e356");
	expect_hex(iv, "cf782b88dd83549aadf1e984");
}

Test(tls13_keys, key_update_next_secret_sha256)
{
	uint8_t s[32], key[16], iv[12];
	unhex(RFC8448_S_AP, s);
	cr_assert_eq(ktls_tls13_next_secret(&ops, s, 32), 0);
	expect_hex(s, "51921b8aa3001976eb401d0a4319a851"
		      "6416a6c56001a357e5d162031e84f916");
	cr_assert_eq(ktls_tls13_key_iv(&ops, s, 32, key, 16, iv), 0);
	expect_hex(key, "2e63be99d67b39097feb9786cf7a15a0");
	expect_hex(iv, "628a0a8298ac953baef4255a");
}

Test(tls13_keys, sha384_for_48_byte_secrets)
{
	uint8_t s[48], key[32], iv[12];
	for (int i = 0; i < 48; i++)
		s[i] = (uint8_t)i;
	cr_assert_eq(ktls_tls13_key_iv(&ops, s, 48, key, 32, iv), 0);
	expect_hex(key, "6877d022f1c61d24ebb7487c16752d9a"
			"4798e40431c75b39320e537c90e23225");
	expect_hex(iv, "42822531a0fe88648fc09e9f");
	cr_assert_eq(ktls_tls13_next_secret(&ops, s, 48), 0);
	expect_hex(s, "401331b63e9d59f202e8f041042d9516f4cd7fa2e2ee1463"
		      "1d3b49fc340d7af37fc2c0c9f252d8036f81ec5b85cbe5db");
}

Test(tls13_keys, refuses_odd_secret_lengths)
{
	uint8_t s[64] = { 0 }, out[16];
	cr_expect_eq(ktls_tls13_expand(&ops, s, 31, "key", out, 16), -1);
	cr_expect_eq(ktls_tls13_expand(&ops, s, 64, "key", out, 16), -1);
	cr_expect_eq(ktls_tls13_next_secret(&ops, s, 20), -1);
}

/* The same key schedule over GnuTLS's HKDF (shim/gnutls/kdf.c), as GnuTLS-only
 * programs run it: the RFC 8448 values again, and SHA-384 equal to the
 * libcrypto path. */
Test(tls13_keys_gnutls, rfc8448_key_iv_and_key_update)
{
	struct ktls_gt_kdf g;
	uint8_t s[32], key[16], iv[12];
	ktls_gt_kdf_init(&g, gnutls_hkdf_expand);
	unhex(RFC8448_S_AP, s);
	cr_assert_eq(ktls_tls13_key_iv(&g.ops, s, 32, key, 16, iv), 0);
	expect_hex(key, "9f02283b6c9c07efc26bb9f2ac92e356");
	expect_hex(iv, "cf782b88dd83549aadf1e984");
	cr_assert_eq(ktls_tls13_next_secret(&g.ops, s, 32), 0);
	expect_hex(s, "51921b8aa3001976eb401d0a4319a851"
		      "6416a6c56001a357e5d162031e84f916");
}

Test(tls13_keys_gnutls, sha384_matches_libcrypto)
{
	struct ktls_gt_kdf g;
	uint8_t a[48], b[48], ka[32], kb[32], ia[12], ib[12];
	ktls_gt_kdf_init(&g, gnutls_hkdf_expand);
	for (int i = 0; i < 48; i++)
		a[i] = b[i] = (uint8_t)(i * 7 + 1);
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(ktls_tls13_key_iv(&g.ops, a, 48, ka, 32, ia), 0);
		cr_assert_eq(ktls_tls13_key_iv(&ops, b, 48, kb, 32, ib), 0);
		cr_expect_arr_eq(ka, kb, 32);
		cr_expect_arr_eq(ia, ib, 12);
		cr_assert_eq(ktls_tls13_next_secret(&g.ops, a, 48), 0);
		cr_assert_eq(ktls_tls13_next_secret(&ops, b, 48), 0);
		cr_expect_arr_eq(a, b, 48);
	}
}

Test(tls13_keys_gnutls, crypto_info_from_a_secret)
{
	struct ktls_gt_kdf g;
	struct ktls_crypto_info ci;
	uint8_t s[32];
	ktls_gt_kdf_init(&g, gnutls_hkdf_expand);
	unhex(RFC8448_S_AP, s);
	cr_assert_eq(ktls_tls13_crypto_info(&g.ops, &ci,
					    KTLS_CIPHER_AES_128_GCM, s, 32, 0),
		     0);
	cr_expect_eq(ci.u.base.version, TLS_1_3_VERSION);
	cr_expect_eq(ci.len, sizeof(ci.u.gcm128));
	expect_hex(ci.u.gcm128.key, "9f02283b6c9c07efc26bb9f2ac92e356");
	expect_hex(ci.u.gcm128.salt, "cf782b88");
	expect_hex(ci.u.gcm128.iv, "dd83549aadf1e984");
	/* No HKDF bound (a GnuTLS older than 3.6.13): refused, not garbage. */
	ktls_gt_kdf_init(&g, NULL);
	cr_expect_eq(ktls_tls13_crypto_info(&g.ops, &ci,
					    KTLS_CIPHER_AES_128_GCM, s, 32, 0),
		     -1);
}

#define CR64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

Test(keylog, parses_both_application_secrets)
{
	uint8_t out[48];
	size_t n;
	cr_assert_eq(ktls_keylog_parse("SERVER_TRAFFIC_SECRET_0 " CR64
				       " " RFC8448_S_AP, out, &n),
		     KTLS_SECRET_SERVER_APP);
	cr_assert_eq(n, 32);
	expect_hex(out, RFC8448_S_AP);
	cr_assert_eq(ktls_keylog_parse("CLIENT_TRAFFIC_SECRET_0 " CR64 " "
				       RFC8448_S_AP "0123456789abcdef"
				       "0123456789ABCDEF", out, &n),
		     KTLS_SECRET_CLIENT_APP);
	cr_assert_eq(n, 48);
	cr_expect_eq(out[47], 0xef);
}

Test(keylog, ignores_everything_else)
{
	static const char *const bad[] = {
		NULL, "",
		/* other secrets of the handshake are not ours to keep */
		"CLIENT_HANDSHAKE_TRAFFIC_SECRET " CR64 " " RFC8448_S_AP,
		"EXPORTER_SECRET " CR64 " " RFC8448_S_AP,
		"CLIENT_RANDOM " CR64 " " RFC8448_S_AP RFC8448_S_AP,
		"CLIENT_TRAFFIC_SECRET_1 " CR64 " " RFC8448_S_AP,
		/* malformed */
		"SERVER_TRAFFIC_SECRET_0 " CR64,
		"SERVER_TRAFFIC_SECRET_0 " CR64 " ",
		"SERVER_TRAFFIC_SECRET_0 " CR64 "  " RFC8448_S_AP,
		"SERVER_TRAFFIC_SECRET_0 zz" CR64 " " RFC8448_S_AP,
		"SERVER_TRAFFIC_SECRET_0 " CR64 " " RFC8448_S_AP "00",
		"SERVER_TRAFFIC_SECRET_0 " CR64 " " RFC8448_S_AP "\n",
		"SERVER_TRAFFIC_SECRET_0 " CR64 " "
		"g11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t out[48];
		size_t n = 99;
		memset(out, 0x5a, sizeof(out));
		cr_expect_eq(ktls_keylog_parse(bad[i], out, &n),
			     KTLS_SECRET_NONE, "line %zu", i);
		cr_expect_eq(n, 0, "line %zu", i);
	}
}
