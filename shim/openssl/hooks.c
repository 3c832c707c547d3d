/*
 * The interposed libssl entry points. Each one forwards to the real
 * function and lets session.c look before or after; nothing else.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "core/shim.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/padding.h"
#include "openssl/record_layer.h"
#include "openssl/session.h"
#include "openssl/transport.h"

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

/* BEFORE runs ahead of the real call (errno kept), AFTER_IO behind it;
 * ktls_pad_seen too: a handshake resumed after EAGAIN may install its key
 * with no info callback in this call, after another SSL's ran.
 * A session the shim's record layer runs (libssl without kTLS) never
 * reaches OpenSSL's: OWN is the call over the kernel, with o_ at hand. */
#define HOOK(ret, fn, params, args, BEFORE, OWN)                              \
	ret fn params                                                         \
	{                                                                     \
		if (!on())                                                    \
			return ktls_ossl.fn args;                             \
		struct ktls_orl *o_ = ktls_orl_of(s);                         \
		if (o_)                                                       \
			return OWN;                                           \
		int saved_ = errno;                                           \
		ktls_pad_seen(s);                                             \
		BEFORE;                                                       \
		void *w_ = ktls_oxp_watch_begin(s);                           \
		errno = saved_;                                               \
		ret r = ktls_ossl.fn args;                                    \
		saved_ = errno;                                               \
		ktls_oxp_watch_end(w_);                                       \
		errno = saved_;                                               \
		AFTER_IO(s);                                                  \
		return r;                                                     \
	}
#define IO_HOOK(ret, fn, params, args, OWN)                                   \
	HOOK(ret, fn, params, args, (void)0, OWN)
/* A KeyUpdate due on this session goes out with this very write. */
#define WRITE_HOOK(ret, fn, params, args, OWN)                                \
	HOOK(ret, fn, params, args, ktls_sess_before_write(s), OWN)

/* The _ex forms over the int ones: 1 and the count, or 0. */
static int ex(int r, size_t *n)
{
	if (n)
		*n = r > 0 ? (size_t)r : 0;
	return r > 0;
}

IO_HOOK(int, SSL_do_handshake, (SSL *s), (s), ktls_orl_handshake(o_, s))
IO_HOOK(int, SSL_connect, (SSL *s), (s), ktls_orl_handshake(o_, s))
IO_HOOK(int, SSL_accept, (SSL *s), (s), ktls_orl_handshake(o_, s))
IO_HOOK(int, SSL_read, (SSL *s, void *b, int n), (s, b, n),
	n < 0 ? -1 : ktls_orl_read(o_, s, b, (size_t)n, 0))
IO_HOOK(int, SSL_read_ex, (SSL *s, void *b, size_t n, size_t *got),
	(s, b, n, got), ex(ktls_orl_read(o_, s, b, n, 0), got))
IO_HOOK(int, SSL_peek, (SSL *s, void *b, int n), (s, b, n),
	n < 0 ? -1 : ktls_orl_read(o_, s, b, (size_t)n, 1))
IO_HOOK(int, SSL_peek_ex, (SSL *s, void *b, size_t n, size_t *got),
	(s, b, n, got), ex(ktls_orl_read(o_, s, b, n, 1), got))
WRITE_HOOK(int, SSL_write, (SSL *s, const void *b, int n), (s, b, n),
	   n < 0 ? -1 : ktls_orl_write(o_, s, b, (size_t)n))
/* OpenSSL writes all of n or fails; so do we, INT_MAX at a time. */
static int write_ex_own(struct ktls_orl *o, SSL *s, const void *b, size_t n,
			size_t *put)
{
	size_t done = 0;
	do {
		int r = ktls_orl_write(o, s, (const char *)b + done, n - done);
		if (r <= 0)
			return ex(r, put);
		done += (size_t)r;
	} while (done < n && !(ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, 0, NULL) &
			       SSL_MODE_ENABLE_PARTIAL_WRITE));
	if (put)
		*put = done;
	return 1;
}
WRITE_HOOK(int, SSL_write_ex, (SSL *s, const void *b, size_t n, size_t *put),
	   (s, b, n, put), write_ex_own(o_, s, b, n, put))
IO_HOOK(int, SSL_shutdown, (SSL *s), (s), ktls_orl_shutdown(o_, s))

int SSL_pending(const SSL *s)
{
	struct ktls_orl *o = on() ? ktls_orl_of(s) : NULL;
	return o ? (int)ktls_orl_pending(o) : ktls_ossl.SSL_pending(s);
}

int SSL_has_pending(const SSL *s)
{
	struct ktls_orl *o = on() ? ktls_orl_of(s) : NULL;
	return o ? ktls_orl_pending(o) > 0 : ktls_ossl.SSL_has_pending(s);
}

int SSL_get_error(const SSL *s, int ret)
{
	struct ktls_orl *o = on() ? ktls_orl_of(s) : NULL;
	return o ? ktls_orl_get_error(o, ret) : ktls_ossl.SSL_get_error(s, ret);
}

void SSL_set_read_ahead(SSL *s, int yes)
{
	if (on() && ktls_sess_read_ahead_kept(s, yes))
		return;
	ktls_ossl.SSL_set_read_ahead(s, yes);
}

int SSL_key_update(SSL *s, int updatetype)
{
	if (on()) {
		struct ktls_orl *o = ktls_orl_of(s);
		if (o)
			return ktls_orl_key_update(o, s, updatetype);
		if (!ktls_sess_key_update_ok(s))
			return 0;
	}
	return ktls_ossl.SSL_key_update(s, updatetype);
}

/* SSL BIOs read and write through libssl's record layer without a call
 * we see: a process that makes one keeps its sessions with OpenSSL. */
#define SSL_BIO_HOOK(ret, fn, params, args)                                   \
	ret fn params                                                         \
	{                                                                     \
		ktls_ossl_bind();                                             \
		atomic_store(&ktls_orl_ssl_bio, 1);                           \
		return ktls_ossl.fn args;                                     \
	}
SSL_BIO_HOOK(const BIO_METHOD *, BIO_f_ssl, (void), ())
SSL_BIO_HOOK(BIO *, BIO_new_ssl, (SSL_CTX *ctx, int client), (ctx, client))
SSL_BIO_HOOK(BIO *, BIO_new_ssl_connect, (SSL_CTX *ctx), (ctx))
SSL_BIO_HOOK(BIO *, BIO_new_buffer_ssl_connect, (SSL_CTX *ctx), (ctx))

/*
 * The fence around sessions the shim's record layer runs: libssl reads and
 * writes its records with these, and none may reach such a socket. One
 * load on every other BIO call in a process that never had one. These run
 * in programs that use libcrypto alone, maybe before libssl is loaded, so
 * they bind on their own (ktls_ossl_bind would settle for no libssl).
 */
#define BIO_HOOK(fn, cv, writing)                                             \
	int fn(BIO *b, cv void *d, int n)                                     \
	{                                                                     \
		static __typeof__(fn) *_Atomic real;                          \
		__typeof__(fn) *f = atomic_load_explicit(                     \
			&real, memory_order_relaxed);                         \
		if (!f) {                                                     \
			f = (__typeof__(fn) *)ktls_ossl_find("crypto", #fn);  \
			atomic_store_explicit(&real, f, memory_order_relaxed); \
		}                                                             \
		if (atomic_load_explicit(&ktls_orl_active,                    \
					 memory_order_relaxed) &&             \
		    ktls_orl_fenced(b, writing))                              \
			return -1;                                            \
		return WATCHED(f, b, d, n);                                   \
	}
#define WATCHED ktls_oxp_bio_read
BIO_HOOK(BIO_read, , 0)
#undef WATCHED
#define WATCHED ktls_oxp_bio_write
BIO_HOOK(BIO_write, const, 1)
#undef WATCHED
