/*
 * TLS 1.3 record padding, as the program asked libssl for it. libssl pads
 * each record it seals (3.0: do_ssl3_write; 3.2+: the record layer); the
 * kernel's TLS_TX seals records as they come and adds no padding. So the
 * setters are interposed only to remember, per SSL_CTX and SSL (ex_data,
 * two bits: block padding and callback are separate settings in libssl),
 * whether padding was asked for; the installers then keep TLS 1.3 TX in
 * userspace (padding-requested) unless record_padding = drop.
 */
#define _GNU_SOURCE
#include "openssl/padding.h"

#include <stdatomic.h>
#include <stdint.h>

#include "core/cipher.h"
#include "core/config.h"
#include "core/shim.h"
#include "openssl/bind.h"
#include "openssl/session.h"

#define PAD_BLOCK 1u /* block padding > 1 (app or handshake records) */
#define PAD_CB 2u    /* a padding callback */

typedef size_t (*ktls_pad_cb)(SSL *, int, size_t, void *);

/* OpenSSL 3.4 added the _ex setters (separate sizes for application and
 * handshake records); a 3.0 build declares them here to export them. */
#if OPENSSL_VERSION_NUMBER < 0x30400000L
int SSL_CTX_set_block_padding_ex(SSL_CTX *ctx, size_t app_block_size,
				 size_t hs_block_size);
int SSL_set_block_padding_ex(SSL *ssl, size_t app_block_size,
			     size_t hs_block_size);
#endif

static int on(void)
{
	ktls_ossl_bind();
	return ktls_ossl.ok && ktls_shim_active();
}

/* The next definition, looked up at first use: the _ex ones only exist
 * in 3.4+, and a program calling them has such a libssl loaded. */
#define REAL(fn)                                                              \
	({                                                                    \
		static __typeof__(fn) *_Atomic real_;                         \
		__typeof__(fn) *f_ = atomic_load_explicit(                    \
			&real_, memory_order_relaxed);                        \
		if (!f_) {                                                    \
			f_ = (__typeof__(fn) *)ktls_ossl_find("ssl", #fn);    \
			atomic_store_explicit(&real_, f_,                     \
					      memory_order_relaxed);          \
		}                                                             \
		f_;                                                           \
	})

static unsigned ctx_bits(const SSL_CTX *ctx)
{
	return ctx ? (unsigned)(uintptr_t)ktls_ossl.SSL_CTX_get_ex_data(
			     ctx, ktls_ossl.ctx_ex_pad)
		   : 0;
}

static unsigned ssl_bits(const SSL *s)
{
	return (unsigned)(uintptr_t)ktls_ossl.SSL_get_ex_data(s,
							      ktls_ossl.ex_pad);
}

static void ctx_note(SSL_CTX *ctx, unsigned bit, int asked)
{
	unsigned b = asked ? ctx_bits(ctx) | bit : ctx_bits(ctx) & ~bit;
	ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_pad,
				      (void *)(uintptr_t)b);
}

static void ssl_note(SSL *s, unsigned bit, int asked)
{
	unsigned b = asked ? ssl_bits(s) | bit : ssl_bits(s) & ~bit;
	ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_pad, (void *)(uintptr_t)b);
}

void ktls_pad_inherit(SSL *s)
{
	unsigned b = ctx_bits(ktls_ossl.SSL_get_SSL_CTX(s));
	if (b)
		ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_pad,
					  (void *)(uintptr_t)b);
}

int ktls_pad_keeps_tx(const SSL *s, unsigned version)
{
	return version == KTLS_TLS13 &&
	       ktls_cfg.record_padding == KTLS_PADDING_KEEP && ssl_bits(s);
}

int ktls_pad_explains_decline(const SSL *s, unsigned version)
{
	return ktls_pad_keeps_tx(s, version) ||
	       (ktls_ossl.rekeys_itself && ssl_bits(s));
}

/* The socket of the SSL last seen on this thread (info callback, I/O
 * hook), if that SSL asked for padding: an fd number, never the SSL (it
 * may be freed by the time a setsockopt() comes). */
static _Thread_local int pad_fd = -1;

void ktls_pad_seen(const SSL *s)
{
	pad_fd = ssl_bits(s) ? ktls_ssl_sock_fd(ktls_ossl.SSL_get_wbio(s)) : -1;
}

int ktls_pad_refuses_tx(int fd, unsigned version)
{
	return fd >= 0 && fd == pad_fd && version == KTLS_TLS13 &&
	       ktls_cfg.record_padding == KTLS_PADDING_KEEP;
}

/* libssl: 0 and 1 mean no padding; a size it refuses changes nothing. */
int SSL_CTX_set_block_padding(SSL_CTX *ctx, size_t block_size)
{
	int r = REAL(SSL_CTX_set_block_padding)(ctx, block_size);
	if (r == 1 && on())
		ctx_note(ctx, PAD_BLOCK, block_size > 1);
	return r;
}

int SSL_set_block_padding(SSL *s, size_t block_size)
{
	int r = REAL(SSL_set_block_padding)(s, block_size);
	if (r == 1 && on())
		ssl_note(s, PAD_BLOCK, block_size > 1);
	return r;
}

int SSL_CTX_set_block_padding_ex(SSL_CTX *ctx, size_t app_block_size,
				 size_t hs_block_size)
{
	__typeof__(SSL_CTX_set_block_padding_ex) *f =
		REAL(SSL_CTX_set_block_padding_ex);
	int r = f ? f(ctx, app_block_size, hs_block_size) : 0;
	if (r == 1 && on())
		ctx_note(ctx, PAD_BLOCK, app_block_size > 1 || hs_block_size > 1);
	return r;
}

int SSL_set_block_padding_ex(SSL *s, size_t app_block_size,
			     size_t hs_block_size)
{
	__typeof__(SSL_set_block_padding_ex) *f = REAL(SSL_set_block_padding_ex);
	int r = f ? f(s, app_block_size, hs_block_size) : 0;
	if (r == 1 && on())
		ssl_note(s, PAD_BLOCK, app_block_size > 1 || hs_block_size > 1);
	return r;
}

void SSL_CTX_set_record_padding_callback(SSL_CTX *ctx, ktls_pad_cb cb)
{
	REAL(SSL_CTX_set_record_padding_callback)(ctx, cb);
	if (on())
		ctx_note(ctx, PAD_CB, cb != NULL);
}

/* libssl 3.0 refuses it (0) once its own kTLS TX is on. */
int SSL_set_record_padding_callback(SSL *s, ktls_pad_cb cb)
{
	int r = REAL(SSL_set_record_padding_callback)(s, cb);
	if (r == 1 && on())
		ssl_note(s, PAD_CB, cb != NULL);
	return r;
}
