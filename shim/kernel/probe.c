#define _GNU_SOURCE
#include "kernel/probe.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 1: the kernel rekeys, 0: it has kTLS and does not, -1: not known yet
 * (no /proc/net/tls_stat: the tls module is not loaded, and may be once
 * the first socket asks for it, so this is asked again then). */
static int rekey_state(void)
{
	/* The rekey counters of /proc/net/tls_stat arrived with rekey itself
	 * (6.14). Raw syscalls: this may run inside the program's read() or
	 * close(), and must not recurse into the hooks. */
	static _Atomic int known = -1;
	int k = atomic_load(&known);
	if (k >= 0)
		return k;
	char buf[4096];
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/net/tls_stat",
			      O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	buf[n > 0 ? n : 0] = 0;
	k = strstr(buf, "TlsRxRekeyOk") != NULL;
	atomic_store(&known, k);
	return k;
}

int ktls_kernel_can_rekey(void)
{
	return rekey_state() == 1;
}

int ktls_kernel_cannot_rekey(void)
{
	return rekey_state() == 0;
}
