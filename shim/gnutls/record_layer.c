/*
 * GnuTLS's record API served over a socket whose records are in the kernel,
 * with GnuTLS's semantics: its return codes, GNUTLS_E_AGAIN and the retry
 * with (NULL, 0), alerts and close_notify, post-handshake messages (the
 * TLS 1.3 steps themselves are session/keyupdate.c's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/real.h"
#include "core/stats.h"
#include "gnutls/bind.h"
#include "gnutls/record.h"
#include "gnutls/secrets.h"
#include "gnutls/state.h"
#include "kernel/probe.h"
#include "kernel/record_io.h"
#include "session/fd.h"
#include "session/keyupdate.h"
#include "tls/handshake.h"
#include "tls/record.h"

static int fail(struct ktls_gts *g, int code)
{
	int expected = 0;
	atomic_compare_exchange_strong(&g->fail_code, &expected, code);
	atomic_fetch_or(&g->st, GTS_FAILED);
	return atomic_load(&g->fail_code);
}

static void count(struct ktls_gts *g, enum ktls_io io, size_t n)
{
	struct ktls_fd *e = ktls_fd_tracked(g->fd);
	if (e)
		ktls_fd_count(e, io, n);
}

static int send_flags(const struct ktls_gts *g)
{
	return ((g->init_flags & GNUTLS_NO_SIGNAL) ? MSG_NOSIGNAL : 0) |
	       g->io_flags;
}

static struct ktls_ku_ctx ku_ctx(struct ktls_gts *g)
{
	struct ktls_ku_ctx c = { .fd = g->fd, .kc = g->kc, .sec = &g->sec,
				 .kdf = ktls_gt_kdf_ops() };
	return c;
}

/* Our TLS 1.3 KeyUpdate through the kernel, then the kernel's next TX
 * key. 0; GNUTLS_E_AGAIN/INTERRUPTED when nothing went out (retry);
 * otherwise the connection failed. */
static int send_key_update(struct ktls_gts *g, int request)
{
	struct ktls_ku_ctx c = ku_ctx(g);
	switch (ktls_ku_send(&c, send_flags(g), request)) {
	case KTLS_KU_SENT:
		atomic_fetch_and(&g->st, ~(unsigned)GTS_KU_OWED);
		return 0;
	case KTLS_KU_NOT_SENT: {
		int err = errno, rc = ktls_gt_err_from_errno(err, 1);
		if (rc == GNUTLS_E_AGAIN)
			atomic_store(&g->last_dir, 1);
		errno = err;
		return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED
			       ? rc
			       : fail(g, rc);
	}
	default:
		return fail(g, GNUTLS_E_INTERNAL_ERROR);
	}
}

/* Before data: the KeyUpdate the peer asked for, or the one the TX key's
 * byte budget calls for. 0: go on with the data. */
static int key_update_first(struct ktls_gts *g)
{
	struct ktls_fd *e;
	if (atomic_load_explicit(&g->st, memory_order_relaxed) & GTS_KU_OWED)
		return send_key_update(g, 0);
	if (g->sec.tx_len && (e = ktls_fd_tracked(g->fd)) &&
	    (atomic_load_explicit(&e->flags, memory_order_relaxed) &
	     KTLS_FD_REKEY_DUE)) {
		int rc = send_key_update(g, 0);
		/* The budget stays far below the limit: next time. */
		return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ? 0
									  : rc;
	}
	return 0;
}

int ktls_gts_key_update(struct ktls_gts *g, unsigned flags)
{
	unsigned st = atomic_load(&g->st);
	if (!(st & GTS_TX))
		return 1; /* GnuTLS sends it; an answer comes through our RX */
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_BYE)
		return GNUTLS_E_INVALID_SESSION;
	if (g->version != KTLS_TLS13)
		return GNUTLS_E_INVALID_REQUEST; /* as GnuTLS answers */
	struct ktls_ku_ctx c = ku_ctx(g);
	if (!ktls_ku_can_rekey(&c, 0)) {
		ktls_err("fd=%d: refusing gnutls_session_key_update: the kernel "
			 "holds this session's TX key and %s",
			 g->fd,
			 ktls_kernel_can_rekey()
				 ? "the traffic secret of the next one is not "
				   "known"
				 : "cannot take the next one (6.14+ can)");
		return GNUTLS_E_UNIMPLEMENTED_FEATURE;
	}
	return send_key_update(g, (flags & GNUTLS_KU_PEER) != 0);
}

ssize_t ktls_gts_send(struct ktls_gts *g, const void *data, size_t size)
{
	unsigned st = atomic_load(&g->st);
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_BYE)
		return GNUTLS_E_INVALID_SESSION;
	if (!data && !size) { /* the retry after AGAIN/INTERRUPTED */
		if (!g->pend_len)
			return 0;
		data = g->pend;
		size = g->pend_len;
	}
	int err, rc = key_update_first(g);
	if (rc == 0) {
		ssize_t n = ktls_data_send(g->fd, data, size, send_flags(g));
		if (n >= 0) {
			g->pend_len = 0;
			count(g, KTLS_IO_WRITE, (size_t)n);
			return n;
		}
		rc = ktls_gt_err_from_errno(errno, 1);
	}
	err = errno;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		atomic_store(&g->last_dir, 1);
		if (data != g->pend) {
			if (!g->pend)
				g->pend = malloc(PEND_MAX);
			g->pend_len = 0;
			if (g->pend) {
				g->pend_len = size < PEND_MAX ? size : PEND_MAX;
				memcpy(g->pend, data, g->pend_len);
			}
		}
	}
	errno = err;
	return rc;
}

ssize_t ktls_gts_send_file(struct ktls_gts *g, int fd, off_t *offset,
			   size_t count_)
{
	unsigned st = atomic_load(&g->st);
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_BYE)
		return GNUTLS_E_INVALID_SESSION;
	int rc = key_update_first(g);
	if (rc != 0)
		return rc;
	ktls_real_ensure();
	/* Zero copy: the kernel encrypts the file's pages on the way out. */
	ssize_t n = KTLS_REAL(sendfile)(g->fd, fd, offset, count_);
	if (n >= 0) {
		count(g, KTLS_IO_WRITE, (size_t)n);
		atomic_fetch_add(&ktls_stats.sendfile_kernel,
				 (unsigned long long)n);
		return n;
	}
	rc = ktls_gt_err_from_errno(errno, 1);
	if (rc == GNUTLS_E_AGAIN)
		atomic_store(&g->last_dir, 1);
	return rc;
}

/* One recvmsg: the record type comes in a cmsg (data when absent). */
static ssize_t krecv(struct ktls_gts *g, void *buf, size_t len, int *type)
{
	return ktls_record_recv(g->fd, buf, len, type, g->io_flags);
}

static int recv_error(struct ktls_gts *g, int err)
{
	int rc = ktls_gt_err_from_errno(err, 0);
	if (rc == GNUTLS_E_AGAIN) {
		atomic_store(&g->last_dir, 0);
	} else if (rc != GNUTLS_E_INTERRUPTED) {
		if (err == EKEYEXPIRED)
			ktls_err("fd=%d: the kernel paused RX for a TLS 1.3 "
				 "KeyUpdate it cannot follow; failing this "
				 "connection",
				 g->fd);
		rc = fail(g, rc);
	}
	errno = err;
	return rc;
}

/* EOF from TCP: a truncation attack unless close_notify came first. */
static int eof(struct ktls_gts *g)
{
	return (atomic_load(&g->st) & GTS_EOF) ? 0
					       : GNUTLS_E_PREMATURE_TERMINATION;
}

/* The rest of the control record being collected. */
static int ctrl_more(struct ktls_gts *g)
{
	int type;
	ssize_t n = krecv(g, g->ctrl + g->ctrl_len, CTRL_MAX - g->ctrl_len,
			  &type);
	if (n < 0)
		return recv_error(g, errno);
	if (n == 0)
		return fail(g, eof(g));
	if (type != g->ctrl_type)
		return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
	g->ctrl_rec = g->ctrl_len;
	g->ctrl_len += (size_t)n;
	return CONTINUE;
}

static void consume(struct ktls_gts *g, size_t n)
{
	memmove(g->ctrl, g->ctrl + n, g->ctrl_len - n);
	g->ctrl_len -= n;
	/* Emptied: the next read is a new record. Otherwise ctrl[0] begins
	 * one only where the last record read began; an earlier record's
	 * start is not tracked, which can only make a KeyUpdate look
	 * misplaced (a failed connection, never a wrong key). */
	g->ctrl_head = !g->ctrl_len || g->ctrl_rec == n;
	g->ctrl_rec = g->ctrl_rec >= n ? g->ctrl_rec - n : SIZE_MAX;
}

/* GnuTLS answers a TLS 1.3 post-handshake message it handled with
 * GNUTLS_E_AGAIN, blocking socket or not, and programs rely on it: gnutls-cli
 * goes back to select(), and reading on here would block it while its
 * stdin waits. */
static int async_done(struct ktls_gts *g)
{
	g->async = 1;
	atomic_store(&g->last_dir, 0);
	return GNUTLS_E_AGAIN;
}

/* A TLS 1.3 KeyUpdate read by the kernel, which stopped reading until it
 * has the next key (6.14+; older kernels read on under the old one and
 * fail the next record). */
static int key_update_received(struct ktls_gts *g, const uint8_t *msg,
			       size_t len, int at_start)
{
	int req = ktls_hs_key_update_request(msg, len);
	if (req < 0) {
		ktls_err("fd=%d: malformed TLS 1.3 KeyUpdate from the peer; "
			 "failing this connection",
			 g->fd);
		return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
	}
	struct ktls_ku_ctx c = ku_ctx(g);
	if (ktls_ku_follow_peer(&c, at_start))
		return fail(g, GNUTLS_E_UNIMPLEMENTED_FEATURE);
	/* RFC 8446 4.6.3: ours goes out before our next data, as GnuTLS
	 * itself does it (from the next send). With TX left in GnuTLS, the
	 * request never reached GnuTLS and stays unanswered: the peer's
	 * keys are unaffected either way. */
	if (req && (atomic_load(&g->st) & GTS_TX) && ktls_ku_can_rekey(&c, 0))
		atomic_fetch_or(&g->st, GTS_KU_OWED);
	return async_done(g);
}

static int handshake_msg(struct ktls_gts *g, const uint8_t *msg, size_t len,
			 int at_start)
{
	static atomic_int said_ticket;
	int server = (atomic_load(&g->st) & GTS_SERVER) != 0;
	switch (ktls_msg_kind(g->version, server, msg[0])) {
	case KTLS_MSG_DROP:
		if (!atomic_exchange(&said_ticket, 1))
			ktls_dbg("fd=%d: TLS 1.3 NewSessionTicket read by the "
				 "kernel is dropped: this session cannot be "
				 "resumed",
				 g->fd);
		return async_done(g);
	case KTLS_MSG_KEY_UPDATE:
		return key_update_received(g, msg, len, at_start);
	case KTLS_MSG_REHANDSHAKE:
		return GNUTLS_E_REHANDSHAKE;
	default:
		return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
	}
}

static int ctrl_process(struct ktls_gts *g)
{
	for (;;) {
		if (g->ctrl_type == KTLS_CT_ALERT) {
			if (g->ctrl_len < 2) {
				int r = ctrl_more(g);
				if (r != CONTINUE)
					return r;
				continue;
			}
			uint8_t level = g->ctrl[0], desc = g->ctrl[1];
			g->ctrl_len = 0; /* one alert per record */
			atomic_store(&g->last_alert, desc);
			int rc = ktls_gt_alert_result(g->version, level, desc);
			if (rc == 0)
				atomic_fetch_or(&g->st, GTS_EOF);
			else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
				fail(g, rc);
			return rc;
		}
		if (g->ctrl_type != KTLS_CT_HANDSHAKE) {
			g->ctrl_len = 0;
			return fail(g, GNUTLS_E_UNEXPECTED_PACKET);
		}
		if (!g->ctrl_len)
			return CONTINUE;
		size_t need = ktls_hs_msg_len(g->ctrl, g->ctrl_len);
		if (need > CTRL_MAX) {
			g->ctrl_len = 0;
			return fail(g, GNUTLS_E_RECORD_OVERFLOW);
		}
		if (!need || need > g->ctrl_len) {
			int r = ctrl_more(g);
			if (r != CONTINUE)
				return r;
			continue;
		}
		/* Copied out: consume() moves the buffer under it. */
		uint8_t msg[KTLS_KEY_UPDATE_LEN] = { 0 };
		memcpy(msg, g->ctrl, need < sizeof(msg) ? need : sizeof(msg));
		int head = g->ctrl_head;
		consume(g, need);
		int r = handshake_msg(g, msg, need, head);
		if (r != CONTINUE)
			return r;
	}
}

ssize_t ktls_gts_recv(struct ktls_gts *g, void *data, size_t size)
{
	unsigned st = atomic_load(&g->st);
	if (st & GTS_FAILED)
		return atomic_load(&g->fail_code);
	if (st & GTS_EOF)
		return 0;
	if (!size)
		return 0;
	g->async = 0;
	for (;;) {
		int r;
		if (g->ctrl_len) {
			r = ctrl_process(g);
		} else {
			int type;
			ssize_t n = krecv(g, data, size, &type);
			if (n < 0)
				return recv_error(g, errno);
			if (n == 0)
				return eof(g);
			if (type == KTLS_CT_APPLICATION_DATA) {
				count(g, KTLS_IO_READ, (size_t)n);
				return n;
			}
			/* A control record landed in the caller's buffer
			 * (maybe only its start): collect it in ours. */
			if (!g->ctrl && !(g->ctrl = malloc(CTRL_MAX)))
				return fail(g, GNUTLS_E_MEMORY_ERROR);
			if ((size_t)n > CTRL_MAX)
				return fail(g, GNUTLS_E_RECORD_OVERFLOW);
			memcpy(g->ctrl, data, (size_t)n);
			g->ctrl_len = (size_t)n;
			g->ctrl_rec = 0;
			g->ctrl_head = 1;
			g->ctrl_type = (uint8_t)type;
			r = ctrl_process(g);
		}
		if (r != CONTINUE)
			return r;
	}
}

static int send_alert(struct ktls_gts *g, uint8_t level, uint8_t desc)
{
	ssize_t n = ktls_alert_send(g->fd, level, desc, send_flags(g));
	if (n == 2)
		return 0;
	if (n >= 0) /* a 2-byte record is never split; be safe anyway */
		return fail(g, GNUTLS_E_PUSH_ERROR);
	int rc = ktls_gt_err_from_errno(errno, 1);
	if (rc == GNUTLS_E_AGAIN)
		atomic_store(&g->last_dir, 1);
	return rc;
}

int ktls_gts_alert_send(struct ktls_gts *g, int level, int desc)
{
	if (!(atomic_load(&g->st) & GTS_TX))
		return 1; /* caller: GnuTLS sends it */
	if (atomic_load(&g->st) & (GTS_FAILED | GTS_BYE))
		return GNUTLS_E_INVALID_SESSION;
	return send_alert(g, (uint8_t)level, (uint8_t)desc);
}

int ktls_gts_bye(struct ktls_gts *g, gnutls_close_request_t how)
{
	unsigned st = atomic_load(&g->st);
	int rc;
	if (!(st & GTS_BYE)) {
		if (st & GTS_FAILED)
			return atomic_load(&g->fail_code);
		rc = (st & GTS_TX) ? send_alert(g, GNUTLS_AL_WARNING,
						GNUTLS_A_CLOSE_NOTIFY)
				   : ktls_gt.bye(g->s, GNUTLS_SHUT_WR);
		if (rc < 0)
			return rc;
		atomic_fetch_or(&g->st, GTS_BYE);
	}
	if (how != GNUTLS_SHUT_RDWR)
		return 0;
	/* Wait for the peer's close_notify; whatever data comes first is
	 * dropped, as GnuTLS does. */
	char scratch[4096];
	for (;;) {
		ssize_t n = (st & GTS_RX)
				    ? ktls_gts_recv(g, scratch, sizeof(scratch))
				    : ktls_gt.record_recv(g->s, scratch,
							  sizeof(scratch));
		/* A ticket or KeyUpdate on the way is no reason to stop. */
		if (n == GNUTLS_E_AGAIN && (st & GTS_RX) && g->async)
			continue;
		if (n <= 0) {
			explicit_bzero(scratch, sizeof(scratch));
			return (int)n;
		}
	}
}

int ktls_gts_last_alert(struct ktls_gts *g)
{
	return atomic_load(&g->last_alert);
}

int ktls_gts_direction(struct ktls_gts *g)
{
	return atomic_load(&g->last_dir);
}

int ktls_gts_refuse(struct ktls_gts *g, const char *what)
{
	ktls_err("fd=%d: refusing %s: this GnuTLS session's records are in "
		 "the kernel, and GnuTLS cannot give it new keys",
		 g->fd, what);
	return GNUTLS_E_UNIMPLEMENTED_FEATURE;
}
