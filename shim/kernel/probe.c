#define _GNU_SOURCE
#include "kernel/probe.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int ktls_kernel_can_rekey(void)
{
	/* The rekey counters of /proc/net/tls_stat arrived with rekey itself
	 * (6.14). Raw syscalls: this may run inside the program's read() or
	 * close(), and must not recurse into the hooks. */
	static _Atomic int known = -1;
	int k = atomic_load(&known);
	if (k >= 0)
		return k;
	char buf[4096];
	ssize_t n = 0;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/net/tls_stat",
			      O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
		syscall(SYS_close, fd);
	}
	buf[n > 0 ? n : 0] = 0;
	k = strstr(buf, "TlsRxRekeyOk") != NULL;
	atomic_store(&known, k);
	return k;
}
