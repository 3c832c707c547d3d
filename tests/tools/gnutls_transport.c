/*
 * gnutls_xfer's transports (--transport MODE). Every mode carries the same
 * TLS records over the same TCP socket and transfers intact in userspace;
 * they differ in what the shim, watching the libc calls push and pull make
 * during gnutls_handshake, can prove about them (issue 17: a custom
 * transport moves into the kernel only when its bytes provably go straight
 * to and from one TCP socket):
 *   int        gnutls_transport_set_int: GnuTLS's own push/pull.
 *   push       own push = write(2), own pull = read(2).
 *   vec        own vec_push = sendmsg(2), GnuTLS's iovecs straight through,
 *              own pull = recvmsg(2): qemu's shape.
 *   readahead  pull reads up to 16 KiB into its own buffer and hands out
 *              what GnuTLS asks for (a buffering transport, like curl's).
 *   queue      push appends to a queue and returns n; the queue goes out at
 *              the start of the next push, pull or pull_timeout call and
 *              when the program calls gx_transport_flush (gnutls_xfer: after
 *              each gnutls_record_send, before gnutls_bye), like Apache's
 *              output filter writing later.
 *   dupfd      push writes to a dup() of the socket, pull reads the socket:
 *              the session's bytes on two fds.
 *   send       own push = send(2), own pull = recv(2): curl's, HAProxy's
 *              and PostgreSQL's calls.
 *   sendto     push = sendto(2) without an address, pull = recvfrom(2):
 *              calls the shim does not interpose.
 * The own modes set the transport pointer to their object, as qemu does
 * (gnutls_transport_get_int2 then says nothing about the socket), and a
 * pull_timeout function (poll on the socket): GnuTLS refuses its default
 * one beside an own pull. EAGAIN and EINTR of a non-blocking socket reach
 * GnuTLS through gnutls_transport_set_errno.
 */
#define _GNU_SOURCE
#include "gnutls_transport.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum mode {
	M_INT, M_PUSH, M_VEC, M_READAHEAD, M_QUEUE, M_DUPFD, M_SEND, M_SENDTO
};

static const char *const mode_names[] = { "int",   "push",  "vec",
					  "readahead", "queue", "dupfd",
					  "send",  "sendto" };

#define READAHEAD (16 * 1024)
/* What queue holds back at most: beyond it push answers EAGAIN. */
#define QUEUE_MAX (256 * 1024)

struct gx_transport {
	gnutls_session_t s;
	enum mode mode;
	int fd, wfd; /* pull's and push's fds: differ for dupfd only */
	/* readahead: bytes read, not yet handed to GnuTLS; queue: bytes
	 * pushed, not yet written. Both: buf[off, len). */
	uint8_t *buf;
	size_t off, len, cap;
	/* Every record header pull reads ("send" mode): the peer's records
	 * as they arrive, counted below GnuTLS. */
	uint8_t hdr[5];
	size_t hdr_have, body_left;
	unsigned long long records, max_record;
};

static int mode_of(const char *name)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(name, mode_names[i]) == 0)
			return (int)i;
	return -1;
}

int gx_transport_known(const char *name)
{
	return mode_of(name) >= 0;
}

/* A failed call's errno, which GnuTLS turns into GNUTLS_E_AGAIN,
 * GNUTLS_E_INTERRUPTED or a push/pull error. */
static ssize_t fail(struct gx_transport *t)
{
	gnutls_transport_set_errno(t->s, errno);
	return -1;
}

static ssize_t done(struct gx_transport *t, ssize_t r)
{
	return r < 0 ? fail(t) : r;
}

static ssize_t push_write(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	struct gx_transport *t = p;
	return done(t, write(t->wfd, d, n));
}

static ssize_t pull_read(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct gx_transport *t = p;
	return done(t, read(t->fd, d, n));
}

static ssize_t push_sendmsg(gnutls_transport_ptr_t p, const giovec_t *iov,
			    int iovcnt)
{
	struct gx_transport *t = p;
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)iovcnt };
	return done(t, sendmsg(t->fd, &m, 0));
}

static ssize_t pull_recvmsg(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct gx_transport *t = p;
	struct iovec v = { .iov_base = d, .iov_len = n };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	return done(t, recvmsg(t->fd, &m, 0));
}

static ssize_t push_send(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	struct gx_transport *t = p;
	return done(t, send(t->fd, d, n, 0));
}

/* Walks the record headers in the bytes pull just read. */
static void count_records(struct gx_transport *t, const uint8_t *d, size_t n)
{
	while (n) {
		if (t->body_left) {
			size_t k = n < t->body_left ? n : t->body_left;
			t->body_left -= k, d += k, n -= k;
			continue;
		}
		t->hdr[t->hdr_have++] = *d++, n--;
		if (t->hdr_have < sizeof(t->hdr))
			continue;
		t->hdr_have = 0;
		t->body_left = (size_t)t->hdr[3] << 8 | t->hdr[4];
		t->records++;
		if (t->body_left > t->max_record)
			t->max_record = t->body_left;
	}
}

static ssize_t pull_recv(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct gx_transport *t = p;
	ssize_t r = recv(t->fd, d, n, 0);
	if (r > 0)
		count_records(t, d, (size_t)r);
	return done(t, r);
}

void gx_transport_records(const struct gx_transport *t,
			  unsigned long long *records,
			  unsigned long long *max_record)
{
	*records = t->records;
	*max_record = t->max_record;
}

static ssize_t push_sendto(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	struct gx_transport *t = p;
	return done(t, sendto(t->fd, d, n, 0, NULL, 0));
}

static ssize_t pull_recvfrom(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct gx_transport *t = p;
	return done(t, recvfrom(t->fd, d, n, 0, NULL, NULL));
}

static ssize_t pull_ahead(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct gx_transport *t = p;
	if (t->off == t->len) {
		ssize_t r = read(t->fd, t->buf, READAHEAD);
		if (r <= 0)
			return done(t, r);
		t->off = 0;
		t->len = (size_t)r;
	}
	size_t k = t->len - t->off < n ? t->len - t->off : n;
	memcpy(d, t->buf + t->off, k);
	t->off += k;
	return (ssize_t)k;
}

int gx_transport_flush(struct gx_transport *t)
{
	if (t->mode != M_QUEUE)
		return 1;
	while (t->off < t->len) {
		ssize_t r = write(t->fd, t->buf + t->off, t->len - t->off);
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ||
					       errno == EINTR
				       ? 0
				       : -1;
		t->off += (size_t)r;
	}
	t->off = t->len = 0;
	return 1;
}

int gx_transport_pending(const struct gx_transport *t)
{
	return t->mode == M_QUEUE && t->off < t->len;
}

/* Appends d to the queue and says it went: the bytes leave in a later
 * call. */
static ssize_t push_queue(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	struct gx_transport *t = p;
	if (gx_transport_flush(t) < 0)
		return fail(t);
	if (t->off) { /* a part went: keep the rest at the front */
		memmove(t->buf, t->buf + t->off, t->len - t->off);
		t->len -= t->off;
		t->off = 0;
	}
	if (t->len && t->len + n > QUEUE_MAX) {
		errno = EAGAIN;
		return fail(t);
	}
	if (t->len + n > t->cap) {
		size_t cap = t->len + n > 2 * t->cap ? t->len + n : 2 * t->cap;
		uint8_t *b = realloc(t->buf, cap);
		if (!b)
			return fail(t);
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, d, n);
	t->len += n;
	return (ssize_t)n;
}

static ssize_t pull_queue(gnutls_transport_ptr_t p, void *d, size_t n)
{
	struct gx_transport *t = p;
	if (gx_transport_flush(t) < 0)
		return fail(t);
	return pull_read(p, d, n);
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct gx_transport *t = p;
	if (gx_transport_flush(t) < 0)
		return (int)fail(t);
	if (t->mode == M_READAHEAD && t->off < t->len)
		return 1;
	struct pollfd f = { .fd = t->fd, .events = POLLIN };
	int r = poll(&f, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
	return r < 0 ? (int)fail(t) : r;
}

static const struct {
	gnutls_push_func push;
	gnutls_vec_push_func vec_push;
	gnutls_pull_func pull;
} ops[] = {
	[M_PUSH] = { push_write, NULL, pull_read },
	[M_VEC] = { NULL, push_sendmsg, pull_recvmsg },
	[M_READAHEAD] = { push_write, NULL, pull_ahead },
	[M_QUEUE] = { push_queue, NULL, pull_queue },
	[M_DUPFD] = { push_write, NULL, pull_read },
	[M_SEND] = { push_send, NULL, pull_recv },
	[M_SENDTO] = { push_sendto, NULL, pull_recvfrom },
};

struct gx_transport *gx_transport_set(gnutls_session_t s, int fd,
				      const char *name)
{
	int m = mode_of(name);
	struct gx_transport *t = m < 0 ? NULL : calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->s = s;
	t->mode = (enum mode)m;
	t->fd = t->wfd = fd;
	if (t->mode == M_INT) {
		gnutls_transport_set_int(s, fd);
		return t;
	}
	if ((t->mode == M_DUPFD && (t->wfd = dup(fd)) < 0) ||
	    (t->mode == M_READAHEAD && !(t->buf = malloc(READAHEAD)))) {
		free(t);
		return NULL;
	}
	gnutls_transport_set_ptr(s, t);
	if (ops[m].vec_push)
		gnutls_transport_set_vec_push_function(s, ops[m].vec_push);
	else
		gnutls_transport_set_push_function(s, ops[m].push);
	gnutls_transport_set_pull_function(s, ops[m].pull);
	gnutls_transport_set_pull_timeout_function(s, pull_timeout);
	return t;
}

void gx_transport_free(struct gx_transport *t)
{
	if (!t)
		return;
	if (t->wfd != t->fd)
		close(t->wfd);
	free(t->buf);
	free(t);
}
