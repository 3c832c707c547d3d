/*
 * sendfile() on a socket whose TLS session is still in userspace would put
 * the file's plaintext on the wire. The shim sends it through the session
 * instead (read + SSL_write) and keeps sendfile's contract: offsets, the
 * file position, partial counts, EAGAIN.
 */
#ifndef KTLS_SHIM_SENDFILE_EMUL_H
#define KTLS_SHIM_SENDFILE_EMUL_H

#include <openssl/ssl.h>
#include <sys/types.h>

struct ktls_emul_ops {
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*read)(int fd, void *buf, size_t n);
	off_t (*lseek)(int fd, off_t off, int whence);
	int (*ssl_write)(SSL *s, const void *buf, int n);
	int (*ssl_get_error)(const SSL *s, int ret);
};

ssize_t ktls_sendfile_emulate(const struct ktls_emul_ops *ops, SSL *s,
			      int in_fd, off_t *offset, size_t count);

#endif
