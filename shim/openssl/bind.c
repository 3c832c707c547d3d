#define _GNU_SOURCE
#include "openssl/bind.h"
#include "openssl/transport.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "core/fault.h"
#include "core/log.h"
#include "openssl/engine.h"
#include "openssl/session.h"

struct ktls_ossl ktls_ossl;
static pthread_once_t once = PTHREAD_ONCE_INIT;

void *ktls_ossl_find(const char *lib, const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p)
		return p;
	/* lib is "ssl" or "crypto"; 1.1 is tried so that a 1.1 program still
	 * finds its real functions (it gets no kTLS: modern stays 0). */
	static const char *const sonames[] = { "lib%s.so.3", "lib%s.so.1.1" };
	for (size_t i = 0; i < 2 && !p; i++) {
		char so[32];
		snprintf(so, sizeof(so), sonames[i], lib);
		void *h = dlopen(so, RTLD_LAZY | RTLD_NOLOAD);
		if (!h)
			continue;
		p = dlsym(h, name);
		dlclose(h); /* NOLOAD took a reference; it stays loaded */
	}
	return p;
}

#define SSLSYM(f)                                                             \
	do {                                                                  \
		ktls_ossl.f = (__typeof__(ktls_ossl.f))ktls_ossl_find("ssl", #f); \
		ok = ok && ktls_ossl.f;                                       \
	} while (0)
#define CRYPTOSYM(f)                                                          \
	do {                                                                  \
		ktls_ossl.f =                                                 \
			(__typeof__(ktls_ossl.f))ktls_ossl_find("crypto", #f);  \
		ok = ok && ktls_ossl.f;                                       \
	} while (0)

/* The next definitions of what the shim interposes, and the helpers it
 * calls; ok stays 1 only if every one was found. */
static int bind_first(void)
{
	int ok = 1;
	SSLSYM(SSL_new);
	SSLSYM(SSL_set_fd);
	SSLSYM(SSL_do_handshake);
	SSLSYM(SSL_connect);
	SSLSYM(SSL_accept);
	SSLSYM(SSL_read);
	SSLSYM(SSL_read_ex);
	SSLSYM(SSL_write);
	SSLSYM(SSL_write_ex);
	SSLSYM(SSL_key_update);
	SSLSYM(SSL_set_read_ahead);
	SSLSYM(SSL_get_error);
	SSLSYM(SSL_ctrl);
	SSLSYM(SSL_CTX_new);
	SSLSYM(SSL_CTX_new_ex);
	SSLSYM(SSL_CTX_set_info_callback);
	SSLSYM(SSL_CTX_get_info_callback);
	SSLSYM(SSL_set_info_callback);
	SSLSYM(SSL_get_info_callback);
	SSLSYM(SSL_CTX_get_options);
	SSLSYM(SSL_CTX_clear_options);
	SSLSYM(SSL_clear_options);
	SSLSYM(SSL_CTX_set_keylog_callback);
	SSLSYM(SSL_CTX_get_keylog_callback);
	SSLSYM(SSL_CTX_set_msg_callback);
	SSLSYM(SSL_set_msg_callback);
	SSLSYM(SSL_peek);
	SSLSYM(SSL_peek_ex);
	SSLSYM(SSL_pending);
	SSLSYM(SSL_shutdown);
	SSLSYM(BIO_f_ssl);
	SSLSYM(BIO_new_ssl);
	SSLSYM(BIO_new_ssl_connect);
	SSLSYM(BIO_new_buffer_ssl_connect);
	SSLSYM(SSL_want);
	SSLSYM(SSL_get_shutdown);
	SSLSYM(SSL_set_shutdown);
	SSLSYM(SSL_get_quiet_shutdown);
	return ok;
}

static int bind_rest(void)
{
	int ok = 1;
	CRYPTOSYM(ERR_new);
	CRYPTOSYM(ERR_set_debug);
	CRYPTOSYM(ERR_set_error);
	CRYPTOSYM(ERR_peek_error);
	CRYPTOSYM(BIO_new_socket);
	CRYPTOSYM(BIO_free);
	SSLSYM(SSL_get_session);
	SSLSYM(SSL_SESSION_get_master_key);
	SSLSYM(SSL_SESSION_get_max_fragment_length);
	SSLSYM(SSL_get_client_random);
	SSLSYM(SSL_get_server_random);
	SSLSYM(SSL_has_pending);
	SSLSYM(SSL_in_before);
	SSLSYM(SSL_is_server);
	CRYPTOSYM(EVP_KDF_fetch);
	CRYPTOSYM(EVP_KDF_free);
	CRYPTOSYM(EVP_KDF_CTX_new);
	CRYPTOSYM(EVP_KDF_CTX_free);
	CRYPTOSYM(EVP_KDF_derive);
	CRYPTOSYM(OPENSSL_cleanse);
	SSLSYM(SSL_get_SSL_CTX);
	SSLSYM(SSL_CTX_set_options);
	SSLSYM(SSL_CTX_get_ex_data);
	SSLSYM(SSL_CTX_set_ex_data);
	CRYPTOSYM(OpenSSL_version_num);
	SSLSYM(SSL_set_options);
	SSLSYM(SSL_get_options);
	SSLSYM(SSL_get_rbio);
	SSLSYM(SSL_get_wbio);
	SSLSYM(SSL_version);
	SSLSYM(SSL_is_init_finished);
	SSLSYM(SSL_get_current_cipher);
	SSLSYM(SSL_CIPHER_get_name);
	SSLSYM(SSL_CIPHER_get_cipher_nid);
	SSLSYM(SSL_get_ex_data);
	SSLSYM(SSL_set_ex_data);
	CRYPTOSYM(CRYPTO_get_ex_new_index);
	CRYPTOSYM(BIO_method_type);
	CRYPTOSYM(BIO_method_name);
	CRYPTOSYM(BIO_ctrl);
	return ok;
}

/* The ex_data slots: values stored are flags and function pointers,
 * except the two with free callbacks. 0 when one cannot be had. */
static int ex_indexes(void)
{
	ktls_ossl.ex_note = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ex_cb = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ctx_ex_cb = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ex_fd = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL,
		ktls_sess_ex_free);
	ktls_ossl.ex_keys = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL,
		ktls_engine_ex_free);
	ktls_ossl.ctx_ex_keylog = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ctx_ex_hidden = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ex_hidden = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ctx_ex_msgcb = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ex_msgcb = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
	/* Optional: without it, own BIOs are not watched. */
	ktls_ossl.ex_xport = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, ktls_oxp_ex_free);
	ktls_ossl.ctx_ex_pad = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, NULL);
	ktls_ossl.ex_pad = ktls_ossl.CRYPTO_get_ex_new_index(
		CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
	if (ktls_ossl.ctx_ex_msgcb < 0 || ktls_ossl.ex_msgcb < 0 ||
	    ktls_ossl.ctx_ex_pad < 0 || ktls_ossl.ex_pad < 0)
		return 0;
	if (ktls_ossl.ctx_ex_hidden < 0 || ktls_ossl.ex_hidden < 0)
		return 0;
	if (ktls_ossl.ex_note < 0 || ktls_ossl.ex_cb < 0 ||
	    ktls_ossl.ctx_ex_cb < 0 || ktls_ossl.ex_fd < 0 ||
	    ktls_ossl.ex_keys < 0 || ktls_ossl.ctx_ex_keylog < 0)
		return 0;
	return 1;
}

static void bind_all(void)
{
	int saved = errno;
	int ok = bind_first();
	ok = bind_rest() && ok;
	if (ok) {
		ktls_ossl.modern = ktls_ossl.OpenSSL_version_num() >= 0x30000000L;
		ktls_ossl.rekeys_itself =
			ktls_ossl.OpenSSL_version_num() >= 0x30200000L;
		ok = ex_indexes();
	}
	ktls_ossl.ok = ok;
#ifdef KTLS_FAULT
	if (ktls_ossl.ok)
		ktls_fault_wrap_ossl(&ktls_ossl);
#endif
	if (!ktls_ossl.ok)
		ktls_warn("libssl 3 symbols not found; sessions stay in userspace");
	errno = saved;
}

int ktls_ossl_bind(void)
{
	pthread_once(&once, bind_all);
	return ktls_ossl.ok;
}
