/*
 * The watching variants of the libc hooks: the entry table
 * (hooks_libc.c) points at them only while a program's own TLS transport
 * is being proven somewhere in the process (session/xwatch.h: a handshake
 * under way), and back when the last watch ends. Each is the on_* hook,
 * then what the call carried, to this thread's watch if it has one; errno
 * is the call's, whatever the watch does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "interpose/hooks.h"
#include "session/xwatch.h"

/* What one call carried, to this thread's watch (received: a read). */
static void report(int received, int fd, const struct iovec *iov, int n,
		   ssize_t r, int flags)
{
	struct ktls_xwatch *w = ktls_xw_current();
	if (!w)
		return;
	int e = errno;
	(received ? ktls_xw_received : ktls_xw_sent)(w, fd, iov, n, r, flags);
	errno = e;
}

#define report_sent(...) report(0, __VA_ARGS__)
#define report_received(...) report(1, __VA_ARGS__)

static void before_read(int fd)
{
	struct ktls_xwatch *w = ktls_xw_current();
	if (w) {
		int e = errno;
		ktls_xw_before_read(w, fd);
		errno = e;
	}
}

ssize_t ktls_watch_write(int fd, const void *buf, size_t count)
{
	ssize_t n = ktls_on_write(fd, buf, count);
	struct iovec v = { (void *)buf, count };
	report_sent(fd, &v, 1, n, 0);
	return n;
}

ssize_t ktls_watch_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t n = ktls_on_sendmsg(fd, msg, flags);
	report_sent(fd, msg->msg_iov, (int)msg->msg_iovlen, n, flags);
	return n;
}

ssize_t ktls_watch_send(int fd, const void *buf, size_t count, int flags)
{
	ssize_t n = ktls_on_send(fd, buf, count, flags);
	struct iovec v = { (void *)buf, count };
	report_sent(fd, &v, 1, n, flags);
	return n;
}

ssize_t ktls_watch_recv(int fd, void *buf, size_t count, int flags)
{
	/* A peek takes nothing from the socket: not a read to account. */
	if (flags & MSG_PEEK)
		return ktls_on_recv(fd, buf, count, flags);
	before_read(fd);
	ssize_t n = ktls_on_recv(fd, buf, count, flags);
	struct iovec v = { buf, count };
	report_received(fd, &v, 1, n, flags);
	return n;
}

ssize_t ktls_watch_read(int fd, void *buf, size_t count)
{
	before_read(fd);
	ssize_t n = ktls_on_read(fd, buf, count);
	struct iovec v = { buf, count };
	report_received(fd, &v, 1, n, 0);
	return n;
}

ssize_t ktls_watch_read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	before_read(fd);
	ssize_t n = ktls_on_read_chk(fd, buf, count, buflen);
	struct iovec v = { buf, count };
	report_received(fd, &v, 1, n, 0);
	return n;
}

ssize_t ktls_watch_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (flags & MSG_PEEK)
		return ktls_on_recvmsg(fd, msg, flags);
	before_read(fd);
	ssize_t n = ktls_on_recvmsg(fd, msg, flags);
	report_received(fd, msg->msg_iov, (int)msg->msg_iovlen, n, flags);
	return n;
}
