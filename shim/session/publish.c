#define _GNU_SOURCE
#include "session/publish.h"

#include <stdatomic.h>

#include "bpf/publish.h"
#include "core/log.h"
#include "core/stats.h"

static const char *outcome(enum ktls_reason r)
{
	return r == KTLS_R_MOVED ? "kernel" : ktls_reason_name(r);
}

void ktls_session_publish(int fd, struct ktls_fd *e, uint16_t version,
			  enum ktls_cipher kc, const enum ktls_reason r[2],
			  uint32_t extra_flags, const char *cipher_name,
			  const char *engine, const char *suffix)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	unsigned ct = d ? d->kernel_type : 0;
	int tx = r[0] == KTLS_R_MOVED, rx = r[1] == KTLS_R_MOVED;
	if (e) {
		atomic_store(&e->version, version);
		atomic_store(&e->cipher_type, (uint16_t)ct);
		atomic_store(&e->tx_reason, (uint8_t)r[0]);
		atomic_store(&e->rx_reason, (uint8_t)r[1]);
		ktls_fd_set_tls(e, extra_flags | (tx ? KTLS_FD_TX : 0) |
				       (rx ? KTLS_FD_RX : 0));
	}
	ktls_stats_session(r[0], r[1]);
	if (e && (tx || rx))
		ktls_bpf_publish(fd, version, ct, tx, rx);
	ktls_dbg("session fd=%d %s %s tx=%s rx=%s engine=%s "
		 "verified=getsockopt%s",
		 fd, ktls_version_name(version),
		 cipher_name ? cipher_name : "none", outcome(r[0]),
		 outcome(r[1]), engine, suffix ? suffix : "");
}
