/*
 * libssl/libcrypto entry points, bound at run time. The shim never links
 * libssl: preloaded system-wide it must not drag OpenSSL into every process.
 * The hooks only run in programs that called into libssl, so it is loaded by
 * then, though maybe only in a dlopen()ed local scope (Python's _ssl), which
 * RTLD_NEXT cannot see: hence the RTLD_NOLOAD fallback.
 */
#ifndef KTLS_SHIM_OSSL_H
#define KTLS_SHIM_OSSL_H

#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

struct ktls_ossl {
	/* interposed: the next definitions */
	__typeof__(SSL_new) *SSL_new;
	__typeof__(SSL_set_fd) *SSL_set_fd;
	__typeof__(SSL_do_handshake) *SSL_do_handshake;
	__typeof__(SSL_connect) *SSL_connect;
	__typeof__(SSL_accept) *SSL_accept;
	__typeof__(SSL_read) *SSL_read;
	__typeof__(SSL_read_ex) *SSL_read_ex;
	__typeof__(SSL_write) *SSL_write;
	__typeof__(SSL_write_ex) *SSL_write_ex;
	__typeof__(SSL_key_update) *SSL_key_update;
	__typeof__(SSL_set_read_ahead) *SSL_set_read_ahead;
	__typeof__(SSL_get_error) *SSL_get_error;
	__typeof__(SSL_ctrl) *SSL_ctrl;
	__typeof__(SSL_CTX_new) *SSL_CTX_new;
	__typeof__(SSL_CTX_new_ex) *SSL_CTX_new_ex;
	__typeof__(SSL_CTX_set_info_callback) *SSL_CTX_set_info_callback;
	__typeof__(SSL_CTX_get_info_callback) *SSL_CTX_get_info_callback;
	__typeof__(SSL_set_info_callback) *SSL_set_info_callback;
	__typeof__(SSL_get_info_callback) *SSL_get_info_callback;
	__typeof__(SSL_CTX_get_options) *SSL_CTX_get_options;
	__typeof__(SSL_CTX_clear_options) *SSL_CTX_clear_options;
	__typeof__(SSL_clear_options) *SSL_clear_options;
	__typeof__(SSL_CTX_set_keylog_callback) *SSL_CTX_set_keylog_callback;
	__typeof__(SSL_CTX_get_keylog_callback) *SSL_CTX_get_keylog_callback;
	__typeof__(SSL_CTX_set_msg_callback) *SSL_CTX_set_msg_callback;
	__typeof__(SSL_set_msg_callback) *SSL_set_msg_callback;
	__typeof__(SSL_peek) *SSL_peek;
	__typeof__(SSL_peek_ex) *SSL_peek_ex;
	__typeof__(SSL_pending) *SSL_pending;
	__typeof__(SSL_shutdown) *SSL_shutdown;
	__typeof__(BIO_f_ssl) *BIO_f_ssl;
	__typeof__(BIO_new_ssl) *BIO_new_ssl;
	__typeof__(BIO_new_ssl_connect) *BIO_new_ssl_connect;
	__typeof__(BIO_new_buffer_ssl_connect) *BIO_new_buffer_ssl_connect;
	/* helpers */
	__typeof__(SSL_want) *SSL_want;
	__typeof__(SSL_get_shutdown) *SSL_get_shutdown;
	__typeof__(SSL_set_shutdown) *SSL_set_shutdown;
	__typeof__(SSL_get_quiet_shutdown) *SSL_get_quiet_shutdown;
	__typeof__(ERR_new) *ERR_new;
	__typeof__(ERR_set_debug) *ERR_set_debug;
	__typeof__(ERR_set_error) *ERR_set_error;
	__typeof__(ERR_peek_error) *ERR_peek_error;
	__typeof__(BIO_new_socket) *BIO_new_socket;
	__typeof__(BIO_free) *BIO_free;
	__typeof__(SSL_get_session) *SSL_get_session;
	__typeof__(SSL_SESSION_get_master_key) *SSL_SESSION_get_master_key;
	__typeof__(SSL_SESSION_get_max_fragment_length)
		*SSL_SESSION_get_max_fragment_length;
	__typeof__(SSL_get_client_random) *SSL_get_client_random;
	__typeof__(SSL_get_server_random) *SSL_get_server_random;
	__typeof__(OpenSSL_version_num) *OpenSSL_version_num;
	__typeof__(SSL_set_options) *SSL_set_options;
	__typeof__(SSL_get_options) *SSL_get_options;
	__typeof__(SSL_get_rbio) *SSL_get_rbio;
	__typeof__(SSL_get_wbio) *SSL_get_wbio;
	__typeof__(SSL_version) *SSL_version;
	__typeof__(SSL_is_init_finished) *SSL_is_init_finished;
	__typeof__(SSL_get_current_cipher) *SSL_get_current_cipher;
	__typeof__(SSL_CIPHER_get_name) *SSL_CIPHER_get_name;
	__typeof__(SSL_CIPHER_get_cipher_nid) *SSL_CIPHER_get_cipher_nid;
	__typeof__(SSL_get_SSL_CTX) *SSL_get_SSL_CTX;
	__typeof__(SSL_CTX_set_options) *SSL_CTX_set_options;
	__typeof__(SSL_CTX_get_ex_data) *SSL_CTX_get_ex_data;
	__typeof__(SSL_CTX_set_ex_data) *SSL_CTX_set_ex_data;
	__typeof__(SSL_get_ex_data) *SSL_get_ex_data;
	__typeof__(SSL_set_ex_data) *SSL_set_ex_data;
	__typeof__(CRYPTO_get_ex_new_index) *CRYPTO_get_ex_new_index;
	__typeof__(BIO_method_type) *BIO_method_type;
	__typeof__(BIO_method_name) *BIO_method_name;
	__typeof__(BIO_ctrl) *BIO_ctrl;
	__typeof__(SSL_has_pending) *SSL_has_pending;
	__typeof__(SSL_in_before) *SSL_in_before;
	__typeof__(SSL_is_server) *SSL_is_server;
	__typeof__(EVP_KDF_fetch) *EVP_KDF_fetch;
	__typeof__(EVP_KDF_free) *EVP_KDF_free;
	__typeof__(EVP_KDF_CTX_new) *EVP_KDF_CTX_new;
	__typeof__(EVP_KDF_CTX_free) *EVP_KDF_CTX_free;
	__typeof__(EVP_KDF_derive) *EVP_KDF_derive;
	__typeof__(OPENSSL_cleanse) *OPENSSL_cleanse;
	int ok;      /* every symbol found */
	int modern;  /* libssl 3.0 or newer: SSL_OP_ENABLE_KTLS exists */
	/* libssl 3.2 or newer: its record layer is chosen again at every key
	 * change, kTLS where the BIO takes it, so it moves TLS 1.3 RX and
	 * gives the kernel each KeyUpdate's next key itself. */
	int rekeys_itself;
	int ex_note;    /* SSL ex_data: counted once (non-socket BIO) */
	int ex_cb;      /* SSL ex_data: the program's own info callback */
	int ctx_ex_cb;  /* SSL_CTX ex_data: likewise, per context */
	int ex_fd;      /* SSL ex_data: fd+1 whose entry points at this SSL;
			 * its free callback drops that pointer however
			 * the SSL is freed (BIO_free of an SSL BIO too) */
	int ex_keys;    /* SSL ex_data: the engine's secrets (engine.c) */
	int ctx_ex_keylog; /* SSL_CTX ex_data: the program's keylog callback */
	int ctx_ex_hidden; /* SSL_CTX/SSL ex_data: SSL_OP_ENABLE_KTLS is ours, */
	int ex_hidden;     /* not the program's: *_get_options() hide it */
	int ctx_ex_msgcb;  /* SSL_CTX/SSL ex_data: the program's message */
	int ex_msgcb;      /* callback, behind the engine's (engine=shim) */
	int ex_xport;      /* SSL ex_data: the proof of a program's own BIO
			    * (transport.c); -1 when none could be had */
	int ctx_ex_pad;    /* SSL_CTX/SSL ex_data: the TLS 1.3 record padding */
	int ex_pad;        /* the program asked for (padding.c) */
};

extern struct ktls_ossl ktls_ossl;

/* The next definition of a libssl ("ssl") or libcrypto ("crypto")
 * function, also where that library is loaded in a local scope. */
void *ktls_ossl_find(const char *lib, const char *name);

/* Binds once; returns ktls_ossl.ok. */
int ktls_ossl_bind(void);

#ifdef KTLS_FAULT
/* openssl/fault.c, gnutls/fault.c: the injecting wrappers (core/fault.h). */
void ktls_fault_wrap_ossl(struct ktls_ossl *o);
#endif

#endif
