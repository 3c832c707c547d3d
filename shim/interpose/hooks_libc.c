/*
 * The interposed libc calls. Each exported hook is one jump through this
 * file's entry table, which the constructor below points either at libc
 * itself (a process the config leaves alone: nothing but that jump) or at
 * the on_* checks (one byte of the fd map, then on to libc). Counted by
 * bench/interpose-overhead; shim/DESIGN.md "Figures" has the counts and the
 * disassembly. Keep it that way.
 */
#define _GNU_SOURCE
/* Both sendfile and sendfile64 are defined here; without this the headers
 * rename the first to the second. off_t is 64-bit on LP64 either way. */
#undef _FILE_OFFSET_BITS
#include <sys/sendfile.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fdtab.h"
#include "core/real.h"
#include "core/shim.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "openssl/session.h"
#include "session/fd.h"
#include "session/xwatch.h"
#include "tls/record.h"

#define SLOW static __attribute__((noinline))

/* How the exported hooks load their entry, and what the on_* hooks do
 * first: see the entry table below for why. */
#if defined(__SANITIZE_THREAD__)
#define KTLS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) /* clang's spelling */
#define KTLS_TSAN 1
#endif
#endif
#ifdef KTLS_TSAN
#define ENTRY(f) (__atomic_load_n(&entry.f, __ATOMIC_ACQUIRE))
#define AFTER_ENTRY() ((void)0)
#else
#define ENTRY(f) (__atomic_load_n(&entry.f, __ATOMIC_RELAXED))
#define AFTER_ENTRY() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

static int is_data(int record_type)
{
	return record_type < 0 || record_type == KTLS_CT_APPLICATION_DATA;
}

/*
 * The slow_* hooks test exactly (ktls_fd_untracked: bounds, then the
 * entry's flags) and handle a tracked fd. Correct at any time, before the
 * fd table exists too, so the entry table starts with them.
 */
static ssize_t counted_read(struct ktls_fd *e, ssize_t n)
{
	if (n > 0)
		ktls_fd_count(e, KTLS_IO_READ, (size_t)n);
	return n;
}

SLOW ssize_t slow_read(int fd, void *buf, size_t count)
{
	if (ktls_fd_untracked(fd))
		return KTLS_REAL(read)(fd, buf, count);
	struct ktls_fd *e = ktls_fd_get(fd);
	return counted_read(e, KTLS_REAL(read)(fd, buf, count));
}

SLOW ssize_t slow_read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (ktls_fd_untracked(fd))
		return KTLS_REAL(read_chk)(fd, buf, count, buflen);
	struct ktls_fd *e = ktls_fd_get(fd);
	return counted_read(e, KTLS_REAL(read_chk)(fd, buf, count, buflen));
}

SLOW ssize_t slow_write(int fd, const void *buf, size_t count)
{
	if (ktls_fd_untracked(fd))
		return KTLS_REAL(write)(fd, buf, count);
	struct ktls_fd *e = ktls_fd_get(fd);
	if (ktls_fd_send_refused(e))
		return -1;
	ssize_t n = KTLS_REAL(write)(fd, buf, count);
	if (n > 0)
		ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
	return n;
}

SLOW ssize_t slow_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (ktls_fd_untracked(fd))
		return KTLS_REAL(recvmsg)(fd, msg, flags);
	return ktls_sess_recvmsg(fd, ktls_fd_get(fd), msg, flags);
}

SLOW int slow_close(int fd)
{
	if (ktls_fd_untracked(fd))
		return KTLS_REAL(close)(fd);
	/* Forget the fd before it is closed: afterwards its number may
	 * already belong to a new socket in another thread. */
	ktls_fd_close(fd, ktls_fd_get(fd));
	return KTLS_REAL(close)(fd);
}

SLOW ssize_t slow_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (ktls_fd_untracked(out_fd))
		return KTLS_REAL(sendfile)(out_fd, in_fd, offset, count);
	return ktls_sess_sendfile(ktls_fd_get(out_fd), out_fd, in_fd, offset,
				  count, KTLS_REAL(sendfile));
}

SLOW ssize_t slow_sendfile64(int out_fd, int in_fd, off_t *offset,
			     size_t count)
{
	if (ktls_fd_untracked(out_fd))
		return KTLS_REAL(sendfile64)(out_fd, in_fd, offset, count);
	return ktls_sess_sendfile(ktls_fd_get(out_fd), out_fd, in_fd, offset,
				  count, KTLS_REAL(sendfile64));
}

SLOW ssize_t slow_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (ktls_fd_untracked(fd))
		return KTLS_REAL(sendmsg)(fd, msg, flags);
	struct ktls_fd *e = ktls_fd_get(fd);
	if (ktls_sess_sendmsg_refused(fd, e, msg))
		return -1;
	ssize_t n = KTLS_REAL(sendmsg)(fd, msg, flags);
	if (n > 0 && is_data(ktls_cmsg_record_type(msg, TLS_SET_RECORD_TYPE)))
		ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
	ktls_sess_after_sendmsg(fd, e, msg, n);
	return n;
}

/* Runs the one-time initialisation if it got here before the
 * constructors did (a library's own constructor setting up TLS). */
static int on_setsockopt(int fd, int level, int name, const void *val,
			 socklen_t len)
{
	ktls_real_ensure();
	if (!ktls_shim_active())
		return KTLS_REAL(setsockopt)(fd, level, name, val, len);
	return ktls_sess_setsockopt(fd, level, name, val, len);
}

/*
 * The on_* hooks, once the fd table exists: an fd whose map byte is 0 goes
 * straight on to libc, with nothing after the call, so each compiles to a
 * byte load, a test and a jump (KTLS_REAL is one load; see core/real.h).
 */
#define UNTRACKED(fd)                                                         \
	(AFTER_ENTRY(), __builtin_expect(!ktls_fd_maybe_tracked(fd), 1))

static ssize_t on_read(int fd, void *buf, size_t count)
{
	if (UNTRACKED(fd))
		return KTLS_REAL(read)(fd, buf, count);
	return slow_read(fd, buf, count);
}

static ssize_t on_read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (UNTRACKED(fd))
		return KTLS_REAL(read_chk)(fd, buf, count, buflen);
	return slow_read_chk(fd, buf, count, buflen);
}

static ssize_t on_write(int fd, const void *buf, size_t count)
{
	if (UNTRACKED(fd))
		return KTLS_REAL(write)(fd, buf, count);
	return slow_write(fd, buf, count);
}

static ssize_t on_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (UNTRACKED(fd))
		return KTLS_REAL(recvmsg)(fd, msg, flags);
	return slow_recvmsg(fd, msg, flags);
}

static int on_close(int fd)
{
	if (UNTRACKED(fd))
		return KTLS_REAL(close)(fd);
	return slow_close(fd);
}

static ssize_t on_sendfile(int out_fd, int in_fd, off_t *offset,
			   size_t count)
{
	if (UNTRACKED(out_fd))
		return KTLS_REAL(sendfile)(out_fd, in_fd, offset, count);
	return slow_sendfile(out_fd, in_fd, offset, count);
}

static ssize_t on_sendfile64(int out_fd, int in_fd, off_t *offset,
			     size_t count)
{
	if (UNTRACKED(out_fd))
		return KTLS_REAL(sendfile64)(out_fd, in_fd, offset, count);
	return slow_sendfile64(out_fd, in_fd, offset, count);
}

static ssize_t on_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (UNTRACKED(fd))
		return KTLS_REAL(sendmsg)(fd, msg, flags);
	return slow_sendmsg(fd, msg, flags);
}

/*
 * The watch_* hooks, only while a program's own TLS transport is being
 * proven somewhere in the process (session/xwatch.h: a handshake under
 * way): the on_* hook, then what the call carried, to this thread's watch.
 * errno is the call's, whatever the watch does.
 */
static void report_sent(int fd, const struct iovec *iov, int n, ssize_t r,
			int flags)
{
	struct ktls_xwatch *w = ktls_xw_current();
	if (!w)
		return;
	int e = errno;
	ktls_xw_sent(w, fd, iov, n, r, flags);
	errno = e;
}

static void report_received(int fd, const struct iovec *iov, int n,
			    ssize_t r, int flags)
{
	struct ktls_xwatch *w = ktls_xw_current();
	if (!w)
		return;
	int e = errno;
	ktls_xw_received(w, fd, iov, n, r, flags);
	errno = e;
}

static void before_read(int fd)
{
	struct ktls_xwatch *w = ktls_xw_current();
	if (w) {
		int e = errno;
		ktls_xw_before_read(w, fd);
		errno = e;
	}
}

static ssize_t watch_write(int fd, const void *buf, size_t count)
{
	ssize_t n = on_write(fd, buf, count);
	struct iovec v = { (void *)buf, count };
	report_sent(fd, &v, 1, n, 0);
	return n;
}

static ssize_t watch_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t n = on_sendmsg(fd, msg, flags);
	report_sent(fd, msg->msg_iov, (int)msg->msg_iovlen, n, flags);
	return n;
}

static ssize_t watch_read(int fd, void *buf, size_t count)
{
	before_read(fd);
	ssize_t n = on_read(fd, buf, count);
	struct iovec v = { buf, count };
	report_received(fd, &v, 1, n, 0);
	return n;
}

static ssize_t watch_read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	before_read(fd);
	ssize_t n = on_read_chk(fd, buf, count, buflen);
	struct iovec v = { buf, count };
	report_received(fd, &v, 1, n, 0);
	return n;
}

static ssize_t watch_recvmsg(int fd, struct msghdr *msg, int flags)
{
	before_read(fd);
	ssize_t n = on_recvmsg(fd, msg, flags);
	report_received(fd, msg->msg_iov, (int)msg->msg_iovlen, n, flags);
	return n;
}

/*
 * Where each exported hook jumps. Until the constructor below has run, the
 * exact tests (the fd table may not exist yet, or init may be under way in
 * another thread); then libc's own functions or the on_* hooks, for good.
 * Stored with release. Loaded relaxed, so the load and the jump are one
 * instruction (an acquire load is a plain move on x86 too, but GCC then
 * loads into a register and jumps from there: one instruction more per
 * call); the acquire fence at the top of each on_* hook (no instruction on
 * x86) makes a hook that found on_* also find the map ktls_fdtab_init()
 * stored before. TSan does not model fences (GCC's -Wtsan says so): there
 * the load itself acquires.
 */
static struct ktls_real entry = {
	.read = slow_read,
	.read_chk = slow_read_chk,
	.close = slow_close,
	.sendfile = slow_sendfile,
	.sendfile64 = slow_sendfile64,
	.setsockopt = on_setsockopt,
	.sendmsg = slow_sendmsg,
	.write = slow_write,
	.recvmsg = slow_recvmsg,
};

#define SET_ENTRY(f, to) __atomic_store_n(&entry.f, (to), __ATOMIC_RELEASE)

/* session/xwatch.c calls this, under its lock, as the first watch in the
 * process begins and the last one ends. */
static void watch_switch(int on)
{
	SET_ENTRY(read, on ? watch_read : on_read);
	SET_ENTRY(read_chk, on ? watch_read_chk : on_read_chk);
	SET_ENTRY(write, on ? watch_write : on_write);
	SET_ENTRY(sendmsg, on ? watch_sendmsg : on_sendmsg);
	SET_ENTRY(recvmsg, on ? watch_recvmsg : on_recvmsg);
}

/*
 * Runs the shim's initialisation (or finds it done) and chooses, once. An
 * excluded process (allowlist, KTLS_SHIM_ENABLE=no, a config error) never
 * tracks an fd: its hooks become the jump to libc and nothing else.
 */
__attribute__((constructor)) static void choose_entry(void)
{
	int on = ktls_shim_active();
	ktls_real_bind();
	SET_ENTRY(read, on ? on_read : KTLS_REAL(read));
	SET_ENTRY(read_chk, on ? on_read_chk : KTLS_REAL(read_chk));
	SET_ENTRY(close, on ? on_close : KTLS_REAL(close));
	SET_ENTRY(sendfile, on ? on_sendfile : KTLS_REAL(sendfile));
	SET_ENTRY(sendfile64, on ? on_sendfile64 : KTLS_REAL(sendfile64));
	SET_ENTRY(setsockopt, on ? on_setsockopt : KTLS_REAL(setsockopt));
	SET_ENTRY(sendmsg, on ? on_sendmsg : KTLS_REAL(sendmsg));
	SET_ENTRY(write, on ? on_write : KTLS_REAL(write));
	SET_ENTRY(recvmsg, on ? on_recvmsg : KTLS_REAL(recvmsg));
	if (on)
		ktls_xw_register_switch(watch_switch);
}

ssize_t read(int fd, void *buf, size_t count)
{
	return ENTRY(read)(fd, buf, count);
}

ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	return ENTRY(read_chk)(fd, buf, count, buflen);
}

ssize_t write(int fd, const void *buf, size_t count)
{
	return ENTRY(write)(fd, buf, count);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	return ENTRY(recvmsg)(fd, msg, flags);
}

int close(int fd)
{
	return ENTRY(close)(fd);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return ENTRY(sendfile)(out_fd, in_fd, offset, count);
}

ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return ENTRY(sendfile64)(out_fd, in_fd, offset, count);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return ENTRY(sendmsg)(fd, msg, flags);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return ENTRY(setsockopt)(fd, level, name, val, len);
}
