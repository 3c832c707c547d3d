#define _GNU_SOURCE
#include "core/fault.h"
#include "core/real.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

atomic_int ktls_real_ready;

static pthread_once_t once = PTHREAD_ONCE_INIT;

/*
 * Fallbacks that go straight to the kernel, used if dlsym finds nothing
 * (a static libc, an odd loader): the program must keep working.
 */
static ssize_t sys_read(int fd, void *b, size_t n)
{
	return syscall(SYS_read, fd, b, n);
}
static ssize_t sys_read_chk(int fd, void *b, size_t n, size_t bl)
{
	(void)bl;
	return syscall(SYS_read, fd, b, n);
}
static int sys_close(int fd) { return (int)syscall(SYS_close, fd); }
static ssize_t sys_sendfile(int o, int i, off_t *off, size_t n)
{
	return syscall(SYS_sendfile, o, i, off, n);
}
static int sys_setsockopt(int fd, int l, int n, const void *v, socklen_t len)
{
	return (int)syscall(SYS_setsockopt, fd, l, n, v, len);
}
static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int f)
{
	return syscall(SYS_sendmsg, fd, m, f);
}

static ssize_t sys_write(int fd, const void *b, size_t n)
{
	return syscall(SYS_write, fd, b, n);
}
static ssize_t sys_recvmsg(int fd, struct msghdr *m, int f)
{
	return syscall(SYS_recvmsg, fd, m, f);
}

static ssize_t sys_send(int fd, const void *b, size_t n, int f)
{
	return syscall(SYS_sendto, fd, b, n, f, NULL, 0);
}
static ssize_t sys_recv(int fd, void *b, size_t n, int f)
{
	return syscall(SYS_recvfrom, fd, b, n, f, NULL, NULL);
}

/* The stubs the table starts with: bind, then go on to the real call. */
static ssize_t lazy_read(int fd, void *b, size_t n)
{
	ktls_real_bind();
	return KTLS_REAL(read)(fd, b, n);
}
static ssize_t lazy_read_chk(int fd, void *b, size_t n, size_t bl)
{
	ktls_real_bind();
	return KTLS_REAL(read_chk)(fd, b, n, bl);
}
static int lazy_close(int fd)
{
	ktls_real_bind();
	return KTLS_REAL(close)(fd);
}
static ssize_t lazy_sendfile(int o, int i, off_t *off, size_t n)
{
	ktls_real_bind();
	return KTLS_REAL(sendfile)(o, i, off, n);
}
static ssize_t lazy_sendfile64(int o, int i, off_t *off, size_t n)
{
	ktls_real_bind();
	return KTLS_REAL(sendfile64)(o, i, off, n);
}
static int lazy_setsockopt(int fd, int l, int n, const void *v, socklen_t len)
{
	ktls_real_bind();
	return KTLS_REAL(setsockopt)(fd, l, n, v, len);
}
static ssize_t lazy_sendmsg(int fd, const struct msghdr *m, int f)
{
	ktls_real_bind();
	return KTLS_REAL(sendmsg)(fd, m, f);
}
static ssize_t lazy_write(int fd, const void *b, size_t n)
{
	ktls_real_bind();
	return KTLS_REAL(write)(fd, b, n);
}
static ssize_t lazy_recvmsg(int fd, struct msghdr *m, int f)
{
	ktls_real_bind();
	return KTLS_REAL(recvmsg)(fd, m, f);
}

static ssize_t lazy_send(int fd, const void *b, size_t n, int f)
{
	ktls_real_bind();
	return KTLS_REAL(send)(fd, b, n, f);
}
static ssize_t lazy_recv(int fd, void *b, size_t n, int f)
{
	ktls_real_bind();
	return KTLS_REAL(recv)(fd, b, n, f);
}

struct ktls_real ktls_real = {
	lazy_read,	 lazy_read_chk, lazy_close,
	lazy_sendfile,	 lazy_sendfile64, lazy_setsockopt,
	lazy_sendmsg,	 lazy_write,	lazy_recvmsg,
	lazy_send,	 lazy_recv,
};

#define BIND(field, name, fallback)                                           \
	do {                                                                  \
		void *p = dlsym(RTLD_NEXT, name);                             \
		t.field = p ? (__typeof__(t.field))p : fallback;              \
	} while (0)
#define PUBLISH(field)                                                        \
	__atomic_store_n(&ktls_real.field, t.field, __ATOMIC_RELAXED)

static void bind_all(void)
{
	int saved = errno;
	struct ktls_real t;
	BIND(read, "read", sys_read);
	BIND(read_chk, "__read_chk", sys_read_chk);
	BIND(close, "close", sys_close);
	BIND(sendfile, "sendfile", sys_sendfile);
	BIND(sendfile64, "sendfile64", sys_sendfile);
	BIND(setsockopt, "setsockopt", sys_setsockopt);
	BIND(sendmsg, "sendmsg", sys_sendmsg);
	BIND(write, "write", sys_write);
	BIND(recvmsg, "recvmsg", sys_recvmsg);
	BIND(send, "send", sys_send);
	BIND(recv, "recv", sys_recv);
#ifdef KTLS_FAULT
	ktls_fault_wrap_real(&t);
#endif
	PUBLISH(read);
	PUBLISH(read_chk);
	PUBLISH(close);
	PUBLISH(sendfile);
	PUBLISH(sendfile64);
	PUBLISH(setsockopt);
	PUBLISH(sendmsg);
	PUBLISH(write);
	PUBLISH(recvmsg);
	PUBLISH(send);
	PUBLISH(recv);
	atomic_store_explicit(&ktls_real_ready, 1, memory_order_release);
	errno = saved;
}

void ktls_real_bind(void)
{
	pthread_once(&once, bind_all);
}
