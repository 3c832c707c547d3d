/* See fault.h. Only in libktls-shim-fault.so: meson builds this file into
 * that library alone, with -DKTLS_FAULT. */
#define _GNU_SOURCE
#include "core/fault.h"

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fdtab.h"
#include "core/log.h"
#include "core/real.h"


#define NAME(id, name, what) name,
static const char *const point_name[] = { POINTS(NAME) };
#define WHAT(id, name, what) what,
static const char *const point_what[] = { POINTS(WHAT) };

static const struct {
	const char *name;
	int err;
} errnos[] = {
	{ "EPERM", EPERM },	      { "ENOENT", ENOENT },
	{ "EINTR", EINTR },	      { "EIO", EIO },
	{ "EBADF", EBADF },	      { "EAGAIN", EAGAIN },
	{ "ENOMEM", ENOMEM },	      { "EACCES", EACCES },
	{ "EBUSY", EBUSY },	      { "EINVAL", EINVAL },
	{ "ENOSPC", ENOSPC },	      { "EPIPE", EPIPE },
	{ "ENOPROTOOPT", ENOPROTOOPT }, { "EOPNOTSUPP", EOPNOTSUPP },
	{ "ECONNRESET", ECONNRESET }, { "ENOBUFS", ENOBUFS },
	{ "ETIMEDOUT", ETIMEDOUT },   { "EKEYEXPIRED", EKEYEXPIRED },
};

static struct {
	int point; /* -1: none */
	unsigned long nth;
	int sticky; /* NTH+: that call and every later one */
	int err;
} want = { -1, 0, 0, 0 };
static _Atomic unsigned long calls[FP_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *errno_name(int e)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].err == e)
			return errnos[i].name;
	return "?";
}

static void parse(void)
{
	const char *v = getenv("KTLS_SHIM_FAULT");
	char buf[128], *nth, *err = NULL;
	if (!v || !*v || strcmp(v, "list") == 0)
		return;
	snprintf(buf, sizeof(buf), "%s", v);
	if ((nth = strchr(buf, ':'))) {
		*nth++ = 0;
		if ((err = strchr(nth, ':')))
			*err++ = 0;
	}
	for (int i = 0; i < FP_COUNT; i++)
		if (strcmp(buf, point_name[i]) == 0)
			want.point = i;
	want.nth = 1;
	if (nth && *nth) {
		char *end;
		want.nth = strtoul(nth, &end, 10);
		want.sticky = *end == '+';
		if (!want.nth || (*end && strcmp(end, "+") != 0))
			want.point = -1;
	}
	want.err = ENOMEM;
	if (err && *err) {
		want.err = 0;
		for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
			if (strcmp(err, errnos[i].name) == 0)
				want.err = errnos[i].err;
		if (!want.err)
			want.point = -1;
	}
	if (want.point < 0) {
		fprintf(stderr, "ktls-shim fault: bad KTLS_SHIM_FAULT '%s' "
				"(KTLS_SHIM_FAULT=list names the points)\n", v);
		_exit(99);
	}
}

static _Thread_local int quiet;

void ktls_fault_quiet(int on)
{
	quiet = on;
}

int ktls_fault_hit(enum ktls_fault_point p)
{
	if (quiet)
		return 0;
	pthread_once(&once, parse);
	unsigned long n = atomic_fetch_add(&calls[p], 1) + 1;
	if ((int)p != want.point ||
	    (want.sticky ? n < want.nth : n != want.nth))
		return 0;
	ktls_warn("fault: %s call %lu fails with %s (KTLS_SHIM_FAULT)",
		  point_name[p], n, errno_name(want.err));
	return want.err;
}

/* The list comes from the library under test itself, so a test cannot
 * miss a point added later. A bad setting stops the program here, before
 * it could pass for a fault that changed nothing. */
__attribute__((constructor)) static void list_points(void)
{
	const char *v = getenv("KTLS_SHIM_FAULT");
	if (!v || strcmp(v, "list") != 0) {
		pthread_once(&once, parse);
		return;
	}
	for (int i = 0; i < FP_COUNT; i++)
		printf("%s\t%s\n", point_name[i], point_what[i]);
	fflush(stdout);
}

/* How often each point was reached: a test picks its NTH from these. */
__attribute__((destructor)) static void report(void)
{
	char line[1024];
	size_t off = 0;
	for (int i = 0; i < FP_COUNT && off < sizeof(line); i++) {
		unsigned long n = atomic_load(&calls[i]);
		if (n)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
						" %s=%lu", point_name[i], n);
	}
	ktls_info("fault calls:%s", off ? line : " none");
}

int ktls_fault_sockopt(int set, int level, int name)
{
	enum ktls_fault_point p;
	if (set && level == IPPROTO_TCP && name == TCP_ULP)
		p = FP_SETSOCKOPT_ULP;
	else if (set && level == SOL_TLS && name == TLS_TX)
		p = FP_SETSOCKOPT_TLS_TX;
	else if (set && level == SOL_TLS && name == TLS_RX)
		p = FP_SETSOCKOPT_TLS_RX;
	else if (set && level == SOL_TLS && name == TLS_TX_ZEROCOPY_RO)
		p = FP_SETSOCKOPT_ZEROCOPY_RO;
	else if (set && level == SOL_TLS && name == 5)
		p = FP_SETSOCKOPT_TX_LIMIT; /* TLS_TX_MAX_PAYLOAD_LEN, newer kernels */
	else if (!set && level == SOL_TLS)
		p = FP_GETSOCKOPT_TLS;
	else if (!set && ((level == SOL_SOCKET && name == SO_PROTOCOL) ||
			  (level == IPPROTO_TCP &&
			   (name == TCP_INFO || name == TCP_ULP))))
		p = FP_GETSOCKOPT_SOCKET;
	else
		return 0;
	return ktls_fault_hit(p);
}

/* ---- libc: the real table ---- */

static struct ktls_real next;

#define FAIL_IF(cond, point)                                                  \
	do {                                                                  \
		int e_;                                                       \
		if ((cond) && (e_ = ktls_fault_hit(point))) {                            \
			errno = e_;                                           \
			return -1;                                            \
		}                                                             \
	} while (0)

static int tracked(int fd)
{
	return ktls_fd_tracked(fd) != NULL;
}

static ssize_t f_read(int fd, void *b, size_t n)
{
	FAIL_IF(tracked(fd), FP_READ);
	return next.read(fd, b, n);
}
static ssize_t f_read_chk(int fd, void *b, size_t n, size_t bl)
{
	FAIL_IF(tracked(fd), FP_READ);
	return next.read_chk(fd, b, n, bl);
}
static ssize_t f_write(int fd, const void *b, size_t n)
{
	FAIL_IF(tracked(fd), FP_WRITE);
	return next.write(fd, b, n);
}
static ssize_t f_recvmsg(int fd, struct msghdr *m, int fl)
{
	FAIL_IF(tracked(fd), FP_RECVMSG);
	return next.recvmsg(fd, m, fl);
}
static ssize_t f_sendmsg(int fd, const struct msghdr *m, int fl)
{
	FAIL_IF(tracked(fd), FP_SENDMSG);
	return next.sendmsg(fd, m, fl);
}
static ssize_t f_sendfile(int o, int i, off_t *off, size_t n)
{
	FAIL_IF(tracked(o), FP_SENDFILE);
	return next.sendfile(o, i, off, n);
}
static ssize_t f_sendfile64(int o, int i, off_t *off, size_t n)
{
	FAIL_IF(tracked(o), FP_SENDFILE);
	return next.sendfile64(o, i, off, n);
}
static ssize_t f_send(int fd, const void *b, size_t n, int fl)
{
	FAIL_IF(tracked(fd), FP_WRITE);
	return next.send(fd, b, n, fl);
}
static ssize_t f_recv(int fd, void *b, size_t n, int fl)
{
	FAIL_IF(tracked(fd), FP_READ);
	return next.recv(fd, b, n, fl);
}
static int f_setsockopt(int fd, int l, int n, const void *v, socklen_t len)
{
	int e = ktls_fault_sockopt(1, l, n);
	if (e) {
		errno = e;
		return -1;
	}
	return next.setsockopt(fd, l, n, v, len);
}

/* close() is left alone: the shim only forwards the program's own. A new
 * member of struct ktls_real must be wrapped here or exempted here. */
_Static_assert(sizeof(struct ktls_real) == 11 * sizeof(void *),
	       "struct ktls_real changed: wrap the new call in fault.c");

void ktls_fault_wrap_real(struct ktls_real *r)
{
	next = *r;
	r->read = f_read;
	r->read_chk = f_read_chk;
	r->write = f_write;
	r->recvmsg = f_recvmsg;
	r->sendmsg = f_sendmsg;
	r->sendfile = f_sendfile;
	r->sendfile64 = f_sendfile64;
	r->setsockopt = f_setsockopt;
	r->send = f_send;
	r->recv = f_recv;
}

/* ---- the shim's own allocations (-Wl,--wrap=malloc,--wrap=calloc) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

void *__wrap_malloc(size_t n)
{
	int e = ktls_fault_hit(FP_ALLOC);
	if (e) {
		errno = e;
		return NULL;
	}
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	int e = ktls_fault_hit(FP_ALLOC);
	if (e) {
		errno = e;
		return NULL;
	}
	return __real_calloc(n, size);
}
