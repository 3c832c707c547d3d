/* Fault injection at the libssl/libcrypto binding table (core/fault.h
 * says how it is driven). Only in libktls-shim-fault.so. */
#define _GNU_SOURCE
#include "core/fault.h"
#include "openssl/bind.h"

/* engine.c's: OpenSSL 3.0/3.1's internal BIO_CTRL_SET_KTLS. */
#define OSSL_BIO_CTRL_SET_KTLS 72

static struct ktls_ossl onext;

static EVP_KDF *f_kdf_fetch(OSSL_LIB_CTX *l, const char *a, const char *p)
{
	return ktls_fault_hit(FP_KDF_FETCH) ? NULL : onext.EVP_KDF_fetch(l, a, p);
}
static EVP_KDF_CTX *f_kdf_ctx_new(EVP_KDF *k)
{
	return ktls_fault_hit(FP_KDF_CTX_NEW) ? NULL : onext.EVP_KDF_CTX_new(k);
}
static int f_kdf_derive(EVP_KDF_CTX *c, unsigned char *k, size_t n,
			const OSSL_PARAM p[])
{
	return ktls_fault_hit(FP_KDF_DERIVE) ? 0 : onext.EVP_KDF_derive(c, k, n, p);
}
static long f_bio_ctrl(BIO *b, int cmd, long larg, void *parg)
{
	if (cmd == OSSL_BIO_CTRL_SET_KTLS && ktls_fault_hit(FP_BIO_SET_KTLS))
		return 0;
	return onext.BIO_ctrl(b, cmd, larg, parg);
}
static int f_ssl_set_ex_data(SSL *s, int idx, void *v)
{
	int p = idx == ktls_ossl.ex_hidden ? FP_EX_HIDDEN
		: idx == ktls_ossl.ex_keys ? FP_EX_KEYS
		: idx == ktls_ossl.ex_note ? FP_EX_NOTE
		: idx == ktls_ossl.ex_fd   ? FP_EX_FD
		: idx == ktls_ossl.ex_cb   ? FP_EX_CB
		: idx == ktls_ossl.ex_msgcb ? FP_EX_MSGCB
					   : -1;
	if (p >= 0 && ktls_fault_hit((enum ktls_fault_point)p))
		return 0;
	return onext.SSL_set_ex_data(s, idx, v);
}
static int f_ctx_set_ex_data(SSL_CTX *c, int idx, void *v)
{
	int p = idx == ktls_ossl.ctx_ex_hidden ? FP_CTX_EX_HIDDEN
		: idx == ktls_ossl.ctx_ex_cb   ? FP_CTX_EX_CB
		: idx == ktls_ossl.ctx_ex_keylog ? FP_CTX_EX_KEYLOG
		: idx == ktls_ossl.ctx_ex_msgcb ? FP_CTX_EX_MSGCB
						 : -1;
	if (p >= 0 && ktls_fault_hit((enum ktls_fault_point)p))
		return 0;
	return onext.SSL_CTX_set_ex_data(c, idx, v);
}

void ktls_fault_wrap_ossl(struct ktls_ossl *o)
{
	onext = *o;
	o->EVP_KDF_fetch = f_kdf_fetch;
	o->EVP_KDF_CTX_new = f_kdf_ctx_new;
	o->EVP_KDF_derive = f_kdf_derive;
	o->BIO_ctrl = f_bio_ctrl;
	o->SSL_set_ex_data = f_ssl_set_ex_data;
	o->SSL_CTX_set_ex_data = f_ctx_set_ex_data;
}

