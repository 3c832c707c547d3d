#define _GNU_SOURCE
#include "tls/tls13_keys.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum ktls_secret_kind ktls_keylog_parse(const char *line, uint8_t *out,
					size_t *out_len)
{
	static const struct {
		const char *label;
		enum ktls_secret_kind kind;
	} t[] = {
		{ "CLIENT_TRAFFIC_SECRET_0 ", KTLS_SECRET_CLIENT_APP },
		{ "SERVER_TRAFFIC_SECRET_0 ", KTLS_SECRET_SERVER_APP },
	};
	enum ktls_secret_kind kind = KTLS_SECRET_NONE;
	const char *p = NULL;

	*out_len = 0;
	if (!line)
		return KTLS_SECRET_NONE;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].label);
		if (strncmp(line, t[i].label, n) == 0) {
			kind = t[i].kind;
			p = line + n;
			break;
		}
	}
	if (!p)
		return KTLS_SECRET_NONE;
	/* Skip the client random: 32 bytes, 64 hex digits. */
	for (int i = 0; i < 64; i++, p++)
		if (hexval(*p) < 0)
			return KTLS_SECRET_NONE;
	if (*p++ != ' ')
		return KTLS_SECRET_NONE;
	size_t hex = strlen(p);
	if (hex != 64 && hex != 96)
		return KTLS_SECRET_NONE;
	for (size_t i = 0; i < hex / 2; i++) {
		int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			memset(out, 0, i); /* plain zeroing: partial garbage */
			return KTLS_SECRET_NONE;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = hex / 2;
	return kind;
}

int ktls_tls13_expand(const struct ktls_kdf_ops *ops, const uint8_t *secret,
		      size_t secret_len, const char *label, uint8_t *out,
		      size_t out_len)
{
	/* struct HkdfLabel { uint16 length; opaque label<7..255> =
	 * "tls13 " + label; opaque context<0..255> = ""; } */
	uint8_t info[2 + 1 + 255 + 1];
	size_t ll = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc = -1;
	const char *md = secret_len == 48 ? "SHA384" : "SHA256";

	if ((secret_len != 32 && secret_len != 48) || 6 + ll > 255 ||
	    out_len > 255)
		return -1;
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;

	if (ops->expand)
		return ops->expand(ops, secret, secret_len, info, n, out,
				   out_len);
	/* OSSL_PARAM is a public struct: built by hand, so the shim needs no
	 * OSSL_PARAM_construct_* symbols from libcrypto. */
	OSSL_PARAM p[] = {
		{ OSSL_KDF_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING, (void *)md,
		  strlen(md), OSSL_PARAM_UNMODIFIED },
		{ OSSL_KDF_PARAM_MODE, OSSL_PARAM_INTEGER, &mode, sizeof(mode),
		  OSSL_PARAM_UNMODIFIED },
		{ OSSL_KDF_PARAM_KEY, OSSL_PARAM_OCTET_STRING, (void *)secret,
		  secret_len, OSSL_PARAM_UNMODIFIED },
		{ OSSL_KDF_PARAM_INFO, OSSL_PARAM_OCTET_STRING, info, n,
		  OSSL_PARAM_UNMODIFIED },
		{ NULL, 0, NULL, 0, 0 },
	};
	EVP_KDF *kdf = ops->fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? ops->ctx_new(kdf) : NULL;
	if (ctx && ops->derive(ctx, out, out_len, p) == 1)
		rc = 0;
	if (ctx)
		ops->ctx_free(ctx); /* HKDF's ctx_free cleanses its copy */
	if (kdf)
		ops->free(kdf);
	return rc;
}

int ktls_tls13_key_iv(const struct ktls_kdf_ops *ops, const uint8_t *secret,
		      size_t secret_len, uint8_t *key, size_t key_len,
		      uint8_t iv[12])
{
	if (ktls_tls13_expand(ops, secret, secret_len, "key", key, key_len) ||
	    ktls_tls13_expand(ops, secret, secret_len, "iv", iv, 12)) {
		ops->cleanse(key, key_len);
		return -1;
	}
	return 0;
}

int ktls_tls13_crypto_info(const struct ktls_kdf_ops *ops,
			   struct ktls_crypto_info *ci, enum ktls_cipher kc,
			   const uint8_t *secret, size_t secret_len,
			   uint64_t seq)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	uint8_t key[32], iv[12];
	int rc = -1;
	if (d && d->key_len <= sizeof(key) &&
	    ktls_tls13_key_iv(ops, secret, secret_len, key, d->key_len, iv) ==
		    0) {
		rc = ktls_crypto_info_build(ci, KTLS_TLS13, kc, key, d->key_len,
					    iv, sizeof(iv), NULL, seq);
		ops->cleanse(key, sizeof(key));
		ops->cleanse(iv, sizeof(iv));
	}
	if (rc != 0)
		ktls_crypto_info_wipe(ci);
	return rc;
}

int ktls_tls13_next_secret(const struct ktls_kdf_ops *ops, uint8_t *secret,
			   size_t secret_len)
{
	uint8_t next[KTLS_TLS13_MAX_SECRET];
	if (secret_len > sizeof(next) ||
	    ktls_tls13_expand(ops, secret, secret_len, "traffic upd", next,
			      secret_len))
		return -1;
	memcpy(secret, next, secret_len);
	ops->cleanse(next, sizeof(next));
	return 0;
}
