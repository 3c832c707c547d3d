/*
 * Per-fd state of the sockets the shim watches, indexed by fd number, and a
 * byte map beside it so the interposed read()/close()/sendfile() pay one
 * byte load on every other fd. Entries hold values, so a program racing
 * close() against I/O on the same fd cannot make us touch freed memory; the
 * one exception is the SSL pointer kept for sendfile emulation, dropped
 * when OpenSSL frees the SSL (an ex_data free callback), on close() and at
 * the next handshake on the fd.
 */
#ifndef KTLS_SHIM_FDTAB_H
#define KTLS_SHIM_FDTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/visibility.h"

enum {
	KTLS_FD_TLS = 1u << 0,       /* a TLS session the shim has seen */
	KTLS_FD_ULP = 1u << 1,       /* "tls" ULP attached */
	KTLS_FD_TX = 1u << 2,        /* TX in the kernel */
	KTLS_FD_RX = 1u << 3,        /* RX in the kernel */
	KTLS_FD_FINAL = 1u << 4,     /* post-handshake check done */
	KTLS_FD_POISONED = 1u << 5,  /* unsafe to send: refuse all writes */
	KTLS_FD_ULP_TRIED = 1u << 6,
	KTLS_FD_TX_TRIED = 1u << 7,
	KTLS_FD_RX_TRIED = 1u << 8,
	KTLS_FD_RX_SHIM = 1u << 9,   /* RX moved by the shim's engine */
	KTLS_FD_RX_SHIM13 = 1u << 12, /* ... TLS 1.3: recvmsg() adds the type */
	KTLS_FD_NO_SSL = 1u << 13,   /* userspace TX, SSL not kept: no sendfile */
	KTLS_FD_REKEY_DUE = 1u << 10, /* TX key used up: send a KeyUpdate */
	KTLS_FD_TX_SHIM = 1u << 11,  /* TX moved by the shim's engine */
	KTLS_FD_OWN = 1u << 14,      /* ... with the shim's own record layer
				      * (libssl without kTLS) */
};

struct ktls_fd {
	/* KTLS_FD_TLS only through ktls_fd_set_tls(), or the hooks miss it */
	_Atomic uint32_t flags;
	_Atomic uint16_t version;
	_Atomic uint16_t cipher_type; /* TLS_CIPHER_* */
	_Atomic uint8_t ulp_err, tx_err, rx_err; /* errno of failed attempts */
	_Atomic uint8_t tx_reason, rx_reason;    /* enum ktls_reason */
	_Atomic uint64_t tx_bytes, rx_bytes;
	/* The SSL of a session left in userspace, for sendfile emulation;
	 * cleared when the SSL is freed, on close and at the next handshake. */
	_Atomic uintptr_t ssl;
	/* The engine's per-SSL secrets (engine.c) while a rekey may need
	 * them; cleared when the SSL is freed and on close. */
	_Atomic uintptr_t keys;
	/* TLS 1.3 TX: bytes under the current key, and after how many the
	 * shim sends a KeyUpdate (0: never). */
	_Atomic uint64_t tx_key_bytes, tx_key_limit;
	/* SO_COOKIE of the socket whose ULP was last asked for (0: unknown):
	 * tells a library's retry at a key change from a new socket. */
	_Atomic uint64_t sock_cookie;
};

/* Sockets with higher numbers are left alone (the table holds no more), so
 * the map below has one byte for each fd the shim can track. */
#define KTLS_MAX_TRACKED_FDS (1u << 20)
#define KTLS_FDMAP_MASK (KTLS_MAX_TRACKED_FDS - 1)

struct ktls_fdtab {
	_Atomic size_t size; /* 0 until ktls_fdtab_init() */
	struct ktls_fd *tab;
	/* KTLS_MAX_TRACKED_FDS bytes, indexed by fd & KTLS_FDMAP_MASK: 1
	 * whenever that fd's entry has KTLS_FD_TLS (ktls_fd_set_tls() and
	 * ktls_fd_reset() keep it so), 0 mostly otherwise. The hooks' whole
	 * test: one byte, no bounds check (an fd beyond the table or < 0
	 * lands on another fd's byte, and at worst takes the exact test).
	 * Written once by ktls_fdtab_init(), before the hooks read it. */
	_Atomic uint8_t *map;
};
/* Hidden: the hooks reach it RIP-relative, not through the GOT (a lea
 * fewer per call, bench/interpose-overhead). */
extern struct ktls_fdtab ktls_fdt KTLS_HIDDEN;

/* Maps the map and the table (lazily backed by the kernel's zero page);
 * more than KTLS_MAX_TRACKED_FDS is clamped. */
int ktls_fdtab_init(size_t max_fds);

static inline struct ktls_fd *ktls_fd_get(int fd)
{
	/* acquire pairs with the release in ktls_fdtab_init: a non-zero size
	 * means the table pointer is visible. Free on x86. */
	if ((size_t)fd >= atomic_load_explicit(&ktls_fdt.size,
					       memory_order_acquire))
		return NULL; /* also catches fd < 0, and "not initialised" */
	return &ktls_fdt.tab[fd];
}

/* The hooks' first question once the shim is on (ktls_fdtab_init() done):
 * 0 when this fd carries no session the shim tracks. Non-zero means "ask
 * ktls_fd_untracked()": another fd may share the byte. */
static inline int ktls_fd_maybe_tracked(int fd)
{
	return atomic_load_explicit(&ktls_fdt.map[(unsigned)fd &
						  KTLS_FDMAP_MASK],
				    memory_order_relaxed);
}

/* The exact answer, safe before init: 1 when the shim has nothing to do
 * with this fd. */
static inline int ktls_fd_untracked(int fd)
{
	size_t i = (unsigned)fd;
	if (i >= atomic_load_explicit(&ktls_fdt.size, memory_order_acquire))
		return 1;
	return !(atomic_load_explicit(&ktls_fdt.tab[i].flags,
				      memory_order_relaxed) &
		 KTLS_FD_TLS);
}

/* The entry when the fd carries a session the shim is tracking. */
static inline struct ktls_fd *ktls_fd_tracked(int fd)
{
	struct ktls_fd *e = ktls_fd_get(fd);
	if (e && (atomic_load_explicit(&e->flags, memory_order_relaxed) &
		  KTLS_FD_TLS))
		return e;
	return NULL;
}

/* The one way to set KTLS_FD_TLS (with more flags): also marks the fd in
 * the hooks' map. Returns the flags before. */
uint32_t ktls_fd_set_tls(struct ktls_fd *e, uint32_t more);
/* Forgets everything about the entry, KTLS_FD_TLS and its map byte too. */
void ktls_fd_reset(struct ktls_fd *e);

/* An errno for the 8-bit *_err fields: 0 stays "no error", one beyond
 * 255 (none is, today) saturates rather than wrapping to another. */
static inline uint8_t ktls_errno8(int e)
{
	return (uint8_t)(e <= 0 ? 0 : e < 256 ? e : 255);
}

#endif
