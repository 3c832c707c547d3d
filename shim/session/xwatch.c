#define _GNU_SOURCE
#include "session/xwatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kernel/tcp_count.h"

const struct ktls_xw_ops ktls_xw_ops_sys = {
	.is_tcp = ktls_fd_is_tcp,
	.tcp_bytes_read = ktls_tcp_bytes_read,
};

static _Thread_local struct ktls_xwatch *cur;

void ktls_xw_init(struct ktls_xwatch *w, const struct ktls_xw_ops *ops)
{
	memset(w, 0, sizeof(*w));
	w->ops = ops ? ops : &ktls_xw_ops_sys;
	w->verdict = KTLS_R_MOVED;
	w->fd = w->other_fd = w->pending_fd = -1;
}

void ktls_xw_release(struct ktls_xwatch *w)
{
	free(w->copy);
	w->copy = NULL;
}

struct ktls_xwatch *ktls_xw_current(void)
{
	return cur;
}

struct ktls_xwatch *ktls_xw_set_current(struct ktls_xwatch *w)
{
	struct ktls_xwatch *old = cur;
	cur = w;
	return old;
}

/* The first thing that fails names the reason. */
static void fail(struct ktls_xwatch *w, enum ktls_reason r)
{
	if (w->verdict == KTLS_R_MOVED)
		w->verdict = r;
}

static void call_begin(struct ktls_xwatch *w, int rx)
{
	w->in_call = 1;
	w->rx = rx;
	w->done = 0;
	w->other_fd = -1;
	w->other_tcp = 0;
}

void ktls_xw_call_begin_tx(struct ktls_xwatch *w, const struct iovec *iov,
			   int n)
{
	call_begin(w, 0);
	w->exp = iov;
	w->exp_n = n;
	w->exp_len = 0;
	for (int i = 0; i < n; i++)
		w->exp_len += iov[i].iov_len;
}

void ktls_xw_call_begin_rx(struct ktls_xwatch *w, size_t cap)
{
	call_begin(w, 1);
	w->exp = NULL;
	w->exp_n = 0;
	w->exp_len = cap < KTLS_XW_RX_MAX ? cap : KTLS_XW_RX_MAX;
	if (!w->copy && !(w->copy = malloc(KTLS_XW_RX_MAX)))
		fail(w, KTLS_R_NO_MEMORY);
}

/* Whether len bytes of iov (from its start) equal the bytes handed down
 * at offset off. */
static int matches(const struct ktls_xwatch *w, size_t off,
		   const struct iovec *iov, int n, size_t len)
{
	int ei = 0, gi = 0;
	size_t eo = off, go = 0;
	while (ei < w->exp_n && eo >= w->exp[ei].iov_len)
		eo -= w->exp[ei++].iov_len;
	while (len) {
		while (gi < n && go >= iov[gi].iov_len)
			gi++, go = 0;
		while (ei < w->exp_n && eo >= w->exp[ei].iov_len)
			ei++, eo = 0;
		if (gi >= n || ei >= w->exp_n)
			return 0;
		size_t k = iov[gi].iov_len - go;
		if (w->exp[ei].iov_len - eo < k)
			k = w->exp[ei].iov_len - eo;
		if (len < k)
			k = len;
		if (memcmp((const uint8_t *)iov[gi].iov_base + go,
			   (const uint8_t *)w->exp[ei].iov_base + eo, k))
			return 0;
		go += k, eo += k, len -= k;
	}
	return 1;
}

/* fd carried the session's bytes: it must be the one TCP socket. TCP's
 * count of bytes read is taken when it is first seen: before the read
 * (ktls_xw_before_read), or now on a send (nothing read in this call). */
static int claim(struct ktls_xwatch *w, int fd)
{
	if (w->fd == fd)
		return w->verdict == KTLS_R_MOVED;
	if (w->fd >= 0) {
		fail(w, KTLS_R_XPORT_TWO_FDS);
		return 0;
	}
	w->fd = fd;
	if (!w->ops->is_tcp(fd)) {
		fail(w, KTLS_R_XPORT_NOT_TCP);
		return 0;
	}
	if (w->pending_fd == fd)
		w->tcp_base = w->pending_base;
	else if (w->rx || w->ops->tcp_bytes_read(fd, &w->tcp_base) != 0)
		fail(w, KTLS_R_XPORT_UNSEEN);
	return w->verdict == KTLS_R_MOVED;
}

void ktls_xw_before_read(struct ktls_xwatch *w, int fd)
{
	if (!w->in_call || !w->rx || w->fd >= 0 || w->pending_fd == fd ||
	    !w->ops->is_tcp(fd))
		return;
	if (w->ops->tcp_bytes_read(fd, &w->pending_base) == 0)
		w->pending_fd = fd;
}

void ktls_xw_sent(struct ktls_xwatch *w, int fd, const struct iovec *iov,
		  int n, ssize_t r, int flags)
{
	if (!w->in_call || r <= 0)
		return;
	if (w->rx) { /* a pull that writes to the socket adds bytes */
		if (fd == w->fd)
			fail(w, KTLS_R_XPORT_CHANGES);
		return;
	}
	size_t len = (size_t)r;
	int tls = w->done + len <= w->exp_len && matches(w, w->done, iov, n, len);
	/* Other bytes to another fd are the program's own (a log line). */
	if (fd != w->fd && !tls)
		return;
	if (!claim(w, fd))
		return;
	if (!tls) {
		fail(w, KTLS_R_XPORT_CHANGES);
		return;
	}
	if (flags & MSG_DONTWAIT)
		w->dontwait = 1;
	/* send() with MSG_NOSIGNAL (curl, libpq): a record layer that
	 * takes over must not raise SIGPIPE where the program's would not. */
	if (flags & MSG_NOSIGNAL)
		w->nosignal = 1;
	w->done += len;
}

static void copy_in(struct ktls_xwatch *w, const struct iovec *iov, int n,
		    size_t len)
{
	for (int i = 0; i < n && len; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(w->copy + w->done, iov[i].iov_base, k);
		w->done += k;
		len -= k;
	}
}

void ktls_xw_received(struct ktls_xwatch *w, int fd, const struct iovec *iov,
		      int n, ssize_t r, int flags)
{
	if (!w->in_call || r <= 0)
		return;
	if (!w->rx) { /* a push that reads the socket takes bytes away */
		if (fd == w->fd)
			fail(w, KTLS_R_XPORT_READS_AHEAD);
		return;
	}
	if (fd != w->fd && (w->fd >= 0 || !w->ops->is_tcp(fd))) {
		/* Judged at the call's end: only if the library got bytes
		 * the socket did not give does this fd matter. */
		if (w->other_fd < 0) {
			w->other_fd = fd;
			w->other_tcp = w->ops->is_tcp(fd);
		}
		return;
	}
	if (!claim(w, fd))
		return;
	if (flags & MSG_DONTWAIT)
		w->dontwait = 1;
	if (!w->copy || w->done + (size_t)r > w->exp_len) {
		fail(w, KTLS_R_XPORT_READS_AHEAD);
		return;
	}
	copy_in(w, iov, n, (size_t)r);
}

/* The library got more than the socket gave in this call. */
static enum ktls_reason rx_short(const struct ktls_xwatch *w)
{
	if (w->other_fd >= 0)
		return w->other_tcp ? KTLS_R_XPORT_TWO_FDS
				    : KTLS_R_XPORT_NOT_TCP;
	/* Bytes with no read seen: through a call the shim does not
	 * interpose (recv, readv), or read ahead before the handshake. */
	return w->done ? KTLS_R_XPORT_READS_AHEAD : KTLS_R_XPORT_UNSEEN;
}

static void end_rx(struct ktls_xwatch *w, ssize_t ret, const void *rxbuf)
{
	size_t got = ret > 0 ? (size_t)ret : 0;
	if (w->done > got)
		fail(w, KTLS_R_XPORT_READS_AHEAD);
	else if (w->done < got)
		fail(w, rx_short(w));
	else if (got && memcmp(w->copy, rxbuf, got) != 0)
		fail(w, KTLS_R_XPORT_CHANGES);
	w->rx_total += w->done;
}

static void end_tx(struct ktls_xwatch *w, ssize_t ret)
{
	size_t took = ret > 0 ? (size_t)ret : 0;
	/* Fewer bytes out than the transport took: the rest waits in it
	 * (or went through a call not seen: the verdict tells them apart).
	 * More: the library will send again what already went out. */
	if (w->done < took)
		fail(w, KTLS_R_XPORT_QUEUES);
	else if (w->done > took)
		fail(w, KTLS_R_XPORT_CHANGES);
	w->tx_total += w->done;
}

void ktls_xw_call_end(struct ktls_xwatch *w, ssize_t ret, const void *rxbuf)
{
	if (!w->in_call)
		return;
	if (w->rx)
		end_rx(w, ret, rxbuf);
	else
		end_tx(w, ret);
	w->in_call = 0;
	w->exp = NULL;
	w->pending_fd = -1;
}

enum ktls_reason ktls_xw_verdict(struct ktls_xwatch *w, int *fd)
{
	*fd = w->fd;
	/* No socket ever carried the session: every byte went through calls
	 * the shim does not see (send/recv today), whatever else failed. */
	if (w->fd < 0)
		return KTLS_R_XPORT_UNSEEN;
	if (w->verdict != KTLS_R_MOVED)
		return w->verdict;
	if (!w->tx_total || !w->rx_total)
		return KTLS_R_XPORT_UNSEEN;
	uint64_t now;
	if (w->ops->tcp_bytes_read(w->fd, &now) != 0)
		return KTLS_R_XPORT_UNSEEN;
	if (now - w->tcp_base != w->rx_total)
		return KTLS_R_XPORT_OTHER_READER;
	return KTLS_R_MOVED;
}

static pthread_mutex_t sw_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*sw_fn)(int on);
static unsigned sw_holders;

void ktls_xw_register_switch(void (*sw)(int on))
{
	pthread_mutex_lock(&sw_mu);
	sw_fn = sw;
	pthread_mutex_unlock(&sw_mu);
}

void ktls_xw_hooks_hold(void)
{
	pthread_mutex_lock(&sw_mu);
	if (sw_holders++ == 0 && sw_fn)
		sw_fn(1);
	pthread_mutex_unlock(&sw_mu);
}

void ktls_xw_hooks_release(void)
{
	pthread_mutex_lock(&sw_mu);
	if (sw_holders && --sw_holders == 0 && sw_fn)
		sw_fn(0);
	pthread_mutex_unlock(&sw_mu);
}
