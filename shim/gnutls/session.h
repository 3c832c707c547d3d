/*
 * GnuTLS sessions moved into the kernel by the shim. GnuTLS 3.7 as Debian
 * builds it has no kTLS of its own, but gnutls_record_get_state() hands out
 * each direction's key, IV and sequence number: after gnutls_handshake()
 * the engine installs them with setsockopt(TLS_TX/TLS_RX) on the session's
 * socket, and from then on the interposed record calls (hooks_gnutls.c) run
 * over the kernel: send -> send(), recv -> recvmsg() with the record type
 * in a cmsg, bye -> a close_notify alert record. GnuTLS's own transport is
 * fenced off (push/pull functions that refuse), so no GnuTLS path we did
 * not interpose can put a record on the wire under a key the kernel has.
 * Sessions with their own push/pull functions move only where the
 * handshake proved them a plain pass-through to one TCP socket
 * (transport.c, session/xwatch.h); on two fds, or anything the kernel or
 * the config refuses, they stay in GnuTLS, untouched.
 */
#ifndef KTLS_SHIM_GNUTLS_SESSION_H
#define KTLS_SHIM_GNUTLS_SESSION_H

#include <gnutls/gnutls.h>
#include <sys/types.h>

struct ktls_gts; /* one GnuTLS session the shim knows */

/* 1 once any GnuTLS session was seen (for the exit summary). */
int ktls_gts_used(void);

void ktls_gts_on_init(gnutls_session_t s, unsigned flags);
void ktls_gts_on_deinit(gnutls_session_t s);
/* The program gave the session its own push, vec_push or pull function:
 * kept, to be watched during the handshake (transport.c). */
void ktls_gts_set_push(gnutls_session_t s, gnutls_push_func f);
void ktls_gts_set_vec_push(gnutls_session_t s, gnutls_vec_push_func f);
void ktls_gts_set_pull(gnutls_session_t s, gnutls_pull_func f);
/* Around the real gnutls_handshake: the session whose own transport is
 * being proven (then call ktls_gts_watch_end after it), or NULL. */
struct ktls_gts *ktls_gts_watch_begin(gnutls_session_t s);
void ktls_gts_watch_end(struct ktls_gts *g);
/* After gnutls_handshake() returned 0: move it if possible. */
void ktls_gts_after_handshake(gnutls_session_t s);

/* The session when one of its directions is in the kernel by our hand,
 * else NULL (then the hooks call GnuTLS). */
struct ktls_gts *ktls_gts_moved(gnutls_session_t s);
int ktls_gts_tx(const struct ktls_gts *g);
int ktls_gts_rx(const struct ktls_gts *g);

/* gnutls_record_send2() asked for padding on a moved TX: said once per
 * session (the kernel sends the record unpadded). */
void ktls_gts_note_padding(struct ktls_gts *g);

/* The record API over the kernel, with GnuTLS's return conventions. */
ssize_t ktls_gts_send(struct ktls_gts *g, const void *data, size_t size);
ssize_t ktls_gts_recv(struct ktls_gts *g, void *data, size_t size);
ssize_t ktls_gts_send_file(struct ktls_gts *g, int fd, off_t *offset,
			   size_t count);
int ktls_gts_bye(struct ktls_gts *g, gnutls_close_request_t how);
int ktls_gts_alert_send(struct ktls_gts *g, int level, int desc);
int ktls_gts_last_alert(struct ktls_gts *g); /* -1: none of ours */
int ktls_gts_direction(struct ktls_gts *g);
/* gnutls_session_key_update on a moved session: 1 when GnuTLS should do
 * it (TX is GnuTLS's), else its result over the kernel. */
int ktls_gts_key_update(struct ktls_gts *g, unsigned flags);
/* The program's keylog function, kept behind ours: 1 when the session
 * has ours (then f was stored / given), 0 when GnuTLS's calls apply. */
int ktls_gts_set_keylog(gnutls_session_t s, gnutls_keylog_func f);
int ktls_gts_get_keylog(gnutls_session_t s, gnutls_keylog_func *f);
/* The program's handshake hook, kept behind the shim's (hello.c): 1 when
 * stored, 0 when GnuTLS's own call applies. */
int ktls_gts_set_hook(gnutls_session_t s, unsigned htype, int when,
		      gnutls_handshake_hook_func f);
/* A second handshake, or what cannot be done over the kernel: refused
 * with a clear error. */
int ktls_gts_refuse(struct ktls_gts *g, const char *what);

#endif
