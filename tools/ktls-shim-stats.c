/*
 * ktls-shim-stats: loads, shows and unloads the eBPF per-socket kTLS
 * accounting (shim/bpf/ktls_stats.bpf.c).
 *
 *   ktls-shim-stats load          attach what the running kernel has, pin
 *                                 maps and links under /sys/fs/bpf/ktls-shim/
 *   ktls-shim-stats show [--json] one row per socket (joined with the owners
 *                                 the shim registered)
 *   ktls-shim-stats unload        remove the pins (programs detach)
 *   ktls-shim-stats check         can kTLS work here? (stats_check.c)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpf/ktls_stats.h"
#include "bpf/loader.h"
#include "stats.h"

static int verbose;

int stats_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, ME ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static int cmd_unload(void)
{
	char why[256];
	int removed = ktls_bpf_unload(why, sizeof(why));
	if (removed < 0)
		return stats_fail("%s", why);
	printf("%s\n", removed ? "unloaded" : "not loaded");
	return 0;
}

static int cmd_load(void)
{
	char why[256];
	int attached;
	switch (ktls_bpf_load(verbose, &attached, why, sizeof(why))) {
	case KTLS_BPF_LOAD_OK:
		printf("loaded: %d programs attached, pinned under %s\n",
		       attached, KTLS_BPF_PIN_DIR);
		return 0;
	case KTLS_BPF_LOAD_ALREADY:
		printf("already loaded (%s)\n", KTLS_BPF_PIN_DIR);
		return 0;
	default:
		return stats_fail("%s", why);
	}
}

static const char *mode(unsigned m)
{
	switch (m) {
	case KTLS_MODE_KERNEL: return "kernel";
	case KTLS_MODE_SW: return "sw";
	case KTLS_MODE_DEVICE: return "device";
	default: return "-";
	}
}

static const char *version(unsigned v)
{
	switch (v) {
	case 0x0303: return "TLS1.2";
	case 0x0304: return "TLS1.3";
	default: return "-";
	}
}

static const char *cipher(unsigned c)
{
	switch (c) {
	case 51: return "AES-128-GCM";
	case 52: return "AES-256-GCM";
	case 53: return "AES-128-CCM";
	case 54: return "CHACHA20-POLY1305";
	default: return "-";
	}
}

static void json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* The ktls_totals fields, in output order. */
#define TOTALS_FIELDS(X)                                                       \
	X(sockets) X(tx_bytes) X(tx_calls) X(tx_sw_bytes) X(tx_device_bytes)   \
	X(tx_ctrl_bytes) X(tx_errors) X(rx_bytes) X(rx_calls)                 \
	X(rx_ctrl_bytes) X(rx_errors)

static void totals_add(struct ktls_totals *t, const struct ktls_totals *u)
{
#define X(f) t->f += u->f;
	TOTALS_FIELDS(X)
#undef X
}

static void totals_of_row(struct ktls_totals *t, const struct ktls_sock_stats *s)
{
	struct ktls_totals u = { 1, s->tx_bytes, s->tx_calls, s->tx_sw_bytes,
				 s->tx_device_bytes, s->tx_ctrl_bytes,
				 s->tx_errors, s->rx_bytes, s->rx_calls,
				 s->rx_ctrl_bytes, s->rx_errors };
	totals_add(t, &u);
}

static void totals_json(const struct ktls_totals *t)
{
	const char *sep = "{";
#define X(f)                                                                   \
	printf("%s\"" #f "\":%llu", sep, (unsigned long long)t->f);           \
	sep = ",";
	TOTALS_FIELDS(X)
#undef X
	printf("}");
}

static void totals_line(const char *label, const struct ktls_totals *t)
{
	printf("%-20s %7llu %14llu %9llu %14llu %9llu\n", label,
	       (unsigned long long)t->sockets, (unsigned long long)t->tx_bytes,
	       (unsigned long long)t->tx_calls, (unsigned long long)t->rx_bytes,
	       (unsigned long long)t->rx_calls);
}

static void show_row(int json, int n, __u64 key,
		     const struct ktls_sock_stats *s, const struct ktls_owner *o,
		     int owned)
{
	const char *txp = s->tx_device ? "device" : s->tx_sw ? "sw" : "-";
	const char *rxp = s->rx_sw ? "sw" : "-";
	if (json) {
		printf("%s\n {\"cookie\":%llu,\"pid\":%u,\"comm\":",
		       n ? "," : "", (unsigned long long)key,
		       owned ? o->pid : s->pid);
		json_str(owned ? o->comm : s->comm, KTLS_BPF_COMM_LEN);
		printf(",\"tx_path\":\"%s\",\"rx_path\":\"%s\",\"closed\":%s",
		       txp, rxp, s->closed ? "true" : "false");
#define F(x) printf(",\"" #x "\":%llu", (unsigned long long)s->x)
		F(tx_bytes); F(tx_calls); F(tx_sw_bytes);
		F(tx_device_bytes); F(tx_sendpage_bytes);
		F(tx_ctrl_bytes); F(tx_errors); F(rx_bytes);
		F(rx_calls); F(rx_splice_bytes); F(rx_ctrl_bytes);
		F(rx_errors);
#undef F
		if (owned)
			printf(",\"owner\":{\"pid\":%u,\"fd\":%d,"
			       "\"version\":\"%s\",\"cipher\":\"%s\","
			       "\"tx_mode\":\"%s\",\"rx_mode\":\"%s\","
			       "\"closed\":%s}",
			       o->pid, o->fd, version(o->version),
			       cipher(o->cipher_type), mode(o->tx_mode),
			       mode(o->rx_mode), o->closed ? "true" : "false");
		else
			printf(",\"owner\":null");
		printf("}");
		return;
	}
	char comm[KTLS_BPF_COMM_LEN + 1] = { 0 };
	memcpy(comm, owned ? o->comm : s->comm, KTLS_BPF_COMM_LEN);
	char fd[16] = "-";
	if (owned)
		snprintf(fd, sizeof(fd), "%d%s", o->fd,
			 o->closed || s->closed ? "x" : "");
	/* tx/rx: the owner's mode (sock_diag) where the shim registered
	 * the socket, else the path the programs saw. */
	printf("%-20llu %7u %-15s %5s %-6s %-17s %-8s %-8s %14llu %9llu %14llu "
	       "%9llu\n",
	       (unsigned long long)key, owned ? o->pid : s->pid, comm, fd,
	       version(o->version), cipher(o->cipher_type),
	       owned && o->tx_mode ? mode(o->tx_mode) : txp,
	       owned && o->rx_mode ? mode(o->rx_mode) : rxp,
	       (unsigned long long)s->tx_bytes, (unsigned long long)s->tx_calls,
	       (unsigned long long)s->rx_bytes, (unsigned long long)s->rx_calls);
}

static int cmd_show(int json)
{
	int sfd = bpf_obj_get(KTLS_BPF_SOCKETS_PIN);
	if (sfd < 0)
		return stats_fail("not loaded (%s: %s); run " ME " load",
			    KTLS_BPF_SOCKETS_PIN, strerror(errno));
	int ofd = bpf_obj_get(KTLS_BPF_OWNERS_PIN);
	int tfd = bpf_obj_get(KTLS_BPF_TOTALS_PIN);
	int pfd = bpf_obj_get(KTLS_BPF_PID_TOTALS_PIN);
	struct ktls_totals live = { 0 }, closed = { 0 }, all;
	__u64 key, next, *prev = NULL;
	int n = 0;
	if (json)
		printf("{\"sockets\":[");
	else
		printf("%-20s %7s %-15s %5s %-6s %-17s %-8s %-8s %14s %9s %14s "
		       "%9s\n",
		       "cookie", "pid", "comm", "fd", "tls", "cipher", "tx",
		       "rx", "tx_bytes", "tx_calls", "rx_bytes", "rx_calls");
	while (bpf_map_get_next_key(sfd, prev, &next) == 0) {
		key = next;
		prev = &key;
		struct ktls_sock_stats s;
		struct ktls_owner o;
		if (bpf_map_lookup_elem(sfd, &key, &s))
			continue;
		int owned = ofd >= 0 && bpf_map_lookup_elem(ofd, &key, &o) == 0;
		if (!owned)
			memset(&o, 0, sizeof(o));
		show_row(json, n++, key, &s, &o, owned);
		if (!s.closed) /* closed rows are in the totals map already */
			totals_of_row(&live, &s);
	}
	__u32 zero = 0;
	if (tfd >= 0)
		bpf_map_lookup_elem(tfd, &zero, &closed);
	all = live;
	totals_add(&all, &closed);
	if (json) {
		printf("%s],\n \"totals\":{\"live\":", n ? "\n" : "");
		totals_json(&live);
		printf(",\"closed\":");
		totals_json(&closed);
		printf(",\"all\":");
		totals_json(&all);
		printf("},\n \"closed_by_pid\":[");
	} else {
		if (!n)
			printf("(no kTLS sockets seen yet)\n");
		printf("\n%-20s %7s %14s %9s %14s %9s\n", "totals", "sockets",
		       "tx_bytes", "tx_calls", "rx_bytes", "rx_calls");
		totals_line("live", &live);
		totals_line("closed", &closed);
		totals_line("all", &all);
	}
	__u32 pk, pnext, *pprev = NULL;
	int np = 0;
	while (pfd >= 0 && bpf_map_get_next_key(pfd, pprev, &pnext) == 0) {
		pk = pnext;
		pprev = &pk;
		struct ktls_totals t;
		if (bpf_map_lookup_elem(pfd, &pk, &t))
			continue;
		if (json) {
			printf("%s\n  {\"pid\":%u,\"totals\":", np ? "," : "",
			       pk);
			totals_json(&t);
			printf("}");
		} else {
			char label[32];
			snprintf(label, sizeof(label), "closed, pid %u", pk);
			totals_line(label, &t);
		}
		np++;
	}
	if (json)
		printf("%s]}\n", np ? "\n " : "");
	for (int *fd = (int[]){ ofd, tfd, pfd, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	close(sfd);
	return 0;
}

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: " ME " [-v] load | show [--json] | unload | check\n");
	return rc;
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc && !strcmp(argv[i], "-v")) {
		verbose++;
		i++;
	}
	if (i >= argc)
		return usage(stderr, 2);
	const char *cmd = argv[i++];
	if (!strcmp(cmd, "load") && i == argc)
		return cmd_load();
	if (!strcmp(cmd, "unload") && i == argc)
		return cmd_unload();
	if (!strcmp(cmd, "check") && i == argc)
		return stats_check();
	if (!strcmp(cmd, "show")) {
		int json = i < argc && !strcmp(argv[i], "--json");
		if (i + json != argc)
			return usage(stderr, 2);
		return cmd_show(json);
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help"))
		return usage(stdout, 0);
	return usage(stderr, 2);
}
