/*
 * The interposed libc calls. On an fd the shim does not track, each costs a
 * bounds check, one load and a jump on to libc (8-10 instructions, counted
 * by bench/interpose-overhead); keep it that way.
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

/*
 * Each hook: an fd the shim does not track goes straight on to libc, with
 * nothing after the call, so the compiler makes it a jump (KTLS_REAL is one
 * load; see core/real.h). The rest is out of line.
 */
static __attribute__((noinline)) ssize_t
tracked_read(struct ktls_fd *e, ssize_t n)
{
	if (n > 0)
		ktls_fd_count(e, KTLS_IO_READ, (size_t)n);
	return n;
}

ssize_t read(int fd, void *buf, size_t count)
{
	if (__builtin_expect(ktls_fd_untracked(fd), 1))
		return KTLS_REAL(read)(fd, buf, count);
	struct ktls_fd *e = ktls_fd_get(fd);
	return tracked_read(e, KTLS_REAL(read)(fd, buf, count));
}

ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (__builtin_expect(ktls_fd_untracked(fd), 1))
		return KTLS_REAL(read_chk)(fd, buf, count, buflen);
	struct ktls_fd *e = ktls_fd_get(fd);
	return tracked_read(e, KTLS_REAL(read_chk)(fd, buf, count, buflen));
}

static __attribute__((noinline)) ssize_t
tracked_write(int fd, const void *buf, size_t count)
{
	struct ktls_fd *e = ktls_fd_get(fd);
	if (ktls_fd_send_refused(e))
		return -1;
	ssize_t n = KTLS_REAL(write)(fd, buf, count);
	if (n > 0)
		ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
	return n;
}

ssize_t write(int fd, const void *buf, size_t count)
{
	if (__builtin_expect(ktls_fd_untracked(fd), 1))
		return KTLS_REAL(write)(fd, buf, count);
	return tracked_write(fd, buf, count);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (__builtin_expect(ktls_fd_untracked(fd), 1))
		return KTLS_REAL(recvmsg)(fd, msg, flags);
	return ktls_sess_recvmsg(fd, ktls_fd_get(fd), msg, flags);
}

int close(int fd)
{
	if (__builtin_expect(ktls_fd_untracked(fd), 1))
		return KTLS_REAL(close)(fd);
	/* Forget the fd before it is closed: afterwards its number may
	 * already belong to a new socket in another thread. */
	ktls_fd_close(fd, ktls_fd_get(fd));
	return KTLS_REAL(close)(fd);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (__builtin_expect(ktls_fd_untracked(out_fd), 1))
		return KTLS_REAL(sendfile)(out_fd, in_fd, offset, count);
	return ktls_sess_sendfile(ktls_fd_get(out_fd), out_fd, in_fd, offset,
				  count, KTLS_REAL(sendfile));
}

ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (__builtin_expect(ktls_fd_untracked(out_fd), 1))
		return KTLS_REAL(sendfile64)(out_fd, in_fd, offset, count);
	return ktls_sess_sendfile(ktls_fd_get(out_fd), out_fd, in_fd, offset,
				  count, KTLS_REAL(sendfile64));
}

static __attribute__((noinline)) ssize_t
tracked_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct ktls_fd *e = ktls_fd_get(fd);
	if (ktls_sess_sendmsg_refused(fd, e, msg))
		return -1;
	ssize_t n = KTLS_REAL(sendmsg)(fd, msg, flags);
	if (n > 0 && is_data(ktls_cmsg_record_type(msg, TLS_SET_RECORD_TYPE)))
		ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
	ktls_sess_after_sendmsg(fd, e, msg, n);
	return n;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (__builtin_expect(ktls_fd_untracked(fd), 1))
		return KTLS_REAL(sendmsg)(fd, msg, flags);
	return tracked_sendmsg(fd, msg, flags);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	ktls_real_ensure();
	if (!ktls_shim_active())
		return KTLS_REAL(setsockopt)(fd, level, name, val, len);
	return ktls_sess_setsockopt(fd, level, name, val, len);
}
