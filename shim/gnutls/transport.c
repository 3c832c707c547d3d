/*
 * A GnuTLS session whose program gave it its own push/pull functions (qemu's
 * QIOChannel, for NBD and live migration). GnuTLS's own kTLS refuses such
 * sessions; the shim proves the transport instead (session/xwatch.h):
 * during each gnutls_handshake call the program's functions are wrapped,
 * and what each call did on the socket is compared with what GnuTLS handed
 * it. Outside the handshake the program's functions are GnuTLS's again,
 * untouched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/log.h"
#include "core/shim.h"
#include "gnutls/bind.h"
#include "gnutls/state.h"
#include "session/xwatch.h"

/* GnuTLS's giovec_t is a struct iovec by another name (gnutls.h says so):
 * the iovecs it hands the vec_push function are watched as they are. */
_Static_assert(sizeof(giovec_t) == sizeof(struct iovec) &&
		       offsetof(giovec_t, iov_base) ==
			       offsetof(struct iovec, iov_base) &&
		       offsetof(giovec_t, iov_len) ==
			       offsetof(struct iovec, iov_len),
	       "giovec_t is not struct iovec");

/* The session whose handshake runs on this thread. GnuTLS calls push and
 * pull only from inside the caller's gnutls_* call, on its thread. */
static _Thread_local struct ktls_gts *watched;

static void note_custom(struct ktls_gts *g)
{
	unsigned st = atomic_fetch_or(&g->st, GTS_CUSTOM);
	if (st & (GTS_TX | GTS_RX))
		ktls_warn("fd=%d: program set its own GnuTLS transport after "
			  "the session moved into the kernel; GnuTLS's own "
			  "records would now bypass the kernel's keys",
			  g->fd);
}

/* The session, noted as having its own transport, or NULL. */
static struct ktls_gts *custom(gnutls_session_t s)
{
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (g)
		note_custom(g);
	return g;
}

void ktls_gts_set_push(gnutls_session_t s, gnutls_push_func f)
{
	struct ktls_gts *g = custom(s);
	if (g)
		g->prog_push = f, g->prog_vec_push = NULL;
}

void ktls_gts_set_vec_push(gnutls_session_t s, gnutls_vec_push_func f)
{
	struct ktls_gts *g = custom(s);
	if (g)
		g->prog_vec_push = f, g->prog_push = NULL;
}

void ktls_gts_set_pull(gnutls_session_t s, gnutls_pull_func f)
{
	struct ktls_gts *g = custom(s);
	if (g)
		g->prog_pull = f;
}

static ssize_t watched_push(gnutls_transport_ptr_t p, const void *d,
			    size_t n)
{
	struct ktls_gts *g = watched;
	struct iovec v = { (void *)d, n };
	ktls_xw_call_begin_tx(g->xw, &v, 1);
	ssize_t r = g->prog_push(p, d, n);
	int e = errno;
	ktls_xw_call_end(g->xw, r, NULL);
	errno = e;
	return r;
}

static ssize_t watched_vec_push(gnutls_transport_ptr_t p, const giovec_t *iov,
				int n)
{
	struct ktls_gts *g = watched;
	ktls_xw_call_begin_tx(g->xw, (const struct iovec *)iov, n);
	ssize_t r = g->prog_vec_push(p, iov, n);
	int e = errno;
	ktls_xw_call_end(g->xw, r, NULL);
	errno = e;
	return r;
}

static ssize_t watched_pull(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct ktls_gts *g = watched;
	ktls_xw_call_begin_rx(g->xw, n);
	ssize_t r = g->prog_pull(p, d, n);
	int e = errno;
	ktls_xw_call_end(g->xw, r, d);
	errno = e;
	return r;
}

/* Worth watching: the program's own push and pull, no decision yet, the
 * config willing, and nothing already disproven. */
static int watchable(struct ktls_gts *g)
{
	unsigned st = atomic_load(&g->st);
	if (!(st & GTS_CUSTOM) || (st & GTS_FINAL) ||
	    !ktls_cfg.custom_transports || !g->prog_pull ||
	    !(g->prog_push || g->prog_vec_push))
		return 0;
	if (!g->xw) {
		g->xw = malloc(sizeof(*g->xw));
		if (!g->xw)
			return 0;
		ktls_xw_init(g->xw, NULL);
	}
	return g->xw->verdict == KTLS_R_MOVED;
}

static void set_functions(struct ktls_gts *g, int ours)
{
	if (g->prog_vec_push)
		ktls_gt.transport_set_vec_push_function(
			g->s, ours ? watched_vec_push : g->prog_vec_push);
	else
		ktls_gt.transport_set_push_function(
			g->s, ours ? watched_push : g->prog_push);
	ktls_gt.transport_set_pull_function(g->s,
					    ours ? watched_pull : g->prog_pull);
}

struct ktls_gts *ktls_gts_watch_begin(gnutls_session_t s)
{
	if (!ktls_shim_active() || !ktls_gt_bind())
		return NULL;
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (!g || watched || !watchable(g))
		return NULL;
	if (g->prog_vec_push && !ktls_gt.transport_set_vec_push_function)
		return NULL;
	ktls_xw_hooks_hold();
	watched = g;
	ktls_xw_set_current(g->xw);
	set_functions(g, 1);
	return g;
}

void ktls_gts_watch_end(struct ktls_gts *g)
{
	set_functions(g, 0);
	ktls_xw_set_current(NULL);
	watched = NULL;
	ktls_xw_hooks_release();
}

enum ktls_reason ktls_gts_transport_verdict(struct ktls_gts *g, int *fd)
{
	*fd = -1;
	if (!ktls_cfg.custom_transports)
		return KTLS_R_CUSTOM_OFF;
	/* One half GnuTLS's own (its writev on the transport pointer as
	 * an fd): not what the watch was built for. */
	if (!g->prog_pull || !(g->prog_push || g->prog_vec_push))
		return KTLS_R_NOT_SOCKET_BIO;
	if (!g->xw)
		return KTLS_R_NO_MEMORY;
	enum ktls_reason r = ktls_xw_verdict(g->xw, fd);
	if (r == KTLS_R_MOVED && g->xw->dontwait)
		g->io_flags = MSG_DONTWAIT;
	ktls_gts_transport_free(g);
	return r;
}

void ktls_gts_transport_free(struct ktls_gts *g)
{
	if (!g->xw)
		return;
	ktls_xw_release(g->xw);
	free(g->xw);
	g->xw = NULL;
}
