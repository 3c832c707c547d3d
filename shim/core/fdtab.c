#define _GNU_SOURCE
#include "core/fdtab.h"

#include <sys/mman.h>

struct ktls_fdtab ktls_fdt;

int ktls_fdtab_init(size_t max_fds)
{
	if (max_fds == 0)
		return -1;
	if (max_fds > KTLS_MAX_TRACKED_FDS)
		max_fds = KTLS_MAX_TRACKED_FDS; /* the map's one byte per fd */
	/* MAP_NORESERVE: pages are only backed once an fd that high is used
	 * for TLS, so a server with a 1M fd limit costs nothing up front.
	 * The map first (1 MiB, page-aligned), then the table. */
	void *p = mmap(NULL,
		       KTLS_MAX_TRACKED_FDS + max_fds * sizeof(struct ktls_fd),
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	ktls_fdt.map = p;
	ktls_fdt.tab = (struct ktls_fd *)((char *)p + KTLS_MAX_TRACKED_FDS);
	atomic_store_explicit(&ktls_fdt.size, max_fds, memory_order_release);
	return 0;
}

/* The entry's byte in the map, or NULL for an entry outside the table. */
static _Atomic uint8_t *map_byte(struct ktls_fd *e)
{
	size_t n = atomic_load_explicit(&ktls_fdt.size, memory_order_acquire);
	uintptr_t a = (uintptr_t)e, t = (uintptr_t)ktls_fdt.tab;
	if (!n || a < t || (a - t) / sizeof(*e) >= n)
		return NULL;
	return &ktls_fdt.map[(a - t) / sizeof(*e)];
}

uint32_t ktls_fd_set_tls(struct ktls_fd *e, uint32_t more)
{
	uint32_t old = atomic_fetch_or(&e->flags, KTLS_FD_TLS | more);
	/* After the flag: see ktls_fd_reset. */
	_Atomic uint8_t *m = map_byte(e);
	if (m)
		atomic_store(m, 1);
	return old;
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
	atomic_store(&e->sock_cookie, 0);
	/* A ktls_fd_set_tls() on the same fd racing this one (a program
	 * closing a socket another thread is handshaking on) must not end
	 * with the flag set and the byte clear, where the hooks would stop
	 * seeing the session: clear the byte, then look at the flag again.
	 * All seq_cst: whichever of the two stores the byte last saw the
	 * other's flag. A byte left set costs only the exact test. */
	_Atomic uint8_t *m = map_byte(e);
	if (!m)
		return;
	atomic_store(m, 0);
	if (atomic_load(&e->flags) & KTLS_FD_TLS)
		atomic_store(m, 1);
}
