/*
 * The read side of the shim's record layer (record_layer.c): one kernel
 * record at a time into SSL_read/SSL_peek, alerts and post-handshake
 * messages handled as OpenSSL would, the TLS 1.3 KeyUpdate through
 * session/keyupdate.c.
 */
#define _GNU_SOURCE
#include "openssl/record_layer.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/fdtab.h"
#include "core/log.h"
#include "core/real.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/engine_state.h"
#include "openssl/record_layer_state.h"
#include "openssl/session.h"
#include "session/keyupdate.h"
#include "tls/handshake.h"
#include "tls/record.h"

static int key_update_received(struct ktls_orl *o, const uint8_t *m,
			       size_t len, int at_start)
{
	int request = ktls_hs_key_update_request(m, len);
	if (request < 0)
		return ktls_orl_fatal(o, KTLS_AD_DECODE_ERROR, SSL_R_BAD_KEY_UPDATE);
	struct ktls_ku_ctx c = ktls_orl_ku_ctx(o);
	if (ktls_ku_follow_peer(&c, at_start))
		return ktls_orl_fatal(o, -1, SSL_R_BAD_KEY_UPDATE);
	/* RFC 8446 4.6.3: ours before our next data. Sent now where it can
	 * be (as OpenSSL does from SSL_read), else with the next write. */
	if (request && o->ku_owed == 0) {
		if (!ktls_ku_can_rekey(&c, 0)) {
			ktls_err("fd=%d: the peer asked for a TLS 1.3 KeyUpdate "
				 "and the kernel cannot take our next TX key; "
				 "failing this connection",
				 o->fd);
			return ktls_orl_fatal(o, -1, SSL_R_BAD_KEY_UPDATE);
		}
		o->ku_owed = 1;
		int saved = errno;
		if (ktls_orl_flush_key_update(o) != 0 && o->failed)
			return -1;
		errno = saved;
	}
	return CONTINUE;
}

static int handshake_msg(struct ktls_orl *o, const uint8_t *m, size_t len,
			 int at_start)
{
	static atomic_int said_ticket;
	switch (ktls_msg_kind(o->version, o->server, m[0])) {
	case KTLS_MSG_DROP:
		if (!atomic_exchange(&said_ticket, 1))
			ktls_dbg("fd=%d: TLS 1.3 NewSessionTicket read by the "
				 "kernel is dropped: libssl's record layer, "
				 "which would take it, no longer reads this "
				 "session, so it cannot be resumed",
				 o->fd);
		return CONTINUE;
	case KTLS_MSG_KEY_UPDATE:
		return key_update_received(o, m, len, at_start);
	case KTLS_MSG_REHANDSHAKE:
		/* What OpenSSL answers with SSL_OP_NO_RENEGOTIATION, which a
		 * moved session has. */
		(void)ktls_orl_send_alert(o, KTLS_AL_WARNING, KTLS_AD_NO_RENEGOTIATION);
		return CONTINUE;
	default:
		return ktls_orl_fatal(o, KTLS_AD_UNEXPECTED_MESSAGE,
			     SSL_R_UNEXPECTED_MESSAGE);
	}
}

static int handshake_record(struct ktls_orl *o, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		size_t len = ktls_hs_msg_len(p + off, n - off);
		/* A message split across records: nothing a peer sends after
		 * the handshake needs that. */
		if (!len || len > n - off)
			return ktls_orl_fatal(o, KTLS_AD_UNEXPECTED_MESSAGE,
				     SSL_R_UNEXPECTED_MESSAGE);
		int r = handshake_msg(o, p + off, len, off == 0);
		if (r != CONTINUE)
			return r;
		off += len;
	}
	return CONTINUE;
}

static int control_record(struct ktls_orl *o, SSL *s, int type,
			  const uint8_t *p, size_t n)
{
	if (type == KTLS_CT_HANDSHAKE)
		return handshake_record(o, p, n);
	if (type != KTLS_CT_ALERT)
		return ktls_orl_fatal(o, KTLS_AD_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_MESSAGE);
	if (n != 2)
		return ktls_orl_fatal(o, KTLS_AD_DECODE_ERROR, SSL_R_BAD_LENGTH);
	if (p[1] == KTLS_AD_CLOSE_NOTIFY) {
		ktls_orl_add_shutdown(s, SSL_RECEIVED_SHUTDOWN);
		o->err = SSL_ERROR_ZERO_RETURN;
		return 0;
	}
	/* Warnings are read past, as OpenSSL does; in TLS 1.3 only
	 * user_canceled is one. */
	if (o->version == TLS1_3_VERSION ? p[1] == KTLS_AD_USER_CANCELED
					  : p[0] == KTLS_AL_WARNING)
		return CONTINUE;
	ktls_orl_add_shutdown(s, SSL_RECEIVED_SHUTDOWN);
	return ktls_orl_fatal(o, -1, SSL_AD_REASON_OFFSET + p[1]);
}

static int recv_error(struct ktls_orl *o, int err)
{
	errno = err;
	if (ktls_orl_is_retry(err))
		return ktls_orl_want(o, SSL_ERROR_WANT_READ);
	switch (err) {
	case EBADMSG: /* the record did not authenticate */
		return ktls_orl_fatal(o, KTLS_AD_BAD_RECORD_MAC,
			     SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
	case EMSGSIZE:
		return ktls_orl_fatal(o, KTLS_AD_RECORD_OVERFLOW,
			     SSL_R_ENCRYPTED_LENGTH_TOO_LONG);
	case EKEYEXPIRED: /* paused for a KeyUpdate we did not follow */
		return ktls_orl_fatal(o, -1, SSL_R_BAD_KEY_UPDATE);
	default:
		return ktls_orl_syscall_error(o);
	}
}

static int eof(struct ktls_orl *o, SSL *s)
{
	/* Without close_notify, a truncation: unless the program said it
	 * does not care (SSL_OP_IGNORE_UNEXPECTED_EOF). */
	if (ktls_ossl.SSL_get_options(s) & SSL_OP_IGNORE_UNEXPECTED_EOF) {
		ktls_orl_add_shutdown(s, SSL_RECEIVED_SHUTDOWN);
		o->err = SSL_ERROR_ZERO_RETURN;
		return 0;
	}
	ktls_orl_fatal(o, -1, SSL_R_UNEXPECTED_EOF_WHILE_READING);
	return 0;
}

int ktls_orl_read(struct ktls_orl *o, SSL *s, void *buf, size_t n, int peek)
{
	if (n > INT_MAX)
		n = INT_MAX;
	for (;;) {
		if (o->rlen > o->roff) {
			size_t k = o->rlen - o->roff < n ? o->rlen - o->roff : n;
			memcpy(buf, o->rbuf + o->roff, k);
			if (!peek)
				o->roff += k;
			o->err = SSL_ERROR_NONE;
			return (int)k;
		}
		if (o->failed) {
			ktls_orl_raise_ssl(SSL_R_PROTOCOL_IS_SHUTDOWN);
			return ktls_orl_want(o, SSL_ERROR_SSL);
		}
		if (ktls_ossl.SSL_get_shutdown(s) & SSL_RECEIVED_SHUTDOWN) {
			o->err = SSL_ERROR_ZERO_RETURN;
			return 0;
		}
		if (!n) {
			o->err = SSL_ERROR_NONE;
			return 0;
		}
		/* Straight into the caller's buffer when a whole record fits;
		 * else into ours, the rest kept for the next call (which is
		 * also what SSL_pending() reports, as OpenSSL's would). */
		int direct = !peek && n >= REC_MAX;
		if (!direct && !o->rbuf && !(o->rbuf = malloc(REC_MAX))) {
			ktls_orl_raise_ssl(ERR_R_MALLOC_FAILURE);
			return ktls_orl_want(o, SSL_ERROR_SSL);
		}
		uint8_t *dst = direct ? buf : o->rbuf;
		int type;
		ssize_t r = ktls_record_recv(o->fd, dst, direct ? n : REC_MAX,
					     &type,
					     o->io_flags & MSG_DONTWAIT);
		if (r < 0)
			return recv_error(o, errno);
		if (r == 0)
			return eof(o, s);
		if (type == KTLS_CT_APPLICATION_DATA) {
			ktls_orl_count(o, KTLS_IO_READ, (size_t)r);
			if (direct) {
				o->err = SSL_ERROR_NONE;
				return (int)r;
			}
			o->roff = 0;
			o->rlen = (size_t)r;
			continue;
		}
		/* The kernel returns one whole control record per call into
		 * a buffer that can hold any record. */
		int rc = control_record(o, s, type, dst, (size_t)r);
		if (rc != CONTINUE)
			return rc;
		/* OpenSSL, having handled a post-handshake message (a ticket,
		 * a KeyUpdate), reads on only with SSL_MODE_AUTO_RETRY; else
		 * WANT_READ, blocking socket or not. Programs that clear it
		 * (openssl s_client) go back to select() for their stdin. */
		if (type == KTLS_CT_HANDSHAKE &&
		    !(ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, 0, NULL) &
		      SSL_MODE_AUTO_RETRY))
			return ktls_orl_want(o, SSL_ERROR_WANT_READ);
	}
}

size_t ktls_orl_pending(const struct ktls_orl *o)
{
	return o->rlen - o->roff;
}
