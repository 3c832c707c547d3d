/*
 * See register.h. The map fd is opened once (BPF_OBJ_GET on the pin) and
 * kept, close-on-exec, for the life of the process; failures are cached
 * with a timestamp so sessions on a host without stats cost one clock read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bpf/ktls_stats.h"
#include "bpf/register.h"
#include "bpf/ulp_diag.h"
#include "core/fault.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static _Atomic int map_fd = -1;
static _Atomic int64_t next_try_ns; /* 0: never tried */
static _Atomic int last_err;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long sys_bpf(int cmd, union bpf_attr *a)
{
#ifdef KTLS_FAULT
	int fault = ktls_fault_bpf(cmd);
	if (fault)
		return errno = fault, -1;
#endif
	return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int owners_fd(void)
{
	int fd = atomic_load_explicit(&map_fd, memory_order_acquire);
	if (fd >= 0)
		return fd;
	int64_t t = now_ns(), next = atomic_load(&next_try_ns);
	if (next && t < next) {
		errno = EAGAIN;
		return -1;
	}
	/* One thread tries per second; the others see EAGAIN. */
	if (!atomic_compare_exchange_strong(&next_try_ns, &next,
					    t + 1000000000))
		return errno = EAGAIN, -1;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)KTLS_BPF_OWNERS_PIN;
	fd = (int)sys_bpf(BPF_OBJ_GET, &a); /* the kernel sets O_CLOEXEC */
	if (fd < 0) {
		atomic_store(&last_err, errno);
		return -1;
	}
	int expect = -1;
	if (!atomic_compare_exchange_strong(&map_fd, &expect, fd)) {
		syscall(SYS_close, fd);
		return expect;
	}
	return fd;
}

static int cookie_of(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);
	/* Straight to the kernel: the shim interposes socket calls. */
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_COOKIE, cookie, &len))
		return errno;
	return 0;
}

static int update(int mfd, uint64_t *key, struct ktls_owner *o)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)mfd;
	a.key = (uint64_t)(uintptr_t)key;
	a.value = (uint64_t)(uintptr_t)o;
	a.flags = BPF_ANY;
	if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == 0)
		return 0;
	int e = errno;
	if (e == EBADF) {
		/* Our fd was closed behind our back: reopen later. */
		int expect = mfd;
		atomic_compare_exchange_strong(&map_fd, &expect, -1);
	}
	return e;
}

int ktls_bpf_register(int fd, unsigned version, unsigned cipher_type,
		      int tx_kernel, int rx_kernel)
{
	int mfd = owners_fd();
	if (mfd < 0)
		return errno == EAGAIN ? EAGAIN : atomic_load(&last_err);
	uint64_t cookie;
	int e = cookie_of(fd, &cookie);
	if (e)
		return e;
	struct ktls_owner o;
	struct timespec ts;
	memset(&o, 0, sizeof(o));
	o.pid = (uint32_t)getpid();
	o.fd = fd;
	o.version = (uint16_t)version;
	o.cipher_type = (uint16_t)cipher_type;
	/* Software or NIC, from the kernel (sock_diag); "kernel" when it
	 * will not say (older kernels answer only CAP_NET_ADMIN). */
	struct ktls_ulp_info ui;
	int qe = ktls_ulp_query(fd, cookie, &ui);
	ktls_ulp_modes(qe ? NULL : &ui, tx_kernel, rx_kernel, &o.tx_mode,
		       &o.rx_mode);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	o.registered_ns = (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
	/* The calling thread's name (the program's, unless it renamed threads). */
	char comm[KTLS_BPF_COMM_LEN] = { 0 };
	if (prctl(PR_GET_NAME, comm) == 0)
		memcpy(o.comm, comm, sizeof(o.comm) - 1);
	return update(mfd, &cookie, &o);
}

int ktls_bpf_unregister(int fd)
{
	int mfd = atomic_load_explicit(&map_fd, memory_order_acquire);
	if (mfd < 0)
		return ENOENT; /* never registered anything: nothing to mark */
	uint64_t cookie;
	int e = cookie_of(fd, &cookie);
	if (e)
		return e;
	struct ktls_owner o;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)mfd;
	a.key = (uint64_t)(uintptr_t)&cookie;
	a.value = (uint64_t)(uintptr_t)&o;
	if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a))
		return errno;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	o.closed = 1;
	o.closed_ns = (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
	return update(mfd, &cookie, &o);
}
