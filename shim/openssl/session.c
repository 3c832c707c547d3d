/*
 * The shim around OpenSSL's own kTLS: SSL_OP_ENABLE_KTLS in every SSL_CTX
 * and SSL (hidden from the program's *_get_options), the info callback
 * chained in front of the program's (so BIO_f_ssl users that never call
 * SSL_read through the PLT are seen too), and the SSL-level checks before
 * a write. finalize.c settles each session; fd_policy.c polices the libc
 * calls on its socket.
 */
#define _GNU_SOURCE
#include "openssl/session.h"

#include <stdatomic.h>

#include "core/config.h"
#include "core/fdtab.h"
#include "core/log.h"
#include "core/shim.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/padding.h"

#define HIDDEN ((void *)1)

int ktls_ssl_sock_fd(BIO *b)
{
	if (!b || ktls_ossl.BIO_method_type(b) != BIO_TYPE_SOCKET)
		return -1;
	return (int)ktls_ossl.BIO_ctrl(b, BIO_C_GET_FD, 0, NULL);
}

/* OpenSSL's own installer, asked with SSL_OP_ENABLE_KTLS; not under
 * engine = shim, where the shim's engine moves every direction. */
static int want_ktls(void)
{
	return ktls_cfg.directions && ktls_cfg.ciphers && ktls_cfg.versions &&
	       ktls_ossl.modern && ktls_cfg.engine != KTLS_ENGINE_SHIM &&
	       !ktls_engine_all();
}

static ktls_info_cb program_cb(const SSL *s)
{
	ktls_info_cb cb = ktls_sess_get_info_cb(s);
	return cb ? cb : ktls_sess_get_ctx_info_cb(ktls_ossl.SSL_get_SSL_CTX(s));
}

/* Ours runs first, so a program's callback asking ktls_shim_fd_info()
 * at HANDSHAKE_DONE already gets the final answer. */
static void info_cb(const SSL *cs, int where, int ret)
{
	SSL *s = (SSL *)cs; /* OpenSSL hands callbacks a const view */
	ktls_pad_seen(s);
	if (where & SSL_CB_HANDSHAKE_START)
		ktls_sess_handshake_start(s);
	if (where & SSL_CB_HANDSHAKE_DONE)
		ktls_sess_handshake_done(s, 1);
	ktls_info_cb cb = program_cb(cs);
	if (cb)
		cb(cs, where, ret);
}

void ktls_sess_on_ctx_new(SSL_CTX *ctx)
{
	/* OpenSSL >= 3.0 installs the keys itself once asked, and every SSL
	 * made from this context (BIO_new_ssl included) inherits it. The
	 * program does not see the option (ktls_sess_options): programs and
	 * test suites compare their options with what they set. */
	if (want_ktls() &&
	    !(ktls_ossl.SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS)) {
		ktls_ossl.SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
		ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_hidden,
					      HIDDEN);
	}
	ktls_ossl.SSL_CTX_set_info_callback(ctx, info_cb);
	ktls_engine_on_ctx_new(ctx);
}

void ktls_sess_on_new(SSL *s)
{
	/* For contexts made before the shim was active. */
	if (want_ktls()) {
		SSL_CTX *ctx = ktls_ossl.SSL_get_SSL_CTX(s);
		int hide = ctx && ktls_ossl.SSL_CTX_get_ex_data(
					  ctx, ktls_ossl.ctx_ex_hidden) == HIDDEN;
		if (!(ktls_ossl.SSL_get_options(s) & SSL_OP_ENABLE_KTLS)) {
			ktls_ossl.SSL_set_options(s, SSL_OP_ENABLE_KTLS);
			hide = 1;
		}
		if (hide)
			ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_hidden,
						  HIDDEN);
	}
	if (ktls_ossl.SSL_get_info_callback(s) != info_cb &&
	    ktls_ossl.SSL_CTX_get_info_callback(ktls_ossl.SSL_get_SSL_CTX(s)) !=
		    info_cb)
		ktls_ossl.SSL_set_info_callback(s, info_cb);
	ktls_pad_inherit(s);
	ktls_engine_on_new(s);
}

/*
 * PostgreSQL's and libpq's BIO methods copy the socket BIO's ctrl and
 * replace only read and write, so OpenSSL's installer (BIO_set_ktls on
 * them) reaches setsockopt() on the real socket while their own send()
 * and recv() know nothing of record types. Seen in the 7.2 VM with
 * psql and postgres 15 over TLS 1.2: TLS_TX went in at the CCS and the
 * Finished left as application data ("data between ccs and finished");
 * on the server TLS_RX, then EIO on the Finished. curl's own ctrl
 * declines BIO_CTRL_SET_KTLS. The shim's engine moves such sessions
 * itself once their handshake proved the BIO (finalize.c).
 */
void ktls_sess_own_bio(SSL *s)
{
	if (ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_hidden) == HIDDEN &&
	    (ktls_ossl.SSL_get_options(s) & SSL_OP_ENABLE_KTLS))
		ktls_ossl.SSL_clear_options(s, SSL_OP_ENABLE_KTLS);
}

/* Function pointers ride in ex_data slots (void *): POSIX guarantees the
 * round trip (dlsym relies on it too). Where a slot cannot be set (out of
 * memory) the program's callback goes straight to OpenSSL: the shim then
 * settles that session after its next I/O call (ktls_sess_after_io), and
 * the program loses nothing. */
void ktls_sess_set_ctx_info_cb(SSL_CTX *ctx, ktls_info_cb cb)
{
	int kept = ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_cb,
						 (void *)cb);
	ktls_ossl.SSL_CTX_set_info_callback(ctx, kept ? info_cb : cb);
}

ktls_info_cb ktls_sess_get_ctx_info_cb(const SSL_CTX *ctx)
{
	if (!ctx)
		return NULL;
	ktls_info_cb r = ktls_ossl.SSL_CTX_get_info_callback((SSL_CTX *)ctx);
	return r == info_cb ? (ktls_info_cb)ktls_ossl.SSL_CTX_get_ex_data(
				      ctx, ktls_ossl.ctx_ex_cb)
			    : r;
}

void ktls_sess_set_info_cb(SSL *s, ktls_info_cb cb)
{
	int kept = ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_cb, (void *)cb);
	ktls_ossl.SSL_set_info_callback(s, kept ? info_cb : cb);
}

ktls_info_cb ktls_sess_get_info_cb(const SSL *s)
{
	ktls_info_cb r = ktls_ossl.SSL_get_info_callback(s);
	return r == info_cb ? (ktls_info_cb)ktls_ossl.SSL_get_ex_data(
				      s, ktls_ossl.ex_cb)
			    : r;
}

uint64_t ktls_sess_options(SSL_CTX *ctx, SSL *s, uint64_t set, uint64_t clear)
{
	/* The program naming the option, either way, makes it its own. */
	if ((set | clear) & SSL_OP_ENABLE_KTLS) {
		if (ctx)
			ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_hidden,
						      NULL);
		else
			ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_hidden, NULL);
	}
	uint64_t r;
	if (ctx)
		r = set     ? ktls_ossl.SSL_CTX_set_options(ctx, set)
		    : clear ? ktls_ossl.SSL_CTX_clear_options(ctx, clear)
			    : ktls_ossl.SSL_CTX_get_options(ctx);
	else
		r = set     ? ktls_ossl.SSL_set_options(s, set)
		    : clear ? ktls_ossl.SSL_clear_options(s, clear)
			    : ktls_ossl.SSL_get_options(s);
	int hidden = ctx ? ktls_ossl.SSL_CTX_get_ex_data(
				   ctx, ktls_ossl.ctx_ex_hidden) == HIDDEN
			 : ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_hidden) ==
				   HIDDEN;
	return hidden ? r & ~(uint64_t)SSL_OP_ENABLE_KTLS : r;
}

void ktls_sess_before_write(SSL *s)
{
	/* Every SSL_write passes here: one load until a budget ever ran out
	 * in this process (never, with the default 256 GiB). */
	if (!ktls_fd_rekey_due_seen())
		return;
	/* Only here: the KeyUpdate goes out with this very write. Scheduled
	 * anywhere else, it could be left pending, and OpenSSL refuses
	 * SSL_shutdown() while it is. */
	int fd = ktls_ssl_sock_fd(ktls_ossl.SSL_get_wbio(s));
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (e && (atomic_load_explicit(&e->flags, memory_order_relaxed) &
		  KTLS_FD_REKEY_DUE))
		ktls_engine_key_update_due(s, fd, e, ktls_ossl.SSL_key_update);
}

int ktls_sess_key_update_ok(SSL *s)
{
	int fd = ktls_ssl_sock_fd(ktls_ossl.SSL_get_wbio(s));
	struct ktls_fd *e = ktls_fd_tracked(fd);
	uint32_t f = e ? atomic_load(&e->flags) : 0;
	/* A poisoned fd (a rekey already failed, its secret wiped) refuses
	 * the KeyUpdate's write like every other: the connection fails the
	 * way it already has, not with a new error from here. */
	if (!e || !(f & KTLS_FD_TX) || (f & KTLS_FD_POISONED) ||
	    atomic_load(&e->version) != KTLS_TLS13 ||
	    ktls_sess_tx_rekey_ok(e))
		return 1;
	ktls_warn("fd=%d: refusing SSL_key_update: the kernel holds the TX "
		  "key and %s",
		  fd, ktls_sess_tx_rekey_why_not());
	return 0;
}

void ktls_sess_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		       long argl, void *argp)
{
	(void)ad, (void)idx, (void)argl, (void)argp;
	if (!ptr)
		return;
	struct ktls_fd *e = ktls_fd_get((int)((uintptr_t)ptr - 1));
	uintptr_t mine = (uintptr_t)parent;
	if (e)
		atomic_compare_exchange_strong(&e->ssl, &mine, 0);
}
