/*
 * The GnuTLS sessions the shim knows, by gnutls_session_t: made at
 * gnutls_init, dropped at gnutls_deinit; and the keylog function chained in
 * front of the program's, which keeps the TLS 1.3 traffic secrets.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "gnutls/bind.h"
#include "gnutls/secrets.h"
#include "gnutls/state.h"

#define NBUCKETS 1024
static struct ktls_gts *buckets[NBUCKETS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int n_moved; /* sessions with a direction in the kernel */
static atomic_int used;

void ktls_gts_moved_count(int delta)
{
	atomic_fetch_add(&n_moved, delta);
}

int ktls_gts_used(void)
{
	return atomic_load(&used);
}

static unsigned bucket(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 17;
	x *= 0x9E3779B97F4A7C15ull;
	return (unsigned)(x >> 40) % NBUCKETS;
}

struct ktls_gts *ktls_gts_lookup(gnutls_session_t s)
{
	struct ktls_gts *g;
	pthread_mutex_lock(&mu);
	for (g = buckets[bucket(s)]; g && g->s != s; g = g->next)
		;
	pthread_mutex_unlock(&mu);
	return g;
}

/* Chained in front of the program's (or GnuTLS's SSLKEYLOGFILE writer,
 * the default): the application traffic secrets of the handshake are
 * kept for KeyUpdate; every line still reaches the program. */
static int keylog_cb(gnutls_session_t s, const char *label,
		     const gnutls_datum_t *secret)
{
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (!g)
		return 0;
	unsigned st = atomic_load(&g->st);
	if (!(st & GTS_FINAL) && label)
		ktls_gt_secret_capture(&g->sec, (st & GTS_SERVER) != 0, label,
				       secret);
	gnutls_keylog_func prog = atomic_load(&g->prog_keylog);
	return prog ? prog(s, label, secret) : 0;
}

int ktls_gts_set_keylog(gnutls_session_t s, gnutls_keylog_func f)
{
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (!g || !(atomic_load(&g->st) & GTS_KEYLOG))
		return 0;
	atomic_store(&g->prog_keylog, f);
	return 1;
}

int ktls_gts_get_keylog(gnutls_session_t s, gnutls_keylog_func *f)
{
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (!g || !(atomic_load(&g->st) & GTS_KEYLOG))
		return 0;
	*f = atomic_load(&g->prog_keylog);
	return 1;
}

void ktls_gts_on_init(gnutls_session_t s, unsigned flags)
{
	struct ktls_gts *g = calloc(1, sizeof(*g));
	atomic_store(&used, 1);
	if (!g)
		return; /* untracked: it simply stays in GnuTLS */
	g->s = s;
	g->init_flags = flags;
	g->fd = -1;
	atomic_store(&g->last_alert, -1);
	if (flags & GNUTLS_SERVER)
		atomic_store(&g->st, GTS_SERVER);
	/* DTLS: the kernel does TLS over TCP only. */
	if (flags & GNUTLS_DATAGRAM)
		atomic_fetch_or(&g->st, GTS_CUSTOM);
	pthread_mutex_lock(&mu);
	unsigned b = bucket(s);
	g->next = buckets[b];
	buckets[b] = g;
	pthread_mutex_unlock(&mu);
	/* In the table first: GnuTLS calls keylog_cb and the hello hook
	 * from the handshake. */
	if ((flags & GNUTLS_DATAGRAM) || !ktls_gt_bind())
		return;
	ktls_gts_hello_watch(g);
	if (ktls_gt_rekey_wanted()) {
		atomic_store(&g->prog_keylog,
			     ktls_gt.session_get_keylog_function(s));
		atomic_fetch_or(&g->st, GTS_KEYLOG);
		ktls_gt.session_set_keylog_function(s, keylog_cb);
	}
}

void ktls_gts_on_deinit(gnutls_session_t s)
{
	struct ktls_gts **pp, *g = NULL;
	pthread_mutex_lock(&mu);
	for (pp = &buckets[bucket(s)]; *pp; pp = &(*pp)->next)
		if ((*pp)->s == s) {
			g = *pp;
			*pp = g->next;
			break;
		}
	pthread_mutex_unlock(&mu);
	if (!g)
		return;
	if (atomic_load(&g->st) & (GTS_TX | GTS_RX))
		atomic_fetch_sub(&n_moved, 1);
	/* Plaintext only, but the program's: do not leave it in the heap. */
	if (g->pend)
		explicit_bzero(g->pend, PEND_MAX);
	if (g->ctrl)
		explicit_bzero(g->ctrl, CTRL_MAX);
	free(g->pend);
	free(g->ctrl);
	ktls_gts_transport_free(g);
	explicit_bzero(g, sizeof(*g)); /* the secrets */
	free(g);
}

struct ktls_gts *ktls_gts_moved(gnutls_session_t s)
{
	if (!atomic_load_explicit(&n_moved, memory_order_relaxed))
		return NULL;
	struct ktls_gts *g = ktls_gts_lookup(s);
	return g && (atomic_load(&g->st) & (GTS_TX | GTS_RX)) ? g : NULL;
}

int ktls_gts_tx(const struct ktls_gts *g)
{
	return (atomic_load(&g->st) & GTS_TX) != 0;
}

int ktls_gts_rx(const struct ktls_gts *g)
{
	return (atomic_load(&g->st) & GTS_RX) != 0;
}

void ktls_gts_note_padding(struct ktls_gts *g)
{
	if (!(atomic_fetch_or(&g->st, GTS_PAD_SAID) & GTS_PAD_SAID))
		ktls_warn("fd=%d: gnutls_record_send2() asked for record "
			  "padding; the kernel sends this session's records "
			  "unpadded (as GnuTLS's own kTLS does)",
			  g->fd);
}
