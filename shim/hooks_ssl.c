/*
 * The interposed libssl entry points. Each one forwards to the real
 * function and lets session.c look before and after; nothing else.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "ossl.h"
#include "session.h"
#include "shim.h"

/* The real libssl is only guaranteed to be findable once it is in use. */
static int on(void)
{
	ktls_ossl_bind();
	return ktls_ossl.ok && ktls_shim_active();
}

SSL *SSL_new(SSL_CTX *ctx)
{
	ktls_ossl_bind();
	SSL *s = ktls_ossl.SSL_new(ctx);
	if (s && on())
		ktls_sess_on_new(s);
	return s;
}

#define HANDSHAKE_HOOK(fn)                                                    \
	int fn(SSL *s)                                                        \
	{                                                                     \
		if (!on())                                                    \
			return ktls_ossl.fn(s);                               \
		ktls_sess_pre(s, KTLS_IO_READ);                               \
		int r = ktls_ossl.fn(s);                                      \
		int saved = errno;                                            \
		ktls_sess_post(s, KTLS_IO_READ, 0);                           \
		errno = saved;                                                \
		return r;                                                     \
	}

HANDSHAKE_HOOK(SSL_do_handshake)
HANDSHAKE_HOOK(SSL_connect)
HANDSHAKE_HOOK(SSL_accept)

int SSL_read(SSL *s, void *buf, int num)
{
	if (!on())
		return ktls_ossl.SSL_read(s, buf, num);
	ktls_sess_pre(s, KTLS_IO_READ);
	int r = ktls_ossl.SSL_read(s, buf, num);
	int saved = errno;
	ktls_sess_post(s, KTLS_IO_READ, r > 0 ? (size_t)r : 0);
	errno = saved;
	return r;
}

int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)
{
	if (!on())
		return ktls_ossl.SSL_read_ex(s, buf, num, readbytes);
	ktls_sess_pre(s, KTLS_IO_READ);
	int r = ktls_ossl.SSL_read_ex(s, buf, num, readbytes);
	int saved = errno;
	ktls_sess_post(s, KTLS_IO_READ, r > 0 && readbytes ? *readbytes : 0);
	errno = saved;
	return r;
}

int SSL_write(SSL *s, const void *buf, int num)
{
	if (!on())
		return ktls_ossl.SSL_write(s, buf, num);
	if (ktls_sess_pre(s, KTLS_IO_WRITE) < 0)
		return -1;
	int r = ktls_ossl.SSL_write(s, buf, num);
	int saved = errno;
	ktls_sess_post(s, KTLS_IO_WRITE, r > 0 ? (size_t)r : 0);
	errno = saved;
	return r;
}

int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
	if (!on())
		return ktls_ossl.SSL_write_ex(s, buf, num, written);
	if (ktls_sess_pre(s, KTLS_IO_WRITE) < 0)
		return 0;
	int r = ktls_ossl.SSL_write_ex(s, buf, num, written);
	int saved = errno;
	ktls_sess_post(s, KTLS_IO_WRITE, r > 0 && written ? *written : 0);
	errno = saved;
	return r;
}

int SSL_key_update(SSL *s, int updatetype)
{
	if (on() && !ktls_sess_key_update_ok(s))
		return 0;
	return ktls_ossl.SSL_key_update(s, updatetype);
}
