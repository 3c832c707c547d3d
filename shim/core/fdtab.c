#define _GNU_SOURCE
#include "core/fdtab.h"

#include <sys/mman.h>

struct ktls_fdtab ktls_fdt;

int ktls_fdtab_init(size_t max_fds)
{
	if (max_fds == 0)
		return -1;
	/* MAP_NORESERVE: pages are only backed once an fd that high is used
	 * for TLS, so a server with a 1M fd limit costs nothing up front. */
	void *p = mmap(NULL, max_fds * sizeof(struct ktls_fd),
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	ktls_fdt.tab = p;
	atomic_store_explicit(&ktls_fdt.size, max_fds, memory_order_release);
	return 0;
}

void ktls_fd_reset(struct ktls_fd *e)
{
	atomic_store(&e->flags, 0);
	atomic_store(&e->version, 0);
	atomic_store(&e->cipher_type, 0);
	atomic_store(&e->ulp_err, 0);
	atomic_store(&e->tx_err, 0);
	atomic_store(&e->rx_err, 0);
	atomic_store(&e->tx_reason, 0);
	atomic_store(&e->rx_reason, 0);
	atomic_store(&e->tx_bytes, 0);
	atomic_store(&e->rx_bytes, 0);
	atomic_store(&e->ssl, 0);
	atomic_store(&e->keys, 0);
	atomic_store(&e->tx_key_bytes, 0);
	atomic_store(&e->tx_key_limit, 0);
}
