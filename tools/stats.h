/* ktls-shim-stats's verbs, one file each (tools/meson.build). */
#ifndef KTLS_TOOLS_STATS_H
#define KTLS_TOOLS_STATS_H

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

#endif
