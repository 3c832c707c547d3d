/*
 * The interposed libc calls. On an fd the shim does not track, each costs a
 * bounds check and one load before the real call; keep it that way.
 */
#define _GNU_SOURCE
/* Both sendfile and sendfile64 are defined here; without this the headers
 * rename the first to the second. off_t is 64-bit on LP64 either way. */
#undef _FILE_OFFSET_BITS
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fdtab.h"
#include "core/real.h"
#include "core/shim.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "openssl/session.h"
#include "session/fd.h"
#include "tls/record.h"

static int is_data(int record_type)
{
	return record_type < 0 || record_type == KTLS_CT_APPLICATION_DATA;
}

ssize_t read(int fd, void *buf, size_t count)
{
	ktls_real_ensure();
	ssize_t n = ktls_real.read(fd, buf, count);
	struct ktls_fd *e;
	if (n > 0 && (e = ktls_fd_tracked(fd)))
		ktls_fd_count(e, KTLS_IO_READ, (size_t)n);
	return n;
}

ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	ktls_real_ensure();
	ssize_t n = ktls_real.read_chk(fd, buf, count, buflen);
	struct ktls_fd *e;
	if (n > 0 && (e = ktls_fd_tracked(fd)))
		ktls_fd_count(e, KTLS_IO_READ, (size_t)n);
	return n;
}

ssize_t write(int fd, const void *buf, size_t count)
{
	ktls_real_ensure();
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (!e)
		return ktls_real.write(fd, buf, count);
	if (ktls_fd_send_refused(e))
		return -1;
	ssize_t n = ktls_real.write(fd, buf, count);
	if (n > 0)
		ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
	return n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ktls_real_ensure();
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (!e)
		return ktls_real.recvmsg(fd, msg, flags);
	return ktls_sess_recvmsg(fd, e, msg, flags);
}

int close(int fd)
{
	ktls_real_ensure();
	struct ktls_fd *e = ktls_fd_tracked(fd);
	/* Forget the fd before it is closed: afterwards its number may
	 * already belong to a new socket in another thread. */
	if (e)
		ktls_fd_close(fd, e);
	return ktls_real.close(fd);
}

static ssize_t do_sendfile(ssize_t (*real)(int, int, off_t *, size_t),
			   int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct ktls_fd *e = ktls_fd_tracked(out_fd);
	if (!e)
		return real(out_fd, in_fd, offset, count);
	return ktls_sess_sendfile(e, out_fd, in_fd, offset, count, real);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	ktls_real_ensure();
	return do_sendfile(ktls_real.sendfile, out_fd, in_fd, offset, count);
}

ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	ktls_real_ensure();
	return do_sendfile(ktls_real.sendfile64, out_fd, in_fd, offset, count);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ktls_real_ensure();
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (!e)
		return ktls_real.sendmsg(fd, msg, flags);
	if (ktls_sess_sendmsg_refused(fd, e, msg))
		return -1;
	ssize_t n = ktls_real.sendmsg(fd, msg, flags);
	if (n > 0 && is_data(ktls_cmsg_record_type(msg, TLS_SET_RECORD_TYPE)))
		ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
	ktls_sess_after_sendmsg(fd, e, msg, n);
	return n;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	ktls_real_ensure();
	if (!ktls_shim_active())
		return ktls_real.setsockopt(fd, level, name, val, len);
	return ktls_sess_setsockopt(fd, level, name, val, len);
}
