#define _GNU_SOURCE
#include "kernel/zerocopy_ro.h"

#include "kernel/uapi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>


int ktls_tx_zerocopy_ro(const struct ktls_sockops *ops, int fd)
{
	int one = 1, got = 0;
	socklen_t len = sizeof(got);
	if (ops->setsockopt(fd, SOL_TLS, TLS_TX_ZEROCOPY_RO, &one,
			    sizeof(one)) != 0)
		return errno ? -errno : -EIO;
	/* Read back: a kernel that silently ignored it must not be
	 * reported as having taken it. */
	if (ops->getsockopt(fd, SOL_TLS, TLS_TX_ZEROCOPY_RO, &got, &len) != 0)
		return errno ? -errno : -EIO;
	return len == sizeof(got) && got == 1 ? 1 : -EPROTO;
}

const char *ktls_tx_zerocopy_ro_name(int rc, char *buf, size_t len)
{
	if (rc == 1)
		return "on";
	const char *n = strerrorname_np(-rc);
	snprintf(buf, len, "refused-%s", n ? n : "unknown");
	return buf;
}
