/*
 * tls_xfer's own BIOs (--own-bio MODE), the OpenSSL twin of
 * gnutls_transport.c: every mode carries the same TLS records over the
 * same TCP socket and transfers intact in userspace; they differ in what
 * the shim, watching the libc calls the BIO makes during the handshake,
 * can prove (issue 17):
 *   send       write = send(2) with MSG_NOSIGNAL, read = recv(2): curl's,
 *              libpq's and the PostgreSQL server's shape. Proven.
 *   readahead  read takes up to 16 KiB from the socket into its own
 *              buffer and hands out what OpenSSL asks for (curl 8's
 *              receive buffer): transport-reads-ahead.
 *   queue      write appends to a queue and returns n; the queue goes out
 *              on BIO_flush and at the start of the next read or write
 *              (Apache's core output filter writing later):
 *              transport-queues-writes.
 * EAGAIN of a non-blocking socket sets the BIO's retry flags, so OpenSSL
 * answers SSL_ERROR_WANT_READ/WRITE as over a socket BIO.
 */
#define _GNU_SOURCE
#include "ossl_transport.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum mode { M_SEND, M_READAHEAD, M_QUEUE };

#define BUF_MAX (256 * 1024)

struct own {
	enum mode mode;
	int fd;
	uint8_t *buf; /* readahead: read, not yet handed up; queue: unsent */
	size_t off, len;
};

static int retry(BIO *b, ssize_t r, int reading)
{
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR)) {
		if (reading)
			BIO_set_retry_read(b);
		else
			BIO_set_retry_write(b);
	}
	return r < 0 ? -1 : (int)r;
}

/* queue: what is held goes out; 0 once empty, -1 (retry set) if not. */
static int drain(BIO *b, struct own *o)
{
	while (o->mode == M_QUEUE && o->off < o->len) {
		ssize_t r = send(o->fd, o->buf + o->off, o->len - o->off,
				 MSG_NOSIGNAL);
		if (r <= 0)
			return retry(b, r, 0) < 0 ? -1 : 0;
		o->off += (size_t)r;
	}
	if (o->mode == M_QUEUE)
		o->off = o->len = 0;
	return 0;
}

static int own_write(BIO *b, const char *d, int n)
{
	struct own *o = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (drain(b, o) != 0)
		return -1;
	if (o->mode != M_QUEUE)
		return retry(b, send(o->fd, d, (size_t)n, MSG_NOSIGNAL), 0);
	if ((size_t)n > BUF_MAX - o->len) {
		BIO_set_retry_write(b);
		return -1;
	}
	memcpy(o->buf + o->len, d, (size_t)n);
	o->len += (size_t)n;
	return n;
}

static int own_read(BIO *b, char *d, int n)
{
	struct own *o = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (drain(b, o) != 0)
		return -1;
	if (o->mode != M_READAHEAD)
		return retry(b, recv(o->fd, d, (size_t)n, 0), 1);
	if (o->off == o->len) {
		ssize_t r = recv(o->fd, o->buf, 16 * 1024, 0);
		if (r <= 0)
			return retry(b, r, 1);
		o->off = 0;
		o->len = (size_t)r;
	}
	size_t k = o->len - o->off < (size_t)n ? o->len - o->off : (size_t)n;
	memcpy(d, o->buf + o->off, k);
	o->off += k;
	return (int)k;
}

static long own_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num, (void)ptr;
	if (cmd == BIO_CTRL_FLUSH)
		return drain(b, BIO_get_data(b)) == 0;
	return cmd == BIO_CTRL_DUP || cmd == BIO_CTRL_PENDING ||
		       cmd == BIO_CTRL_WPENDING
		       ? 0
		       : cmd == BIO_CTRL_GET_CLOSE ? BIO_NOCLOSE : 0;
}

static int own_destroy(BIO *b)
{
	struct own *o = BIO_get_data(b);
	if (o) {
		free(o->buf);
		free(o);
	}
	BIO_set_data(b, NULL);
	return 1;
}

BIO *xfer_own_bio(int fd, const char *mode)
{
	static const char *const names[] = { "send", "readahead", "queue" };
	static BIO_METHOD *m;
	int i = 0;
	while (i < 3 && strcmp(mode, names[i]) != 0)
		i++;
	if (i == 3)
		return NULL;
	if (!m) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				 "tls_xfer own BIO");
		if (!m || !BIO_meth_set_write(m, own_write) ||
		    !BIO_meth_set_read(m, own_read) ||
		    !BIO_meth_set_ctrl(m, own_ctrl) ||
		    !BIO_meth_set_destroy(m, own_destroy))
			return NULL;
	}
	struct own *o = calloc(1, sizeof(*o));
	BIO *b = BIO_new(m);
	if (!o || !b || (i != M_SEND && !(o->buf = malloc(BUF_MAX)))) {
		free(o ? o->buf : NULL);
		free(o);
		BIO_free(b);
		return NULL;
	}
	o->mode = (enum mode)i;
	o->fd = fd;
	BIO_set_data(b, o);
	BIO_set_init(b, 1);
	return b;
}
