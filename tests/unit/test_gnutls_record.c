#define _GNU_SOURCE
/*
 * Unit tests of shim/gnutls/record.c: what a GnuTLS session in the kernel
 * returns from gnutls_record_recv for each thing the kernel hands up, and
 * the kernel struct built from gnutls_record_get_state()'s output, checked
 * against <linux/tls.h> layouts filled independently here.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <linux/tls.h>
#include <string.h>

#include "gnutls/record.h"

static uint8_t key[32], iv[12];
static const unsigned char seq[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static void setup(void)
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x10 + i);
	for (int i = 0; i < 12; i++)
		iv[i] = (uint8_t)(0xa0 + i);
}

TestSuite(gnutls_record, .init = setup);

Test(gnutls_record, versions_and_ciphers)
{
	cr_assert_eq(ktls_gt_version(GNUTLS_TLS1_2), 0x0303);
	cr_assert_eq(ktls_gt_version(GNUTLS_TLS1_3), 0x0304);
	cr_assert_eq(ktls_gt_version(GNUTLS_TLS1_1), 0);
	cr_assert_eq(ktls_gt_version(GNUTLS_DTLS1_2), 0);
	cr_assert_eq(ktls_gt_cipher(GNUTLS_CIPHER_AES_128_GCM),
		     KTLS_CIPHER_AES_128_GCM);
	cr_assert_eq(ktls_gt_cipher(GNUTLS_CIPHER_AES_256_GCM),
		     KTLS_CIPHER_AES_256_GCM);
	cr_assert_eq(ktls_gt_cipher(GNUTLS_CIPHER_CHACHA20_POLY1305),
		     KTLS_CIPHER_CHACHA20_POLY1305);
	cr_assert_eq(ktls_gt_cipher(GNUTLS_CIPHER_AES_128_CCM),
		     KTLS_CIPHER_AES_128_CCM);
	cr_assert_eq(ktls_gt_cipher(GNUTLS_CIPHER_AES_128_CCM_8),
		     KTLS_CIPHER_NONE);
	cr_assert_eq(ktls_gt_cipher(GNUTLS_CIPHER_AES_128_CBC),
		     KTLS_CIPHER_NONE);
}

/* TLS 1.2 AES-GCM: GnuTLS's IV is the 4-byte salt, and its sequence number
 * is both rec_seq and the explicit nonce (what GnuTLS's own kTLS code
 * installs). */
Test(gnutls_record, tls12_gcm128_layout)
{
	gnutls_datum_t k = { key, 16 }, i = { iv, 4 };
	struct ktls_crypto_info ci;
	cr_assert_eq(ktls_gt_crypto_info(&ci, 0x0303, KTLS_CIPHER_AES_128_GCM,
					 &k, &i, seq),
		     0);
	struct tls12_crypto_info_aes_gcm_128 want;
	memset(&want, 0, sizeof(want));
	want.info.version = TLS_1_2_VERSION;
	want.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memcpy(want.key, key, 16);
	memcpy(want.salt, iv, 4);
	memcpy(want.iv, seq, 8);
	memcpy(want.rec_seq, seq, 8);
	cr_assert_eq(ci.len, sizeof(want));
	cr_assert_arr_eq(&ci.u, &want, sizeof(want));
}

Test(gnutls_record, tls13_gcm256_layout)
{
	gnutls_datum_t k = { key, 32 }, i = { iv, 12 };
	struct ktls_crypto_info ci;
	cr_assert_eq(ktls_gt_crypto_info(&ci, 0x0304, KTLS_CIPHER_AES_256_GCM,
					 &k, &i, seq),
		     0);
	struct tls12_crypto_info_aes_gcm_256 want;
	memset(&want, 0, sizeof(want));
	want.info.version = TLS_1_3_VERSION;
	want.info.cipher_type = TLS_CIPHER_AES_GCM_256;
	memcpy(want.key, key, 32);
	memcpy(want.salt, iv, 4);
	memcpy(want.iv, iv + 4, 8);
	memcpy(want.rec_seq, seq, 8);
	cr_assert_eq(ci.len, sizeof(want));
	cr_assert_arr_eq(&ci.u, &want, sizeof(want));
}

Test(gnutls_record, chacha_layout_both_versions)
{
	gnutls_datum_t k = { key, 32 }, i = { iv, 12 };
	for (uint16_t v = 0x0303; v <= 0x0304; v++) {
		struct ktls_crypto_info ci;
		cr_assert_eq(ktls_gt_crypto_info(&ci, v,
						 KTLS_CIPHER_CHACHA20_POLY1305,
						 &k, &i, seq),
			     0);
		struct tls12_crypto_info_chacha20_poly1305 want;
		memset(&want, 0, sizeof(want));
		want.info.version = v;
		want.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(want.key, key, 32);
		memcpy(want.iv, iv, 12);
		memcpy(want.rec_seq, seq, 8);
		cr_assert_eq(ci.len, sizeof(want));
		cr_assert_arr_eq(&ci.u, &want, sizeof(want));
	}
}

/* Sizes that do not match the cipher are refused, and nothing is left. */
Test(gnutls_record, wrong_sizes_refused_and_wiped)
{
	gnutls_datum_t k16 = { key, 16 }, i12 = { iv, 12 }, i4 = { iv, 4 };
	gnutls_datum_t none = { NULL, 0 };
	struct ktls_crypto_info ci;
	static const uint8_t zero[sizeof(ci)];
	/* TLS 1.2 GCM wants the 4-byte salt, not a 12-byte IV. */
	cr_assert_eq(ktls_gt_crypto_info(&ci, 0x0303, KTLS_CIPHER_AES_128_GCM,
					 &k16, &i12, seq),
		     -1);
	cr_assert_arr_eq(&ci, zero, sizeof(ci));
	cr_assert_eq(ktls_gt_crypto_info(&ci, 0x0304, KTLS_CIPHER_AES_128_GCM,
					 &k16, &i4, seq),
		     -1);
	cr_assert_eq(ktls_gt_crypto_info(&ci, 0x0304, KTLS_CIPHER_AES_256_GCM,
					 &k16, &i12, seq),
		     -1);
	cr_assert_eq(ktls_gt_crypto_info(&ci, 0x0304, KTLS_CIPHER_AES_128_GCM,
					 &none, &i12, seq),
		     -1);
	cr_assert_arr_eq(&ci, zero, sizeof(ci));
}

Test(gnutls_record, errno_mapping)
{
	cr_assert_eq(ktls_gt_err_from_errno(EAGAIN, 0), GNUTLS_E_AGAIN);
	cr_assert_eq(ktls_gt_err_from_errno(EAGAIN, 1), GNUTLS_E_AGAIN);
	cr_assert_eq(ktls_gt_err_from_errno(EINTR, 1), GNUTLS_E_INTERRUPTED);
	cr_assert_eq(ktls_gt_err_from_errno(EBADMSG, 0),
		     GNUTLS_E_DECRYPTION_FAILED);
	cr_assert_eq(ktls_gt_err_from_errno(EMSGSIZE, 0),
		     GNUTLS_E_RECORD_OVERFLOW);
	cr_assert_eq(ktls_gt_err_from_errno(EPIPE, 1), GNUTLS_E_PUSH_ERROR);
	cr_assert_eq(ktls_gt_err_from_errno(ECONNRESET, 0),
		     GNUTLS_E_PULL_ERROR);
}

Test(gnutls_record, alerts)
{
	/* close_notify is EOF, at either level, in both versions. */
	cr_assert_eq(ktls_gt_alert_result(0x0303, 1, 0), 0);
	cr_assert_eq(ktls_gt_alert_result(0x0304, 1, 0), 0);
	cr_assert_eq(ktls_gt_alert_result(0x0304, 2, 0), 0);
	/* TLS 1.2 goes by the level... */
	cr_assert_eq(ktls_gt_alert_result(0x0303, 1, 100),
		     GNUTLS_E_WARNING_ALERT_RECEIVED);
	cr_assert_eq(ktls_gt_alert_result(0x0303, 2, 20),
		     GNUTLS_E_FATAL_ALERT_RECEIVED);
	/* ...TLS 1.3 by the description (RFC 8446 6). */
	cr_assert_eq(ktls_gt_alert_result(0x0304, 1, 20),
		     GNUTLS_E_FATAL_ALERT_RECEIVED);
	cr_assert_eq(ktls_gt_alert_result(0x0304, 1, 90),
		     GNUTLS_E_WARNING_ALERT_RECEIVED);
}
