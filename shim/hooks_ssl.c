/*
 * The interposed libssl entry points. Each one forwards to the real
 * function and lets session.c look before or after; nothing else.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "engine.h"
#include "ossl.h"
#include "session.h"
#include "shim.h"

/* The real libssl is only guaranteed to be findable once it is in use. */
static int on(void)
{
	ktls_ossl_bind();
	return ktls_ossl.ok && ktls_shim_active();
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *m)
{
	ktls_ossl_bind();
	SSL_CTX *ctx = ktls_ossl.SSL_CTX_new(m);
	if (ctx && on())
		ktls_sess_on_ctx_new(ctx);
	return ctx;
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *lib, const char *propq,
			const SSL_METHOD *m)
{
	ktls_ossl_bind();
	SSL_CTX *ctx = ktls_ossl.SSL_CTX_new_ex(lib, propq, m);
	if (ctx && on())
		ktls_sess_on_ctx_new(ctx);
	return ctx;
}

SSL *SSL_new(SSL_CTX *ctx)
{
	ktls_ossl_bind();
	SSL *s = ktls_ossl.SSL_new(ctx);
	if (s && on())
		ktls_sess_on_new(s);
	return s;
}

void SSL_CTX_set_info_callback(SSL_CTX *ctx, ktls_info_cb cb)
{
	if (on())
		ktls_sess_set_ctx_info_cb(ctx, cb);
	else
		ktls_ossl.SSL_CTX_set_info_callback(ctx, cb);
}

ktls_info_cb SSL_CTX_get_info_callback(SSL_CTX *ctx)
{
	return on() ? ktls_sess_get_ctx_info_cb(ctx)
		    : ktls_ossl.SSL_CTX_get_info_callback(ctx);
}

void SSL_set_info_callback(SSL *s, ktls_info_cb cb)
{
	if (on())
		ktls_sess_set_info_cb(s, cb);
	else
		ktls_ossl.SSL_set_info_callback(s, cb);
}

ktls_info_cb SSL_get_info_callback(const SSL *s)
{
	return on() ? ktls_sess_get_info_cb(s)
		    : ktls_ossl.SSL_get_info_callback(s);
}

void SSL_CTX_set_keylog_callback(SSL_CTX *ctx, ktls_keylog_cb cb)
{
	if (on())
		ktls_engine_set_keylog_cb(ctx, cb);
	else
		ktls_ossl.SSL_CTX_set_keylog_callback(ctx, cb);
}

ktls_keylog_cb SSL_CTX_get_keylog_callback(const SSL_CTX *ctx)
{
	return on() ? ktls_engine_get_keylog_cb(ctx)
		    : ktls_ossl.SSL_CTX_get_keylog_callback(ctx);
}

void SSL_CTX_set_msg_callback(SSL_CTX *ctx, ktls_msg_cb cb)
{
	if (on())
		ktls_engine_set_ctx_msg_cb(ctx, cb);
	else
		ktls_ossl.SSL_CTX_set_msg_callback(ctx, cb);
}

void SSL_set_msg_callback(SSL *s, ktls_msg_cb cb)
{
	if (on())
		ktls_engine_set_msg_cb(s, cb);
	else
		ktls_ossl.SSL_set_msg_callback(s, cb);
}

uint64_t SSL_CTX_get_options(const SSL_CTX *ctx)
{
	if (!on())
		return ktls_ossl.SSL_CTX_get_options(ctx);
	return ktls_sess_options((SSL_CTX *)ctx, NULL, 0, 0);
}

uint64_t SSL_get_options(const SSL *s)
{
	if (!on())
		return ktls_ossl.SSL_get_options(s);
	return ktls_sess_options(NULL, (SSL *)s, 0, 0);
}

uint64_t SSL_CTX_set_options(SSL_CTX *ctx, uint64_t op)
{
	if (!on())
		return ktls_ossl.SSL_CTX_set_options(ctx, op);
	return ktls_sess_options(ctx, NULL, op, 0);
}

uint64_t SSL_set_options(SSL *s, uint64_t op)
{
	if (!on())
		return ktls_ossl.SSL_set_options(s, op);
	return ktls_sess_options(NULL, s, op, 0);
}

uint64_t SSL_CTX_clear_options(SSL_CTX *ctx, uint64_t op)
{
	if (!on())
		return ktls_ossl.SSL_CTX_clear_options(ctx, op);
	return ktls_sess_options(ctx, NULL, 0, op);
}

uint64_t SSL_clear_options(SSL *s, uint64_t op)
{
	if (!on())
		return ktls_ossl.SSL_clear_options(s, op);
	return ktls_sess_options(NULL, s, 0, op);
}

/* errno is the program's: what the real call left must survive us. */
#define AFTER_IO(s)                                                           \
	do {                                                                  \
		int saved_ = errno;                                           \
		ktls_sess_after_io(s);                                        \
		errno = saved_;                                               \
	} while (0)

/* BEFORE runs ahead of the real call (errno kept), AFTER_IO behind it. */
#define HOOK(ret, fn, params, args, BEFORE)                                   \
	ret fn params                                                         \
	{                                                                     \
		if (!on())                                                    \
			return ktls_ossl.fn args;                             \
		int saved_ = errno;                                           \
		BEFORE;                                                       \
		errno = saved_;                                               \
		ret r = ktls_ossl.fn args;                                    \
		AFTER_IO(s);                                                  \
		return r;                                                     \
	}
#define IO_HOOK(ret, fn, params, args) HOOK(ret, fn, params, args, (void)0)
/* A KeyUpdate due on this session goes out with this very write. */
#define WRITE_HOOK(ret, fn, params, args)                                     \
	HOOK(ret, fn, params, args, ktls_sess_before_write(s))

IO_HOOK(int, SSL_do_handshake, (SSL *s), (s))
IO_HOOK(int, SSL_connect, (SSL *s), (s))
IO_HOOK(int, SSL_accept, (SSL *s), (s))
IO_HOOK(int, SSL_read, (SSL *s, void *b, int n), (s, b, n))
IO_HOOK(int, SSL_read_ex, (SSL *s, void *b, size_t n, size_t *got),
	(s, b, n, got))
WRITE_HOOK(int, SSL_write, (SSL *s, const void *b, int n), (s, b, n))
WRITE_HOOK(int, SSL_write_ex, (SSL *s, const void *b, size_t n, size_t *put),
	   (s, b, n, put))

int SSL_key_update(SSL *s, int updatetype)
{
	if (on() && !ktls_sess_key_update_ok(s))
		return 0;
	return ktls_ossl.SSL_key_update(s, updatetype);
}
