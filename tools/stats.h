/* ktls-shim-stats's verbs, one file each (tools/meson.build). */
#ifndef KTLS_TOOLS_STATS_H
#define KTLS_TOOLS_STATS_H

#include <stddef.h>
#include <stdio.h>

#include "bpf/ktls_stats.h"

#define ME "ktls-shim-stats"

/* "ktls-shim-stats: <message>" on stderr; returns 1. */
int stats_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* check: one line per thing kTLS needs here; 0 where kTLS can work. */
int stats_check(void);

/* check's kernel half (stats_check_kernel.c): each prints its lines;
 * those returning int return 1 where kTLS cannot work. */
enum check_status { CHECK_OK, CHECK_WARN, CHECK_FAIL, CHECK_INFO };
void check_line(enum check_status st, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void check_tls_module(void);
int check_ulp_and_aeads(void);
int check_ebpf(void);

/* The ktls_totals fields, in output order. */
#define TOTALS_FIELDS(X)                                                       \
	X(sockets) X(tx_bytes) X(tx_calls) X(tx_sw_bytes) X(tx_device_bytes)   \
	X(tx_ctrl_bytes) X(tx_errors) X(rx_bytes) X(rx_calls)                 \
	X(rx_ctrl_bytes) X(rx_errors)

/* One read of the pinned maps (stats_snap.c); every view renders it. */
struct stats_row {
	__u64 cookie;
	struct ktls_sock_stats s;
	struct ktls_owner o; /* zero unless owned */
	int owned;           /* the shim registered the socket */
	char comm[3 * KTLS_BPF_COMM_LEN + 1]; /* valid UTF-8 */
};
struct stats_pid {
	__u32 pid;
	struct ktls_totals t;
};
struct stats_snap {
	int loaded; /* the maps are pinned */
	struct stats_row *rows;
	size_t nrows;
	struct stats_pid *pids;
	size_t npids;
	struct ktls_totals live, closed, all;
};

/* 0, or -1 with errno where the accounting is not loaded (loaded = 0) or
 * memory ran out. */
int stats_snap_read(struct stats_snap *sn);
void stats_snap_free(struct stats_snap *sn);

/* comm (up to KTLS_BPF_COMM_LEN bytes, any bytes) as valid UTF-8: each
 * byte that is not part of a valid sequence becomes U+FFFD. */
void stats_utf8(const char *in, size_t n, char *out, size_t outlen);

const char *stats_mode_name(unsigned m);
const char *stats_version_name(unsigned v);
const char *stats_cipher_name(unsigned kernel_type);

/* The views (stats_show.c, stats_prom.c). arg: the struct stats_snap. */
extern const char *stats_tls_stat_path; /* /proc/net/tls_stat; tests */
int stats_render_table(FILE *f, const void *arg);
int stats_render_json(FILE *f, const void *arg);
int stats_render_prometheus(FILE *f, const void *arg);

/* Renders into path through a temporary file beside it and rename(), so
 * a reader (node_exporter's textfile collector) never sees half a file.
 * path NULL: stdout. 0, or 1 after a one-line error. */
int stats_write(const char *path, int (*render)(FILE *, const void *),
		const void *arg);

#endif
