/*
 * What every tracked fd gets, whichever library's session it carries:
 * byte accounting (and the TX key's budget), refusing writes once a
 * connection is unsafe, and forgetting it at close.
 */
#define _GNU_SOURCE
#include "session/fd.h"

#include <errno.h>
#include <stdatomic.h>

#include "bpf/register.h"
#include "core/log.h"
#include "core/stats.h"

/* Some fd's TX key ran out of budget at least once (KTLS_FD_REKEY_DUE). */
static _Atomic int rekey_due_seen;

int ktls_fd_rekey_due_seen(void)
{
	return atomic_load_explicit(&rekey_due_seen, memory_order_relaxed);
}

void ktls_fd_count(struct ktls_fd *e, enum ktls_io io, size_t bytes)
{
	uint32_t bit = io == KTLS_IO_WRITE ? KTLS_FD_TX : KTLS_FD_RX;
	if (!bytes || !(atomic_load_explicit(&e->flags, memory_order_relaxed) &
			bit))
		return;
	atomic_fetch_add_explicit(io == KTLS_IO_WRITE ? &e->tx_bytes
						      : &e->rx_bytes,
				  bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&ktls_stats.bytes[io == KTLS_IO_WRITE ? 0 : 1],
				  bytes, memory_order_relaxed);
	uint64_t lim;
	if (io == KTLS_IO_WRITE &&
	    (lim = atomic_load_explicit(&e->tx_key_limit,
					memory_order_relaxed)) &&
	    atomic_fetch_add(&e->tx_key_bytes, bytes) + bytes >= lim) {
		atomic_fetch_or(&e->flags, KTLS_FD_REKEY_DUE);
		atomic_store_explicit(&rekey_due_seen, 1, memory_order_relaxed);
	}
}

int ktls_fd_send_refused(struct ktls_fd *e)
{
	if (!(atomic_load(&e->flags) & KTLS_FD_POISONED))
		return 0;
	atomic_fetch_add(&ktls_stats.refused_writes, 1);
	errno = EKEYEXPIRED;
	return 1;
}

void ktls_fd_close(int fd, struct ktls_fd *e)
{
	uint32_t f = atomic_load(&e->flags);
	if (f & KTLS_FD_FINAL)
		ktls_dbg("close fd=%d kernel_tx_bytes=%llu kernel_rx_bytes=%llu",
			 fd, (unsigned long long)atomic_load(&e->tx_bytes),
			 (unsigned long long)atomic_load(&e->rx_bytes));
	if (f & (KTLS_FD_TX | KTLS_FD_RX))
		ktls_bpf_unregister(fd);
	ktls_fd_reset(e);
}
