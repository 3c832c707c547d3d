/* Process-wide counters behind the exit summary line. */
#ifndef KTLS_SHIM_STATS_H
#define KTLS_SHIM_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/reason.h"

struct ktls_stats {
	atomic_ulong sessions;
	atomic_ulong moved[2];                 /* [0] tx, [1] rx */
	atomic_ulong fallback[2][KTLS_R_COUNT];
	atomic_ulong refused_writes;            /* unsafe state: refused */
	atomic_ullong bytes[2];
	atomic_ullong sendfile_emulated; /* bytes sent via SSL_write */
	atomic_ullong sendfile_kernel;   /* zero-copy: sendfile on kTLS TX */
	atomic_ulong rx_shim;            /* of moved[1]: by the shim's engine */
	atomic_ulong tx_shim;            /* of moved[0]: likewise */
	atomic_ulong rekeys_rx, rekeys_tx; /* TLS 1.3 KeyUpdates followed */
};

extern struct ktls_stats ktls_stats;

void ktls_stats_session(enum ktls_reason tx, enum ktls_reason rx);
void ktls_stats_reset(void);
/* "sessions=N tx_kernel=N rx_kernel=N fallbacks: tx:reason=N ..." */
void ktls_stats_format(char *buf, unsigned long len);

#endif
