/*
 * An OpenSSL session whose program gave it its own BIO (curl's connection
 * filters, HAProxy's and PostgreSQL's socket BIO methods, Apache's
 * filters): OpenSSL's kTLS needs a socket BIO, so these never move. As for
 * GnuTLS (gnutls/transport.c), the handshake proves or disproves the BIO
 * (session/xwatch.h): while an SSL I/O call runs an unfinished handshake,
 * each BIO_write/BIO_read libssl makes on the program's BIO is watched.
 * A proven session is moved by finalize.c with the shim's engine and
 * record layer (any libssl 3: ktls_engine_own_bio), which from then on
 * read and write the socket itself, bypassing the program's BIO.
 */
#define _GNU_SOURCE
#include "openssl/transport.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/shim.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/session.h"
#include "session/xwatch.h"

struct ktls_oxp {
	BIO *rbio, *wbio; /* the program's, as SSL_get_rbio/wbio give */
	struct ktls_xwatch w;
};

/* The SSL whose handshake this thread is in; the process-wide count lets
 * every other BIO call skip the thread-local with one relaxed load. */
static _Thread_local struct ktls_oxp *watched;
static atomic_int n_watched;

void ktls_oxp_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		      long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	struct ktls_oxp *x = ptr;
	if (!x)
		return;
	ktls_xw_release(&x->w);
	free(x);
}

static struct ktls_oxp *state(SSL *s, int create)
{
	struct ktls_oxp *x = ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_xport);
	if (x || !create)
		return x;
	x = malloc(sizeof(*x));
	if (!x)
		return NULL;
	ktls_xw_init(&x->w, NULL);
	if (!ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_xport, x)) {
		free(x);
		return NULL;
	}
	return x;
}

/* OpenSSL's own memory BIOs and BIO pairs (CPython's SSLObject, asyncio)
 * carry no socket: nothing to watch. By name, as curl's own method says
 * BIO_TYPE_MEM too. */
static int memory_bio(BIO *b)
{
	const char *n = ktls_ossl.BIO_method_name(b);
	return n && (!strcmp(n, "memory buffer") || !strcmp(n, "BIO pair"));
}

void *ktls_oxp_watch_begin(SSL *s)
{
	if (watched || ktls_ossl.ex_xport < 0 ||
	    ktls_ossl.SSL_is_init_finished(s))
		return NULL;
	BIO *wb = ktls_ossl.SSL_get_wbio(s), *rb = ktls_ossl.SSL_get_rbio(s);
	if (!wb || !rb || ktls_ssl_sock_fd(wb) >= 0 || memory_bio(wb) ||
	    memory_bio(rb))
		return NULL;
	/* Watched or not: OpenSSL's installer cannot serve such a BIO. */
	ktls_sess_own_bio(s);
	if (!ktls_cfg.custom_transports)
		return NULL;
	struct ktls_oxp *x = state(s, 1);
	/* Disproven: no more watching, once the socket is known. */
	if (!x || (x->w.verdict != KTLS_R_MOVED && x->w.fd >= 0))
		return NULL;
	x->rbio = rb;
	x->wbio = wb;
	/* Before the handshake's first record: the engine counts them. */
	if (ktls_engine_own_bio())
		ktls_engine_own_bio_begin(s);
	ktls_xw_hooks_hold();
	atomic_fetch_add(&n_watched, 1);
	watched = x;
	ktls_xw_set_current(&x->w);
	return x;
}

void ktls_oxp_watch_end(void *token)
{
	if (!token)
		return;
	ktls_xw_set_current(NULL);
	watched = NULL;
	atomic_fetch_sub(&n_watched, 1);
	ktls_xw_hooks_release();
}

/* The watch of this BIO call, or NULL: only the program's own BIO of the
 * SSL whose handshake runs on this thread. */
static struct ktls_xwatch *watching(BIO *b)
{
	if (!atomic_load_explicit(&n_watched, memory_order_relaxed))
		return NULL;
	struct ktls_oxp *x = watched;
	return x && (b == x->wbio || b == x->rbio) ? &x->w : NULL;
}

int ktls_oxp_bio_write(int (*f)(BIO *, const void *, int), BIO *b,
		       const void *d, int n)
{
	struct ktls_xwatch *w = watching(b);
	if (!w || n <= 0)
		return f(b, d, n);
	struct iovec v = { (void *)d, (size_t)n };
	ktls_xw_call_begin_tx(w, &v, 1);
	int r = f(b, d, n);
	ktls_xw_call_end(w, r, NULL);
	return r;
}

int ktls_oxp_bio_read(int (*f)(BIO *, void *, int), BIO *b, void *d, int n)
{
	struct ktls_xwatch *w = watching(b);
	if (!w || n <= 0)
		return f(b, d, n);
	ktls_xw_call_begin_rx(w, (size_t)n);
	int r = f(b, d, n);
	ktls_xw_call_end(w, r, d);
	return r;
}

enum ktls_reason ktls_oxp_verdict(SSL *s, int *fd, int *io_flags)
{
	*fd = -1;
	*io_flags = 0;
	if (!ktls_cfg.custom_transports)
		return KTLS_R_CUSTOM_OFF;
	struct ktls_oxp *x = ktls_ossl.ex_xport >= 0 ? state(s, 0) : NULL;
	if (!x)
		return KTLS_R_NOT_SOCKET_BIO;
	enum ktls_reason r = ktls_xw_verdict(&x->w, fd);
	/* No socket ever carried its bytes: not a socket transport at all
	 * (or one through calls the shim does not see). */
	if (*fd < 0)
		return KTLS_R_NOT_SOCKET_BIO;
	/* The record layer that takes over sends and reads as the program's
	 * transport did: never blocking where it would not have, no SIGPIPE
	 * where it asked for none. */
	*io_flags = (x->w.dontwait ? MSG_DONTWAIT : 0) |
		    (x->w.nosignal ? MSG_NOSIGNAL : 0);
	return r;
}
