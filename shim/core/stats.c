#define _GNU_SOURCE
#include "core/stats.h"

#include <stdio.h>
#include <string.h>

struct ktls_stats ktls_stats;

void ktls_stats_session(enum ktls_reason tx, enum ktls_reason rx)
{
	enum ktls_reason r[2] = { tx, rx };
	atomic_fetch_add(&ktls_stats.sessions, 1);
	for (int d = 0; d < 2; d++) {
		if (r[d] == KTLS_R_MOVED)
			atomic_fetch_add(&ktls_stats.moved[d], 1);
		else if ((unsigned)r[d] < KTLS_R_COUNT)
			atomic_fetch_add(&ktls_stats.fallback[d][r[d]], 1);
	}
}

void ktls_stats_reset(void)
{
	memset(&ktls_stats, 0, sizeof(ktls_stats));
}

void ktls_stats_format(char *buf, unsigned long len)
{
	static const char *const dir[2] = { "tx", "rx" };
	int n = snprintf(buf, len,
			 "sessions=%lu tx_kernel=%lu rx_kernel=%lu "
			 "kernel_bytes_tx=%llu kernel_bytes_rx=%llu",
			 atomic_load(&ktls_stats.sessions),
			 atomic_load(&ktls_stats.moved[0]),
			 atomic_load(&ktls_stats.moved[1]),
			 atomic_load(&ktls_stats.bytes[0]),
			 atomic_load(&ktls_stats.bytes[1]));
	int any = 0;
	for (int d = 0; d < 2; d++) {
		for (int r = 1; r < KTLS_R_COUNT; r++) {
			unsigned long c = atomic_load(&ktls_stats.fallback[d][r]);
			if (!c || n < 0 || (unsigned long)n >= len)
				continue;
			n += snprintf(buf + n, len - (unsigned long)n, "%s%s:%s=%lu",
				      any ? " " : " fallbacks: ", dir[d],
				      ktls_reason_name((enum ktls_reason)r), c);
			any = 1;
		}
	}
	unsigned long refused = atomic_load(&ktls_stats.refused_writes);
	if (refused && n >= 0 && (unsigned long)n < len)
		n += snprintf(buf + n, len - (unsigned long)n,
			      " refused_writes=%lu", refused);
	unsigned long long zc = atomic_load(&ktls_stats.sendfile_kernel);
	if (zc && n >= 0 && (unsigned long)n < len)
		n += snprintf(buf + n, len - (unsigned long)n,
			      " sendfile_kernel_bytes=%llu", zc);
	unsigned long long emul = atomic_load(&ktls_stats.sendfile_emulated);
	if (emul && n >= 0 && (unsigned long)n < len)
		n += snprintf(buf + n, len - (unsigned long)n,
			      " sendfile_emulated_bytes=%llu", emul);
	unsigned long shim = atomic_load(&ktls_stats.tx_shim);
	if (shim && n >= 0 && (unsigned long)n < len)
		n += snprintf(buf + n, len - (unsigned long)n,
			      " tx_kernel_by_shim=%lu", shim);
	shim = atomic_load(&ktls_stats.rx_shim);
	if (shim && n >= 0 && (unsigned long)n < len)
		n += snprintf(buf + n, len - (unsigned long)n,
			      " rx_kernel_by_shim=%lu", shim);
	unsigned long rk[2] = { atomic_load(&ktls_stats.rekeys_tx),
				atomic_load(&ktls_stats.rekeys_rx) };
	if ((rk[0] || rk[1]) && n >= 0 && (unsigned long)n < len)
		snprintf(buf + n, len - (unsigned long)n,
			 " rekeys_tx=%lu rekeys_rx=%lu", rk[0], rk[1]);
}
