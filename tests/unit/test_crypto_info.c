#define _GNU_SOURCE
/*
 * Unit tests of shim/tls/crypto_info.c (and the cipher table of shim/core/cipher.c):
 * the bytes handed to setsockopt(SOL_TLS) checked against the uapi structs
 * of <linux/tls.h>, built independently here.
 */
#include <criterion/criterion.h>

#include <linux/tls.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/cipher.h"
#include "tls/crypto_info.h"

/*
 * RFC 8448 section 3 ("Simple 1-RTT Handshake"), the server's application
 * traffic write key and IV (TLS_AES_128_GCM_SHA256). Cross-checked when
 * this test was written: HKDF-Expand-Label(server application traffic
 * secret a11af9f0...cb631643, "key"/"iv") gives exactly these bytes.
 */
static const uint8_t rfc8448_key[16] = {
	0x9f, 0x02, 0x28, 0x3b, 0x6c, 0x9c, 0x07, 0xef,
	0xc2, 0x6b, 0xb9, 0xf2, 0xac, 0x92, 0xe3, 0x56,
};
static const uint8_t rfc8448_iv[12] = {
	0xcf, 0x78, 0x2b, 0x88, 0xdd, 0x83, 0x54, 0x9a, 0xad, 0xf1, 0xe9, 0x84,
};

/* No published kTLS vector for the other combinations: explicit patterned
 * bytes (key 0x10.., iv 0xa0.., explicit nonce 0xe0..), distinct per field
 * so a byte in the wrong place shows up. */
static uint8_t key[32], iv[12], nonce[8];

static void setup(void)
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x10 + i);
	for (int i = 0; i < 12; i++)
		iv[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(0xe0 + i);
}

TestSuite(crypto_info, .init = setup);

static const uint64_t seqs[] = { 0x0102030405060708ull, 0, UINT64_MAX };

static void be64(uint8_t out[8], uint64_t v)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The whole structure, byte by byte: the expected uapi struct in front and
 * nothing but zeros behind it in the union. */
static void check_bytes(const struct ktls_crypto_info *ci, const void *want,
			size_t want_len)
{
	const uint8_t *got = (const uint8_t *)&ci->u;
	const uint8_t *w = want;
	cr_assert_eq((size_t)ci->len, want_len);
	for (size_t i = 0; i < want_len; i++)
		cr_assert_eq(got[i], w[i], "byte %zu: got %02x want %02x", i,
			     got[i], w[i]);
	for (size_t i = want_len; i < sizeof(ci->u); i++)
		cr_assert_eq(got[i], 0, "byte %zu past the struct is %02x", i,
			     got[i]);
}

/*
 * The expected uapi struct for an AES cipher, filled field by field:
 * TLS 1.3: salt = iv[0..3], kernel iv = iv[4..11].
 * TLS 1.2: salt = the 4-byte implicit iv, kernel iv = the explicit nonce
 * (seq big-endian when none is given).
 */
#define FILL_AES(type)                                                        \
	do {                                                                  \
		struct type e_;                                               \
		memset(&e_, 0, sizeof(e_));                                   \
		e_.info.version = version;                                    \
		e_.info.cipher_type = kernel_cipher;                          \
		memcpy(e_.key, k, k_len);                                     \
		memcpy(e_.salt, v, 4);                                        \
		if (version == TLS_1_3_VERSION)                               \
			memcpy(e_.iv, v + 4, 8);                              \
		else if (explicit_nonce)                                      \
			memcpy(e_.iv, explicit_nonce, 8);                     \
		else                                                          \
			be64(e_.iv, seq);                                     \
		be64(e_.rec_seq, seq);                                        \
		check_bytes(ci, &e_, sizeof(e_));                             \
	} while (0)

static void expect_aes(const struct ktls_crypto_info *ci, uint16_t version,
		       uint16_t kernel_cipher, const uint8_t *k, size_t k_len,
		       const uint8_t *v, const uint8_t *explicit_nonce,
		       uint64_t seq)
{
	switch (kernel_cipher) {
	case TLS_CIPHER_AES_GCM_128:
		FILL_AES(tls12_crypto_info_aes_gcm_128);
		break;
	case TLS_CIPHER_AES_GCM_256:
		FILL_AES(tls12_crypto_info_aes_gcm_256);
		break;
	case TLS_CIPHER_AES_CCM_128:
		FILL_AES(tls12_crypto_info_aes_ccm_128);
		break;
	default:
		cr_assert_fail("no such AES cipher %u", kernel_cipher);
	}
}

#define EXPECT_TLS13_AES(type, kc, k, kl, v, s)                               \
	expect_aes(&ci, TLS_1_3_VERSION, kc, k, kl, v, NULL, s)
#define EXPECT_TLS12_AES(type, kc, k, kl, v, x, s)                            \
	expect_aes(&ci, TLS_1_2_VERSION, kc, k, kl, v, x, s)

static int build(struct ktls_crypto_info *ci, uint16_t version,
		 enum ktls_cipher c, size_t key_len, size_t iv_len,
		 const uint8_t *explicit_nonce, uint64_t seq)
{
	memset(ci, 0x5a, sizeof(*ci)); /* stale bytes must not survive */
	return ktls_crypto_info_build(ci, version, c, key, key_len, iv, iv_len,
				      explicit_nonce, seq);
}

Test(crypto_info, uapi_constants)
{
	/* The shim's own names agree with the kernel's. */
	cr_assert_eq(KTLS_TLS12, TLS_1_2_VERSION);
	cr_assert_eq(KTLS_TLS13, TLS_1_3_VERSION);
	cr_assert_eq(sizeof(struct tls_crypto_info), 4);
	cr_assert_eq(sizeof(struct tls12_crypto_info_aes_gcm_128), 40);
	cr_assert_eq(sizeof(struct tls12_crypto_info_aes_gcm_256), 56);
	cr_assert_eq(sizeof(struct tls12_crypto_info_chacha20_poly1305), 56);
	cr_assert_eq(sizeof(struct tls12_crypto_info_aes_ccm_128), 40);
}

Test(crypto_info, tls13_aes128gcm_rfc8448)
{
	struct ktls_crypto_info ci;
	memset(&ci, 0x5a, sizeof(ci));
	cr_assert_eq(ktls_crypto_info_build(&ci, KTLS_TLS13,
					    KTLS_CIPHER_AES_128_GCM,
					    rfc8448_key, 16, rfc8448_iv, 12,
					    NULL, 0),
		     0);
	cr_assert_eq(ci.len, sizeof(struct tls12_crypto_info_aes_gcm_128));
	cr_assert_eq(ci.u.gcm128.info.version, 0x0304);
	cr_assert_eq(ci.u.gcm128.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	static const uint8_t salt[4] = { 0xcf, 0x78, 0x2b, 0x88 };
	static const uint8_t kiv[8] = { 0xdd, 0x83, 0x54, 0x9a,
					0xad, 0xf1, 0xe9, 0x84 };
	static const uint8_t zero[8] = { 0 };
	cr_assert_arr_eq(ci.u.gcm128.key, rfc8448_key, 16);
	cr_assert_arr_eq(ci.u.gcm128.salt, salt, 4);
	cr_assert_arr_eq(ci.u.gcm128.iv, kiv, 8);
	cr_assert_arr_eq(ci.u.gcm128.rec_seq, zero, 8);
	EXPECT_TLS13_AES(tls12_crypto_info_aes_gcm_128, TLS_CIPHER_AES_GCM_128,
			 rfc8448_key, 16, rfc8448_iv, 0);

	/* The same keys at record 1: only rec_seq changes (the kernel does
	 * the iv XOR seq of RFC 8446 5.3 itself). */
	cr_assert_eq(ktls_crypto_info_build(&ci, KTLS_TLS13,
					    KTLS_CIPHER_AES_128_GCM,
					    rfc8448_key, 16, rfc8448_iv, 12,
					    NULL, 1),
		     0);
	static const uint8_t one[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	cr_assert_arr_eq(ci.u.gcm128.rec_seq, one, 8);
	cr_assert_arr_eq(ci.u.gcm128.iv, kiv, 8);
}

Test(crypto_info, tls13_aes128gcm)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_128_GCM, 16,
				   12, NULL, seqs[i]),
			     0);
		EXPECT_TLS13_AES(tls12_crypto_info_aes_gcm_128,
				 TLS_CIPHER_AES_GCM_128, key, 16, iv, seqs[i]);
	}
}

Test(crypto_info, tls13_aes256gcm)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_256_GCM, 32,
				   12, NULL, seqs[i]),
			     0);
		EXPECT_TLS13_AES(tls12_crypto_info_aes_gcm_256,
				 TLS_CIPHER_AES_GCM_256, key, 32, iv, seqs[i]);
	}
}

static void expect_chacha(const struct ktls_crypto_info *cip, uint16_t version,
			  uint64_t seq)
{
	struct ktls_crypto_info ci = *cip;
	struct tls12_crypto_info_chacha20_poly1305 e;
	memset(&e, 0, sizeof(e));
	e.info.version = version;
	e.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
	memcpy(e.iv, iv, 12); /* all 12 bytes, no salt */
	memcpy(e.key, key, 32);
	be64(e.rec_seq, seq);
	check_bytes(&ci, &e, sizeof(e));
}

Test(crypto_info, tls13_chacha20)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS13,
				   KTLS_CIPHER_CHACHA20_POLY1305, 32, 12, NULL,
				   seqs[i]),
			     0);
		expect_chacha(&ci, TLS_1_3_VERSION, seqs[i]);
	}
}

Test(crypto_info, tls13_ccm_refused)
{
	struct ktls_crypto_info ci;
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_128_CCM, 16, 12,
			   NULL, 0),
		     -1);
	/* A refusal leaves no key material behind. */
	static const struct ktls_crypto_info zero;
	cr_assert_eq(memcmp(&ci, &zero, sizeof(ci)), 0);
}

Test(crypto_info, tls12_aes128gcm)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_GCM, 16,
				   4, NULL, seqs[i]),
			     0);
		EXPECT_TLS12_AES(tls12_crypto_info_aes_gcm_128,
				 TLS_CIPHER_AES_GCM_128, key, 16, iv, NULL,
				 seqs[i]);
		cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_GCM, 16,
				   4, nonce, seqs[i]),
			     0);
		EXPECT_TLS12_AES(tls12_crypto_info_aes_gcm_128,
				 TLS_CIPHER_AES_GCM_128, key, 16, iv, nonce,
				 seqs[i]);
	}
}

Test(crypto_info, tls12_aes256gcm)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_256_GCM, 32,
				   4, NULL, seqs[i]),
			     0);
		EXPECT_TLS12_AES(tls12_crypto_info_aes_gcm_256,
				 TLS_CIPHER_AES_GCM_256, key, 32, iv, NULL,
				 seqs[i]);
		cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_256_GCM, 32,
				   4, nonce, seqs[i]),
			     0);
		EXPECT_TLS12_AES(tls12_crypto_info_aes_gcm_256,
				 TLS_CIPHER_AES_GCM_256, key, 32, iv, nonce,
				 seqs[i]);
	}
}

Test(crypto_info, tls12_aes128ccm)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_CCM, 16,
				   4, NULL, seqs[i]),
			     0);
		EXPECT_TLS12_AES(tls12_crypto_info_aes_ccm_128,
				 TLS_CIPHER_AES_CCM_128, key, 16, iv, NULL,
				 seqs[i]);
		cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_CCM, 16,
				   4, nonce, seqs[i]),
			     0);
		EXPECT_TLS12_AES(tls12_crypto_info_aes_ccm_128,
				 TLS_CIPHER_AES_CCM_128, key, 16, iv, nonce,
				 seqs[i]);
	}
}

Test(crypto_info, tls12_chacha20)
{
	struct ktls_crypto_info ci;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(build(&ci, KTLS_TLS12,
				   KTLS_CIPHER_CHACHA20_POLY1305, 32, 12, NULL,
				   seqs[i]),
			     0);
		expect_chacha(&ci, TLS_1_2_VERSION, seqs[i]);
		/* No explicit nonce in TLS 1.2 ChaCha20 (RFC 7905): ignored. */
		cr_assert_eq(build(&ci, KTLS_TLS12,
				   KTLS_CIPHER_CHACHA20_POLY1305, 32, 12, nonce,
				   seqs[i]),
			     0);
		expect_chacha(&ci, TLS_1_2_VERSION, seqs[i]);
	}
}

Test(crypto_info, seq_big_endian)
{
	struct ktls_crypto_info ci;
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_GCM, 16, 4, NULL,
			   0x0102030405060708ull),
		     0);
	static const uint8_t want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	cr_assert_arr_eq(ci.u.gcm128.rec_seq, want, 8);
	cr_assert_arr_eq(ci.u.gcm128.iv, want, 8);
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_CHACHA20_POLY1305, 32,
			   12, NULL, UINT64_MAX),
		     0);
	static const uint8_t ff[8] = { 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff };
	cr_assert_arr_eq(ci.u.chacha.rec_seq, ff, 8);
}

Test(crypto_info, wrong_key_length)
{
	struct ktls_crypto_info ci;
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_128_GCM, 32, 12,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_128_GCM, 15, 12,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_256_GCM, 16, 12,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_CHACHA20_POLY1305, 16,
			   12, NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_CCM, 0, 4,
			   NULL, 0),
		     -1);
}

Test(crypto_info, wrong_iv_length)
{
	struct ktls_crypto_info ci;
	/* TLS 1.3 wants the whole 12-byte IV, TLS 1.2 AES the 4-byte salt. */
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_128_GCM, 16, 8,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_128_GCM, 16, 4,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_128_GCM, 16, 12,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_AES_256_GCM, 32, 8,
			   NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_CHACHA20_POLY1305, 32,
			   4, NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_CHACHA20_POLY1305, 32,
			   11, NULL, 0),
		     -1);
}

Test(crypto_info, unknown_version)
{
	struct ktls_crypto_info ci;
	static const uint16_t bad[] = { 0x0302, 0x0301, 0x0300, 0x0305,
					0xfefd, 0 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(build(&ci, bad[i], KTLS_CIPHER_AES_128_GCM, 16, 4,
				   NULL, 0),
			     -1, "version %04x", bad[i]);
}

Test(crypto_info, no_cipher)
{
	struct ktls_crypto_info ci;
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_NONE, 16, 12, NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS12, KTLS_CIPHER_NONE, 16, 4, NULL, 0),
		     -1);
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_COUNT, 16, 12, NULL, 0),
		     -1);
}

Test(crypto_info, null_key_or_iv)
{
	struct ktls_crypto_info ci;
	cr_assert_eq(ktls_crypto_info_build(&ci, KTLS_TLS13,
					    KTLS_CIPHER_AES_128_GCM, NULL, 16,
					    iv, 12, NULL, 0),
		     -1);
	cr_assert_eq(ktls_crypto_info_build(&ci, KTLS_TLS13,
					    KTLS_CIPHER_AES_128_GCM, key, 16,
					    NULL, 12, NULL, 0),
		     -1);
}

Test(crypto_info, wipe)
{
	struct ktls_crypto_info ci;
	cr_assert_eq(build(&ci, KTLS_TLS13, KTLS_CIPHER_AES_256_GCM, 32, 12,
			   NULL, 42),
		     0);
	cr_assert_neq(ci.len, 0);
	memset(&ci, 0xa5, sizeof(ci)); /* every byte, padding included */
	ktls_crypto_info_wipe(&ci);
	const uint8_t *b = (const uint8_t *)&ci;
	for (size_t i = 0; i < sizeof(ci); i++)
		cr_assert_eq(b[i], 0, "byte %zu not wiped", i);
}

/* ---- cipher.c ------------------------------------------------------------ */

Test(cipher, table_matches_uapi)
{
	static const struct {
		enum ktls_cipher c;
		const char *name;
		uint16_t type;
		uint8_t key, salt, iv, tls13;
	} t[] = {
		{ KTLS_CIPHER_AES_128_GCM, "aes-128-gcm", TLS_CIPHER_AES_GCM_128,
		  TLS_CIPHER_AES_GCM_128_KEY_SIZE,
		  TLS_CIPHER_AES_GCM_128_SALT_SIZE,
		  TLS_CIPHER_AES_GCM_128_IV_SIZE, 1 },
		{ KTLS_CIPHER_AES_256_GCM, "aes-256-gcm", TLS_CIPHER_AES_GCM_256,
		  TLS_CIPHER_AES_GCM_256_KEY_SIZE,
		  TLS_CIPHER_AES_GCM_256_SALT_SIZE,
		  TLS_CIPHER_AES_GCM_256_IV_SIZE, 1 },
		{ KTLS_CIPHER_CHACHA20_POLY1305, "chacha20-poly1305",
		  TLS_CIPHER_CHACHA20_POLY1305,
		  TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE,
		  TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE,
		  TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE, 1 },
		{ KTLS_CIPHER_AES_128_CCM, "aes-128-ccm", TLS_CIPHER_AES_CCM_128,
		  TLS_CIPHER_AES_CCM_128_KEY_SIZE,
		  TLS_CIPHER_AES_CCM_128_SALT_SIZE,
		  TLS_CIPHER_AES_CCM_128_IV_SIZE, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct ktls_cipher_desc *d = ktls_cipher_desc(t[i].c);
		cr_assert_not_null(d);
		cr_assert_str_eq(d->name, t[i].name);
		cr_assert_eq(d->kernel_type, t[i].type);
		cr_assert_eq(d->key_len, t[i].key);
		cr_assert_eq(d->salt_len, t[i].salt);
		cr_assert_eq(d->iv_len, t[i].iv);
		cr_assert_eq(d->tls13_ok, t[i].tls13);
		cr_assert_eq(ktls_cipher_by_name(t[i].name), t[i].c);
		cr_assert_eq(ktls_cipher_by_kernel_type(t[i].type), t[i].c);
	}
	cr_assert_null(ktls_cipher_desc(KTLS_CIPHER_NONE));
	cr_assert_null(ktls_cipher_desc(KTLS_CIPHER_COUNT));
	cr_assert_eq(ktls_cipher_by_name("AES-128-GCM"), KTLS_CIPHER_AES_128_GCM);
	cr_assert_eq(ktls_cipher_by_name("aes-128"), KTLS_CIPHER_NONE);
	cr_assert_eq(ktls_cipher_by_name(""), KTLS_CIPHER_NONE);
	cr_assert_eq(ktls_cipher_by_kernel_type(TLS_CIPHER_SM4_GCM),
		     KTLS_CIPHER_NONE);
	cr_assert_eq(ktls_cipher_by_kernel_type(0), KTLS_CIPHER_NONE);
	cr_assert_str_eq(ktls_version_name(0x0303), "TLSv1.2");
	cr_assert_str_eq(ktls_version_name(0x0304), "TLSv1.3");
	cr_assert_str_eq(ktls_version_name(0x0302), "other");
}
