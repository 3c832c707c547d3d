/*
 * The peer's RFC 8449 record_size_limit, for GnuTLS before 3.8.11: GnuTLS
 * negotiates it and cuts its own records to it, but says only what it
 * accepts, never what it may send. A kernel that went on sending 16 KiB
 * records would break a peer that asked for 512. So a handshake hook,
 * installed at gnutls_init, reads the limit from the peer's ClientHello,
 * ServerHello or EncryptedExtensions (tls/hello_ext.c); the program's own
 * hook, if it sets one, is kept and called behind ours with its own
 * filters, so it sees exactly what it would have seen.
 */
#define _GNU_SOURCE
#include <stdatomic.h>

#include "core/log.h"
#include "gnutls/bind.h"
#include "gnutls/session.h"
#include "gnutls/state.h"
#include "tls/hello_ext.h"

static int hook_cb(gnutls_session_t s, unsigned htype, unsigned when,
		   unsigned incoming, const gnutls_datum_t *msg)
{
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (!g)
		return 0;
	if (incoming && when == GNUTLS_HOOK_POST && msg) {
		int v = ktls_hello_record_size_limit((uint8_t)htype, msg->data,
						     msg->size);
		/* Malformed: GnuTLS refuses such a message itself. */
		if (v > 0) {
			atomic_store(&g->peer_rsl, v);
			ktls_dbg("peer's record_size_limit: %d", v);
		}
	}
	gnutls_handshake_hook_func prog = g->prog_hook;
	if (!prog ||
	    (g->prog_hook_htype != GNUTLS_HANDSHAKE_ANY &&
	     g->prog_hook_htype != htype) ||
	    (g->prog_hook_when != GNUTLS_HOOK_BOTH &&
	     (unsigned)g->prog_hook_when != when))
		return 0;
	return prog(s, htype, when, incoming, msg);
}

void ktls_gts_hello_watch(struct ktls_gts *g)
{
	if (ktls_gt.record_get_max_send_size ||
	    !ktls_gt.handshake_set_hook_function)
		return;
	ktls_gt.handshake_set_hook_function(g->s, GNUTLS_HANDSHAKE_ANY,
					    GNUTLS_HOOK_BOTH, hook_cb);
}

/* 1 when the program's hook was kept behind ours, 0 when GnuTLS should
 * take it: no session of ours, or a filter ours cannot pass on (GnuTLS
 * calls a hook for ChangeCipherSpec only when asked for exactly that).
 * Then the peer's limit is unknown from here on. */
int ktls_gts_set_hook(gnutls_session_t s, unsigned htype, int when,
		      gnutls_handshake_hook_func f)
{
	struct ktls_gts *g = ktls_gts_lookup(s);
	if (!g || ktls_gt.record_get_max_send_size ||
	    !ktls_gt.handshake_set_hook_function)
		return 0;
	if (htype == GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC) {
		atomic_store(&g->peer_rsl, -1);
		return 0;
	}
	g->prog_hook_htype = htype;
	g->prog_hook_when = when;
	g->prog_hook = f;
	if (atomic_load(&g->peer_rsl) < 0) {
		atomic_store(&g->peer_rsl, 0);
		ktls_gts_hello_watch(g);
	}
	return 1;
}
