#define _GNU_SOURCE
/*
 * Unit tests of shim/session/keyupdate.c, the TLS 1.3 post-handshake core
 * every engine uses, through its seams (the setsockopt() that installs a
 * key, the kernel's ability to rekey): the peer's KeyUpdate followed or
 * refused for each reason, the key the kernel is given checked against
 * OpenSSL's own TLS 1.3 KDF (not the shim's HKDF-Expand-Label), secrets
 * wiped when a rekey fails, and the RX gate per kernel and config.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <linux/tls.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

#include "core/shim.h"
#include "core/stats.h"
#include "kernel/probe.h"
#include "session/keyupdate.h"
#include "tls/crypto_info.h"

static const struct ktls_kdf_ops ops = {
	.fetch = EVP_KDF_fetch, .free = EVP_KDF_free,
	.ctx_new = EVP_KDF_CTX_new, .ctx_free = EVP_KDF_CTX_free,
	.derive = EVP_KDF_derive, .cleanse = OPENSSL_cleanse,
};

/* ---- the fake kernel -------------------------------------------------- */

static struct {
	int calls, fail_errno, name;
	struct tls12_crypto_info_aes_gcm_128 got;
} k;

static int fake_setsockopt(int fd, int level, int name, const void *val,
			   socklen_t len)
{
	(void)fd;
	k.calls++;
	k.name = name;
	if (level != SOL_TLS || len != sizeof(k.got))
		return errno = EINVAL, -1;
	memcpy(&k.got, val, sizeof(k.got));
	if (k.fail_errno)
		return errno = k.fail_errno, -1;
	return 0;
}

static int fake_getsockopt(int fd, int level, int name, void *val,
			   socklen_t *len)
{
	(void)fd, (void)level, (void)name, (void)val, (void)len;
	return errno = ENOPROTOOPT, -1;
}

static const struct ktls_sockops fake = { fake_setsockopt, fake_getsockopt };
static int yes(void) { return 1; }
static int no(void) { return 0; }

static struct ktls_secrets sec;
static uint8_t secret0[32];

static void setup(void)
{
	memset(&k, 0, sizeof(k));
	for (int i = 0; i < 32; i++)
		secret0[i] = (uint8_t)(0xa0 + i);
	memset(&sec, 0, sizeof(sec));
	ktls_secrets_set(&sec, 1, secret0, 32);
	ktls_secrets_set(&sec, 0, secret0, 32);
	ktls_stats_reset();
}

TestSuite(keyupdate, .init = setup);

static struct ktls_ku_ctx ctx(int (*can)(void))
{
	struct ktls_ku_ctx c = { .fd = 5, .kc = KTLS_CIPHER_AES_128_GCM,
				 .sec = &sec, .kdf = &ops, .ops = &fake,
				 .can_rekey = can };
	return c;
}

/* HKDF-Expand-Label(secret, label, "", len) with OpenSSL's TLS13-KDF. */
static void expand_label(const uint8_t *secret, const char *label,
			 uint8_t *out, size_t len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
	EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						  (void *)secret, 32),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX,
						  (void *)"tls13 ", 6),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL,
						  (void *)label, strlen(label)),
		OSSL_PARAM_construct_end(),
	};
	cr_assert_eq(EVP_KDF_derive(kc, out, len, p), 1);
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
}

Test(keyupdate, peer_key_update_installs_the_next_rx_key)
{
	struct ktls_ku_ctx c = ctx(yes);
	uint8_t next[32], key[16], iv[12];
	expand_label(secret0, "traffic upd", next, 32);
	expand_label(next, "key", key, 16);
	expand_label(next, "iv", iv, 12);

	cr_assert_null(ktls_ku_follow_peer(&c, 1));
	cr_assert_eq(k.calls, 1);
	cr_assert_eq(k.name, TLS_RX);
	cr_assert_eq(k.got.info.version, TLS_1_3_VERSION);
	cr_assert_eq(k.got.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	cr_assert_arr_eq(k.got.key, key, 16);
	cr_assert_arr_eq(k.got.salt, iv, 4);
	cr_assert_arr_eq(k.got.iv, iv + 4, 8);
	/* Records under a new key count from 0. */
	static const uint8_t zero[8];
	cr_assert_arr_eq(k.got.rec_seq, zero, 8);
	/* The secret moved on (the next KeyUpdate starts from it); TX's did
	 * not. */
	cr_assert_arr_eq(sec.rx, next, 32);
	cr_assert_arr_eq(sec.tx, secret0, 32);
	cr_assert_eq(atomic_load(&ktls_stats.rekeys_rx), 1);
	cr_assert_eq(atomic_load(&ktls_stats.rekeys_tx), 0);
}

Test(keyupdate, two_in_a_row_follow_the_chain)
{
	struct ktls_ku_ctx c = ctx(yes);
	uint8_t s1[32], s2[32], key[16];
	expand_label(secret0, "traffic upd", s1, 32);
	expand_label(s1, "traffic upd", s2, 32);
	expand_label(s2, "key", key, 16);
	cr_assert_null(ktls_ku_follow_peer(&c, 1));
	cr_assert_null(ktls_ku_follow_peer(&c, 1));
	cr_assert_arr_eq(k.got.key, key, 16);
	cr_assert_eq(atomic_load(&ktls_stats.rekeys_rx), 2);
}

Test(keyupdate, refused_behind_another_message)
{
	struct ktls_ku_ctx c = ctx(yes);
	const char *why = ktls_ku_follow_peer(&c, 0);
	cr_assert_not_null(why);
	cr_assert(strstr(why, "behind another message"));
	cr_assert_eq(k.calls, 0, "no key may be installed");
}

Test(keyupdate, refused_where_the_kernel_cannot_rekey)
{
	struct ktls_ku_ctx c = ctx(no);
	const char *why = ktls_ku_follow_peer(&c, 1);
	cr_assert_not_null(why);
	cr_assert(strstr(why, "cannot take the next key"));
	cr_assert_eq(k.calls, 0);
	cr_assert_eq(ktls_ku_can_rekey(&c, 0), 0);
}

Test(keyupdate, refused_without_the_secret)
{
	struct ktls_ku_ctx c = ctx(yes);
	ktls_secrets_wipe(&sec, 1);
	const char *why = ktls_ku_follow_peer(&c, 1);
	cr_assert_not_null(why);
	cr_assert(strstr(why, "not known"));
	cr_assert_eq(k.calls, 0);
}

Test(keyupdate, a_failed_rekey_wipes_the_secret)
{
	struct ktls_ku_ctx c = ctx(yes);
	k.fail_errno = EBUSY; /* what 6.1 and 6.12 answer */
	const char *why = ktls_ku_follow_peer(&c, 1);
	cr_assert_not_null(why);
	cr_assert(strstr(why, "installing the next key failed"));
	cr_assert_eq(k.calls, 1);
	cr_assert_eq(sec.rx_len, 0);
	static const uint8_t zero[32];
	cr_assert_arr_eq(sec.rx, zero, 32, "the secret must be wiped");
	cr_assert_eq(atomic_load(&ktls_stats.rekeys_rx), 0);
	/* And nothing more can be followed on this direction. */
	cr_assert_eq(ktls_ku_can_rekey(&c, 1), 0);
}

Test(keyupdate, our_key_update_rekeys_tx)
{
	struct ktls_ku_ctx c = ctx(yes);
	uint8_t next[32], key[16];
	expand_label(secret0, "traffic upd", next, 32);
	expand_label(next, "key", key, 16);
	cr_assert_eq(ktls_ku_after_sent(&c), 0);
	cr_assert_eq(k.name, TLS_TX);
	cr_assert_arr_eq(k.got.key, key, 16);
	cr_assert_arr_eq(sec.tx, next, 32);
	cr_assert_eq(atomic_load(&ktls_stats.rekeys_tx), 1);
}

Test(keyupdate, our_key_update_not_taken_fails)
{
	struct ktls_ku_ctx c = ctx(yes);
	k.fail_errno = EINVAL;
	cr_assert_eq(ktls_ku_after_sent(&c), -1);
	cr_assert_eq(sec.tx_len, 0);
}

Test(keyupdate, rx_gate)
{
	struct ktls_config saved = ktls_cfg;
	/* TLS 1.2 has no KeyUpdate. */
	cr_assert_eq(ktls_ku_rx_gate(KTLS_TLS12, 0), KTLS_R_MOVED);
	/* The answer depends on the running kernel: asked, never assumed
	 * (this project's hosts have no kTLS; its VMs run 6.1 and 7.2). */
	ktls_cfg.tls13_rx_without_rekey = 0;
	if (ktls_kernel_can_rekey()) {
		cr_assert_eq(ktls_ku_rx_gate(KTLS_TLS13, 1), KTLS_R_MOVED);
		cr_assert_eq(ktls_ku_rx_gate(KTLS_TLS13, 0), KTLS_R_NO_SECRET);
	} else {
		cr_assert_eq(ktls_ku_rx_gate(KTLS_TLS13, 1),
			     KTLS_R_TLS13_RX_NO_REKEY);
		/* The config's consent: a KeyUpdate will fail the
		 * connection, and the operator said that is fine. */
		ktls_cfg.tls13_rx_without_rekey = 1;
		cr_assert_eq(ktls_ku_rx_gate(KTLS_TLS13, 0), KTLS_R_MOVED);
	}
	ktls_cfg = saved;
}
