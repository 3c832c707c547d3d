/*
 * The interposed GnuTLS calls. A session the shim did not move costs one
 * relaxed load (no session moved in this process) or one table lookup
 * before GnuTLS's own function; the moved ones run over the kernel
 * (gnutls_engine.c). Without a libgnutls behind us (a program that merely
 * looked a name up) each call fails as GnuTLS would for a bad request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "core/shim.h"
#include "gnutls/bind.h"
#include "gnutls/session.h"

#define REAL_OR(f, fail)                                                      \
	do {                                                                  \
		ktls_gt_bind();                                               \
		if (!ktls_gt.f)                                               \
			return fail;                                          \
	} while (0)

int gnutls_init(gnutls_session_t *session, unsigned int flags)
{
	REAL_OR(init, GNUTLS_E_INTERNAL_ERROR);
	int rc = ktls_gt.init(session, flags);
	if (rc == 0 && ktls_shim_active())
		ktls_gts_on_init(*session, flags);
	return rc;
}

void gnutls_deinit(gnutls_session_t session)
{
	ktls_gt_bind();
	ktls_gts_on_deinit(session);
	if (ktls_gt.deinit)
		ktls_gt.deinit(session);
}

int gnutls_handshake(gnutls_session_t session)
{
	REAL_OR(handshake, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g) /* TLS 1.2 renegotiation: new keys the kernel cannot get */
		return ktls_gts_refuse(g, "a new handshake");
	struct ktls_gts *w = ktls_gts_watch_begin(session);
	int rc = ktls_gt.handshake(session);
	if (w)
		ktls_gts_watch_end(w);
	if (rc == 0)
		ktls_gts_after_handshake(session);
	return rc;
}

ssize_t gnutls_record_send(gnutls_session_t session, const void *data,
			   size_t size)
{
	REAL_OR(record_send, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g && ktls_gts_tx(g))
		return ktls_gts_send(g, data, size);
	return ktls_gt.record_send(session, data, size);
}

ssize_t gnutls_record_send2(gnutls_session_t session, const void *data,
			    size_t size, size_t pad, unsigned flags)
{
	REAL_OR(record_send2, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	/* The kernel adds no padding: the length stays visible, as with
	 * GnuTLS's own kTLS (3.7.9-3.8.9 drop pad there too). Asked per
	 * call, it cannot keep TX in userspace: it comes after the move. */
	if (g && ktls_gts_tx(g)) {
		if (pad)
			ktls_gts_note_padding(g);
		return ktls_gts_send(g, data, size);
	}
	return ktls_gt.record_send2(session, data, size, pad, flags);
}

ssize_t gnutls_record_send_file(gnutls_session_t session, int fd,
				off_t *offset, size_t count)
{
	REAL_OR(record_send_file, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g && ktls_gts_tx(g))
		return ktls_gts_send_file(g, fd, offset, count);
	return ktls_gt.record_send_file(session, fd, offset, count);
}

ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t size)
{
	REAL_OR(record_recv, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g && ktls_gts_rx(g))
		return ktls_gts_recv(g, data, size);
	return ktls_gt.record_recv(session, data, size);
}

ssize_t gnutls_record_recv_seq(gnutls_session_t session, void *data,
			       size_t size, unsigned char *seq)
{
	REAL_OR(record_recv_seq, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g && ktls_gts_rx(g)) {
		/* The kernel may hand several records up in one read: no
		 * single sequence number describes the bytes. */
		if (seq)
			memset(seq, 0, 8);
		return ktls_gts_recv(g, data, size);
	}
	return ktls_gt.record_recv_seq(session, data, size, seq);
}

ssize_t gnutls_record_recv_packet(gnutls_session_t session,
				  gnutls_packet_t *packet)
{
	REAL_OR(record_recv_packet, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g && ktls_gts_rx(g))
		/* A gnutls_packet_t is GnuTLS's own buffer: none to give. */
		return ktls_gts_refuse(g, "gnutls_record_recv_packet");
	return ktls_gt.record_recv_packet(session, packet);
}

size_t gnutls_record_check_pending(gnutls_session_t session)
{
	REAL_OR(record_check_pending, 0);
	struct ktls_gts *g = ktls_gts_moved(session);
	/* The kernel holds what is left, and poll() sees it. */
	if (g && ktls_gts_rx(g))
		return 0;
	return ktls_gt.record_check_pending(session);
}

int gnutls_record_get_direction(gnutls_session_t session)
{
	REAL_OR(record_get_direction, 0);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g)
		return ktls_gts_direction(g);
	return ktls_gt.record_get_direction(session);
}

int gnutls_bye(gnutls_session_t session, gnutls_close_request_t how)
{
	REAL_OR(bye, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g)
		return ktls_gts_bye(g, how);
	return ktls_gt.bye(session, how);
}

int gnutls_alert_send(gnutls_session_t session, gnutls_alert_level_t level,
		      gnutls_alert_description_t desc)
{
	REAL_OR(alert_send, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g) {
		int rc = ktls_gts_alert_send(g, (int)level, (int)desc);
		if (rc <= 0)
			return rc;
	}
	return ktls_gt.alert_send(session, level, desc);
}

gnutls_alert_description_t gnutls_alert_get(gnutls_session_t session)
{
	REAL_OR(alert_get, GNUTLS_A_CLOSE_NOTIFY);
	struct ktls_gts *g = ktls_gts_moved(session);
	int a = g ? ktls_gts_last_alert(g) : -1;
	if (a >= 0)
		return (gnutls_alert_description_t)a;
	return ktls_gt.alert_get(session);
}

int gnutls_session_key_update(gnutls_session_t session, unsigned flags)
{
	REAL_OR(session_key_update, GNUTLS_E_INTERNAL_ERROR);
	struct ktls_gts *g = ktls_gts_moved(session);
	if (g) {
		int rc = ktls_gts_key_update(g, flags);
		if (rc <= 0)
			return rc;
	}
	return ktls_gt.session_key_update(session, flags);
}

void gnutls_session_set_keylog_function(gnutls_session_t session,
					gnutls_keylog_func func)
{
	ktls_gt_bind();
	if (ktls_gts_set_keylog(session, func))
		return;
	if (ktls_gt.session_set_keylog_function)
		ktls_gt.session_set_keylog_function(session, func);
}

gnutls_keylog_func gnutls_session_get_keylog_function(
	const gnutls_session_t session)
{
	gnutls_keylog_func f = NULL;
	ktls_gt_bind();
	if (ktls_gts_get_keylog(session, &f))
		return f;
	return ktls_gt.session_get_keylog_function
		       ? ktls_gt.session_get_keylog_function(session)
		       : NULL;
}

void gnutls_transport_set_push_function(gnutls_session_t session,
					gnutls_push_func push_func)
{
	ktls_gt_bind();
	ktls_gts_set_push(session, push_func);
	if (ktls_gt.transport_set_push_function)
		ktls_gt.transport_set_push_function(session, push_func);
}

void gnutls_transport_set_vec_push_function(gnutls_session_t session,
					    gnutls_vec_push_func vec_func)
{
	ktls_gt_bind();
	ktls_gts_set_vec_push(session, vec_func);
	if (ktls_gt.transport_set_vec_push_function)
		ktls_gt.transport_set_vec_push_function(session, vec_func);
}

void gnutls_transport_set_pull_function(gnutls_session_t session,
					gnutls_pull_func pull_func)
{
	ktls_gt_bind();
	ktls_gts_set_pull(session, pull_func);
	if (ktls_gt.transport_set_pull_function)
		ktls_gt.transport_set_pull_function(session, pull_func);
}

void gnutls_handshake_set_hook_function(gnutls_session_t session,
					unsigned int htype, int when,
					gnutls_handshake_hook_func func)
{
	ktls_gt_bind();
	if (ktls_gts_set_hook(session, htype, when, func))
		return;
	if (ktls_gt.handshake_set_hook_function)
		ktls_gt.handshake_set_hook_function(session, htype, when, func);
}
