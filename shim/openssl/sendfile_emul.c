#define _GNU_SOURCE
#include "openssl/sendfile_emul.h"

#include <errno.h>
#include <unistd.h>

/* One TLS record's worth of plaintext at a time: never more read ahead of
 * what was sent than one record, so little needs un-reading on EAGAIN. */
#define EMUL_CHUNK 16384

ssize_t ktls_sendfile_emulate(const struct ktls_emul_ops *ops, SSL *s,
			      int in_fd, off_t *offset, size_t count)
{
	unsigned char buf[EMUL_CHUNK];
	size_t done = 0;
	int err = 0;

	while (done < count) {
		size_t want = count - done < EMUL_CHUNK ? count - done : EMUL_CHUNK;
		ssize_t n = offset ? ops->pread(in_fd, buf, want,
						*offset + (off_t)done)
				   : ops->read(in_fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : 0; /* 0: end of file */
			break;
		}
		int w = ops->ssl_write(s, buf, (int)n);
		if (w > 0) {
			done += (size_t)w;
			if ((size_t)w < (size_t)n && !offset)
				ops->lseek(in_fd, -(off_t)((size_t)n - (size_t)w),
					   SEEK_CUR);
			continue;
		}
		/* Nothing of this chunk went out: give the file position
		 * back, as sendfile never consumes what it did not send. The
		 * retry reads the same bytes again, which is what OpenSSL
		 * needs to finish a record it started. */
		if (!offset)
			ops->lseek(in_fd, -(off_t)n, SEEK_CUR);
		int e = ops->ssl_get_error(s, w);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
			err = EAGAIN;
		else if (e == SSL_ERROR_SYSCALL && errno)
			err = errno;
		else
			err = EPIPE; /* TLS-level failure: the stream is gone */
		break;
	}
	if (offset)
		*offset += (off_t)done;
	if (done > 0)
		return (ssize_t)done;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
