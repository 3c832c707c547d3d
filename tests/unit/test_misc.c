#define _GNU_SOURCE
/* Unit tests of shim/core/reason.c, shim/core/stats.c and shim/core/fdtab.c. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fdtab.h"
#include "core/reason.h"
#include "core/stats.h"

/* ---- reason -------------------------------------------------------------- */

Test(reason, every_value_has_a_distinct_name)
{
	for (int r = 0; r < KTLS_R_COUNT; r++) {
		const char *n = ktls_reason_name((enum ktls_reason)r);
		cr_assert_not_null(n, "reason %d has no name", r);
		cr_assert_str_not_empty(n, "reason %d", r);
		cr_assert_str_neq(n, "unknown", "reason %d", r);
		/* Names go into "tx:NAME=N" summaries: no spaces, '=' or ':'. */
		cr_assert_eq(strpbrk(n, " =:\t\n"), NULL, "%s", n);
		for (int q = 0; q < r; q++)
			cr_assert_str_neq(n, ktls_reason_name((enum ktls_reason)q),
					  "reasons %d and %d share a name", q,
					  r);
	}
	cr_assert_str_eq(ktls_reason_name(KTLS_R_MOVED), "moved");
	cr_assert_str_eq(ktls_reason_name(KTLS_R_NO_KERNEL_TLS),
			 "kernel-has-no-tls");
}

Test(reason, out_of_range_is_unknown)
{
	cr_assert_str_eq(ktls_reason_name(KTLS_R_COUNT), "unknown");
	cr_assert_str_eq(ktls_reason_name((enum ktls_reason)(KTLS_R_COUNT + 1)),
			 "unknown");
	cr_assert_str_eq(ktls_reason_name((enum ktls_reason)1000), "unknown");
	cr_assert_str_eq(ktls_reason_name((enum ktls_reason)-1), "unknown");
}

/* ---- stats --------------------------------------------------------------- */

static void stats_setup(void)
{
	ktls_stats_reset();
}

TestSuite(stats, .init = stats_setup);

static const char *const full =
	"sessions=3 tx_kernel=1 rx_kernel=2 kernel_bytes_tx=0 "
	"kernel_bytes_rx=0 fallbacks: tx:kernel-has-no-tls=2 "
	"rx:kernel-lacks-cipher=1";

static void three_sessions(void)
{
	ktls_stats_session(KTLS_R_MOVED, KTLS_R_MOVED);
	ktls_stats_session(KTLS_R_NO_KERNEL_TLS, KTLS_R_MOVED);
	ktls_stats_session(KTLS_R_NO_KERNEL_TLS, KTLS_R_KERNEL_CIPHER);
}

Test(stats, session_counts_and_format)
{
	char buf[512];
	three_sessions();
	cr_assert_eq(atomic_load(&ktls_stats.sessions), 3);
	cr_assert_eq(atomic_load(&ktls_stats.moved[0]), 1);
	cr_assert_eq(atomic_load(&ktls_stats.moved[1]), 2);
	cr_assert_eq(atomic_load(&ktls_stats.fallback[0][KTLS_R_NO_KERNEL_TLS]),
		     2);
	cr_assert_eq(atomic_load(&ktls_stats.fallback[1][KTLS_R_KERNEL_CIPHER]),
		     1);
	ktls_stats_format(buf, sizeof(buf));
	cr_assert_not_null(strstr(buf, "sessions=3"), "%s", buf);
	cr_assert_not_null(strstr(buf, "tx_kernel=1"), "%s", buf);
	cr_assert_not_null(strstr(buf, "tx:kernel-has-no-tls=2"), "%s", buf);
	cr_assert_str_eq(buf, full);
}

Test(stats, bytes_and_refused_writes)
{
	char buf[512];
	ktls_stats_session(KTLS_R_MOVED, KTLS_R_TLS13_RX_NEEDS_ENGINE);
	atomic_fetch_add(&ktls_stats.bytes[0], 1234567890123ull);
	atomic_fetch_add(&ktls_stats.refused_writes, 4);
	ktls_stats_format(buf, sizeof(buf));
	cr_assert_str_eq(buf, "sessions=1 tx_kernel=1 rx_kernel=0 "
			      "kernel_bytes_tx=1234567890123 kernel_bytes_rx=0 "
			      "fallbacks: rx:openssl-cannot-move-tls13-rx=1 "
			      "refused_writes=4");
}

Test(stats, out_of_range_reason_ignored)
{
	char buf[256];
	ktls_stats_session((enum ktls_reason)KTLS_R_COUNT,
			   (enum ktls_reason)500);
	cr_assert_eq(atomic_load(&ktls_stats.sessions), 1);
	ktls_stats_format(buf, sizeof(buf));
	cr_assert_str_eq(buf, "sessions=1 tx_kernel=0 rx_kernel=0 "
			      "kernel_bytes_tx=0 kernel_bytes_rx=0");
}

Test(stats, reset_zeroes)
{
	char buf[256];
	three_sessions();
	atomic_fetch_add(&ktls_stats.refused_writes, 1);
	atomic_fetch_add(&ktls_stats.bytes[1], 99);
	ktls_stats_reset();
	static const struct ktls_stats zero;
	cr_assert_eq(memcmp((const void *)&ktls_stats, &zero, sizeof(zero)), 0);
	ktls_stats_format(buf, sizeof(buf));
	cr_assert_str_eq(buf, "sessions=0 tx_kernel=0 rx_kernel=0 "
			      "kernel_bytes_tx=0 kernel_bytes_rx=0");
}

Test(stats, format_truncates_safely)
{
	/* Every buffer size from 1 up: a terminated prefix of the full
	 * line, never an overrun (ASan build checks the latter). */
	three_sessions();
	atomic_fetch_add(&ktls_stats.refused_writes, 7);
	char want[512];
	ktls_stats_format(want, sizeof(want));
	size_t wl = strlen(want);
	cr_assert_not_null(strstr(want, " refused_writes=7"), "%s", want);
	for (size_t len = 1; len <= wl + 1; len++) {
		char *buf = malloc(len);
		cr_assert_not_null(buf);
		ktls_stats_format(buf, len);
		size_t got = strnlen(buf, len);
		cr_assert_lt(got, len, "len %zu: not terminated", len);
		cr_assert_eq(strncmp(buf, want, got), 0, "len %zu: '%s'", len,
			     buf);
		/* Filled up to the limit (or the full line when it fits). */
		cr_assert_eq(got, len - 1 < wl ? len - 1 : wl, "len %zu: '%s'",
			     len, buf);
		free(buf);
	}
}

/* ---- fdtab --------------------------------------------------------------- */

Test(fdtab, before_init)
{
	/* Criterion runs each test in a fresh process: no table yet. */
	cr_assert_eq(atomic_load(&ktls_fdt.size), 0);
	cr_assert_null(ktls_fd_get(0));
	cr_assert_null(ktls_fd_tracked(0));
}

Test(fdtab, init_zero_refused)
{
	cr_assert_eq(ktls_fdtab_init(0), -1);
	cr_assert_null(ktls_fd_get(0));
}

Test(fdtab, bounds)
{
	cr_assert_eq(ktls_fdtab_init(1024), 0);
	cr_assert_eq(atomic_load(&ktls_fdt.size), 1024);
	cr_assert_null(ktls_fd_get(-1));
	cr_assert_null(ktls_fd_get(-1024));
	cr_assert_null(ktls_fd_get(1024));
	cr_assert_null(ktls_fd_get(1 << 30));
	cr_assert_not_null(ktls_fd_get(0));
	cr_assert_not_null(ktls_fd_get(5));
	cr_assert_not_null(ktls_fd_get(1023));
	cr_assert_eq(ktls_fd_get(5), &ktls_fdt.tab[5]);
	cr_assert_eq(ktls_fd_get(1023), &ktls_fdt.tab[1023]);
	/* The last entry is writable (the whole table is mapped). */
	atomic_store(&ktls_fd_get(1023)->tx_bytes, 1);
	cr_assert_eq(atomic_load(&ktls_fdt.tab[1023].tx_bytes), 1);
}

Test(fdtab, tracked_needs_tls_flag)
{
	cr_assert_eq(ktls_fdtab_init(1024), 0);
	struct ktls_fd *e = ktls_fd_get(5);
	cr_assert_not_null(e);
	cr_assert_eq(atomic_load(&e->flags), 0, "a new entry is zero");
	cr_assert_null(ktls_fd_tracked(5));
	atomic_fetch_or(&e->flags, KTLS_FD_ULP | KTLS_FD_TX | KTLS_FD_RX);
	cr_assert_null(ktls_fd_tracked(5), "tracked only with KTLS_FD_TLS");
	atomic_fetch_or(&e->flags, KTLS_FD_TLS);
	cr_assert_eq(ktls_fd_tracked(5), e);
	cr_assert_null(ktls_fd_tracked(6));
	cr_assert_null(ktls_fd_tracked(-1));
	cr_assert_null(ktls_fd_tracked(1024));
}

Test(fdtab, reset_zeroes)
{
	cr_assert_eq(ktls_fdtab_init(1024), 0);
	struct ktls_fd *e = ktls_fd_get(5);
	memset((void *)e, 0xff, sizeof(*e));
	/* Neighbours are left alone. */
	struct ktls_fd *n = ktls_fd_get(6);
	atomic_store(&n->flags, KTLS_FD_TLS);
	ktls_fd_reset(e);
	cr_assert_eq(atomic_load(&e->flags), 0);
	cr_assert_eq(atomic_load(&e->version), 0);
	cr_assert_eq(atomic_load(&e->cipher_type), 0);
	cr_assert_eq(atomic_load(&e->ulp_err), 0);
	cr_assert_eq(atomic_load(&e->tx_err), 0);
	cr_assert_eq(atomic_load(&e->rx_err), 0);
	cr_assert_eq(atomic_load(&e->tx_reason), 0);
	cr_assert_eq(atomic_load(&e->rx_reason), 0);
	cr_assert_eq(atomic_load(&e->tx_bytes), 0);
	cr_assert_eq(atomic_load(&e->rx_bytes), 0);
	cr_assert_null(ktls_fd_tracked(5));
	cr_assert_eq(ktls_fd_tracked(6), n);
}

/* The hooks' map (interpose/hooks_libc.c): set with KTLS_FD_TLS, cleared by
 * reset, one byte per trackable fd; other fds share a byte and get the
 * exact test. */
Test(fdtab, map_follows_tls_flag)
{
	cr_assert_eq(ktls_fdtab_init(1024), 0);
	struct ktls_fd *e = ktls_fd_get(7);
	cr_assert_eq(ktls_fd_maybe_tracked(7), 0, "a new table: all clear");
	atomic_fetch_or(&e->flags, KTLS_FD_ULP);
	uint32_t old = ktls_fd_set_tls(e, KTLS_FD_TX);
	cr_assert_eq(old, KTLS_FD_ULP, "returns the flags before");
	cr_assert_eq(atomic_load(&e->flags),
		     KTLS_FD_ULP | KTLS_FD_TLS | KTLS_FD_TX);
	cr_assert_neq(ktls_fd_maybe_tracked(7), 0);
	cr_assert_eq(ktls_fd_maybe_tracked(6), 0, "neighbours left alone");
	cr_assert_eq(ktls_fd_maybe_tracked(8), 0);
	cr_assert_eq(ktls_fd_untracked(7), 0);
	/* Beyond the table (and < 0): the same byte as some trackable fd,
	 * but the exact test says untracked. */
	cr_assert_neq(ktls_fd_maybe_tracked(7 + KTLS_MAX_TRACKED_FDS), 0);
	cr_assert_eq(ktls_fd_untracked(7 + KTLS_MAX_TRACKED_FDS), 1);
	cr_assert_eq(ktls_fd_maybe_tracked(-1),
		     ktls_fd_maybe_tracked(KTLS_FDMAP_MASK));
	cr_assert_eq(ktls_fd_untracked(-1), 1);
	ktls_fd_reset(e);
	cr_assert_eq(ktls_fd_maybe_tracked(7), 0, "reset clears the byte");
	cr_assert_eq(ktls_fd_untracked(7), 1);
	/* An entry outside the table is not the table's to mark. */
	struct ktls_fd local = { 0 };
	ktls_fd_set_tls(&local, 0);
	ktls_fd_reset(&local);
	cr_assert_eq(atomic_load(&local.flags), 0);
}

Test(fdtab, table_clamped_to_map)
{
	cr_assert_eq(ktls_fdtab_init((size_t)KTLS_MAX_TRACKED_FDS * 4), 0);
	cr_assert_eq(atomic_load(&ktls_fdt.size), KTLS_MAX_TRACKED_FDS);
	struct ktls_fd *last = ktls_fd_get(KTLS_FDMAP_MASK);
	ktls_fd_set_tls(last, 0);
	cr_assert_neq(ktls_fd_maybe_tracked(KTLS_FDMAP_MASK), 0);
	cr_assert_eq(ktls_fd_maybe_tracked(0), 0);
	cr_assert_null(ktls_fd_get(KTLS_MAX_TRACKED_FDS));
}
