/* The public query of include/ktls_shim.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/tls.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fdtab.h"
#include "core/reason.h"
#include "kernel/install.h"
#include "ktls_shim.h"

#ifndef KTLS_SHIM_VERSION
#define KTLS_SHIM_VERSION "unknown"
#endif

const char *ktls_shim_version(void)
{
	return KTLS_SHIM_VERSION;
}

int ktls_shim_fd_info(int fd, struct ktls_shim_fd_info *info)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOTSOCK;
		return -1;
	}
	memset(info, 0, sizeof(*info));
	uint16_t v, c;
	if (ktls_query_dir(&ktls_sockops_sys, fd, TLS_TX, &v, &c) == 1) {
		info->kernel |= KTLS_SHIM_TX;
		info->version = v;
		info->cipher = c;
	}
	if (ktls_query_dir(&ktls_sockops_sys, fd, TLS_RX, &v, &c) == 1) {
		info->kernel |= KTLS_SHIM_RX;
		info->version = v;
		info->cipher = c;
	}
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (e && (atomic_load(&e->flags) & KTLS_FD_FINAL)) {
		info->tracked = 1;
		info->tx_state = ktls_reason_name(atomic_load(&e->tx_reason));
		info->rx_state = ktls_reason_name(atomic_load(&e->rx_reason));
		if (!strcmp(info->tx_state, "moved"))
			info->tx_state = "kernel";
		if (!strcmp(info->rx_state, "moved"))
			info->rx_state = "kernel";
		info->kernel_tx_bytes = atomic_load(&e->tx_bytes);
		info->kernel_rx_bytes = atomic_load(&e->rx_bytes);
	}
	return 0;
}
