/*
 * ktls-shim-stats show --prometheus: the Prometheus text format, for
 * node_exporter's textfile collector (which has no collector for
 * /proc/net/tls_stat). The kernel's own counters are always there; the
 * eBPF accounting's only where it is loaded. Labels: program (comm),
 * direction, path (sw or device); never a socket cookie or a pid, whose
 * values would grow the series without bound.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define TLS_STAT "/proc/net/tls_stat"

/* /proc/net/tls_stat's names -> a family and its labels. A name not here
 * (a newer kernel's) goes out as ktls_kernel_tls_stat{counter="Name"}. */
static const struct {
	const char *stat, *family, *labels;
} kernel_map[] = {
	{ "TlsCurrTxSw", "ktls_kernel_current_sockets", "direction=\"tx\",path=\"sw\"" },
	{ "TlsCurrRxSw", "ktls_kernel_current_sockets", "direction=\"rx\",path=\"sw\"" },
	{ "TlsCurrTxDevice", "ktls_kernel_current_sockets", "direction=\"tx\",path=\"device\"" },
	{ "TlsCurrRxDevice", "ktls_kernel_current_sockets", "direction=\"rx\",path=\"device\"" },
	{ "TlsTxSw", "ktls_kernel_sockets_total", "direction=\"tx\",path=\"sw\"" },
	{ "TlsRxSw", "ktls_kernel_sockets_total", "direction=\"rx\",path=\"sw\"" },
	{ "TlsTxDevice", "ktls_kernel_sockets_total", "direction=\"tx\",path=\"device\"" },
	{ "TlsRxDevice", "ktls_kernel_sockets_total", "direction=\"rx\",path=\"device\"" },
	{ "TlsDecryptError", "ktls_kernel_decrypt_errors_total", "" },
	{ "TlsRxDeviceResync", "ktls_kernel_rx_device_resyncs_total", "" },
	{ "TlsDecryptRetry", "ktls_kernel_decrypt_retries_total", "" },
	{ "TlsRxNoPadViolation", "ktls_kernel_rx_no_pad_violations_total", "" },
	{ "TlsTxRekeyOk", "ktls_kernel_rekeys_total", "direction=\"tx\",result=\"ok\"" },
	{ "TlsRxRekeyOk", "ktls_kernel_rekeys_total", "direction=\"rx\",result=\"ok\"" },
	{ "TlsTxRekeyError", "ktls_kernel_rekeys_total", "direction=\"tx\",result=\"error\"" },
	{ "TlsRxRekeyError", "ktls_kernel_rekeys_total", "direction=\"rx\",result=\"error\"" },
	{ "TlsRxRekeyReceived", "ktls_kernel_rekeys_received_total", "" },
};

struct family {
	const char *name, *type, *help;
};

static const struct family kernel_families[] = {
	{ "ktls_kernel_current_sockets", "gauge", "kTLS sockets open now, by direction and path (" TLS_STAT ")." },
	{ "ktls_kernel_sockets_total", "counter", "kTLS sockets set up since boot, by direction and path (" TLS_STAT ")." },
	{ "ktls_kernel_decrypt_errors_total", "counter", "Records that failed to decrypt (TlsDecryptError)." },
	{ "ktls_kernel_rx_device_resyncs_total", "counter", "RX resyncs asked of the NIC (TlsRxDeviceResync)." },
	{ "ktls_kernel_decrypt_retries_total", "counter", "TLS 1.3 records decrypted again after a failed zero-pad guess (TlsDecryptRetry)." },
	{ "ktls_kernel_rx_no_pad_violations_total", "counter", "Records that broke TLS_RX_EXPECT_NO_PAD (TlsRxNoPadViolation)." },
	{ "ktls_kernel_rekeys_total", "counter", "TLS 1.3 key updates installed, by direction and result (6.14+)." },
	{ "ktls_kernel_rekeys_received_total", "counter", "TLS 1.3 KeyUpdate messages received (TlsRxRekeyReceived)." },
	{ "ktls_kernel_tls_stat", "untyped", "A " TLS_STAT " counter this tool does not know by name." },
};

const char *stats_tls_stat_path = TLS_STAT;

struct stat_val {
	char name[64];
	unsigned long long v;
};

/* Up to max name/value pairs of /proc/net/tls_stat; -1 if it is not
 * there (no tls module loaded, or no kTLS). */
static int read_tls_stat(struct stat_val *out, int max)
{
	FILE *f = fopen(stats_tls_stat_path, "re");
	if (!f)
		return -1;
	int n = 0;
	while (n < max && fscanf(f, "%63s %llu", out[n].name, &out[n].v) == 2)
		n++;
	fclose(f);
	return n;
}

static void header(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *family_of(const char *stat, const char **labels)
{
	for (size_t i = 0; i < sizeof(kernel_map) / sizeof(kernel_map[0]); i++)
		if (!strcmp(stat, kernel_map[i].stat)) {
			*labels = kernel_map[i].labels;
			return kernel_map[i].family;
		}
	*labels = NULL;
	return "ktls_kernel_tls_stat";
}

static void render_kernel(FILE *f)
{
	struct stat_val st[64];
	int n = read_tls_stat(st, 64);
	header(f, "ktls_kernel_tls_stat_available", "gauge",
	       "1 where " TLS_STAT " exists (the tls module is loaded).");
	fprintf(f, "ktls_kernel_tls_stat_available %d\n", n >= 0);
	for (size_t k = 0; k < sizeof(kernel_families) /
			       sizeof(kernel_families[0]); k++) {
		const struct family *fam = &kernel_families[k];
		int started = 0;
		for (int i = 0; i < n; i++) {
			const char *labels;
			if (strcmp(family_of(st[i].name, &labels), fam->name))
				continue;
			if (!started++)
				header(f, fam->name, fam->type, fam->help);
			if (!labels)
				fprintf(f, "%s{counter=\"%s\"} %llu\n",
					fam->name, st[i].name, st[i].v);
			else
				fprintf(f, "%s%s%s%s %llu\n", fam->name,
					*labels ? "{" : "", labels,
					*labels ? "}" : "", st[i].v);
		}
	}
}

/* What one program's sockets carried, summed over its rows. */
struct prog {
	const char *comm;
	unsigned long long v[12];
};

/* The per-program samples: family, labels after program, which v[]. */
enum { TX_SW, TX_DEV, RX_SW, RX_DEV, TX_CALLS, RX_CALLS, TX_CTRL, RX_CTRL,
       TX_ERR, RX_ERR, OPEN, CLOSED };
static const struct {
	const char *family, *labels;
	int idx;
} prog_samples[] = {
	{ "ktls_shim_bytes_total", "direction=\"tx\",path=\"sw\"", TX_SW },
	{ "ktls_shim_bytes_total", "direction=\"tx\",path=\"device\"", TX_DEV },
	{ "ktls_shim_bytes_total", "direction=\"rx\",path=\"sw\"", RX_SW },
	{ "ktls_shim_bytes_total", "direction=\"rx\",path=\"device\"", RX_DEV },
	{ "ktls_shim_calls_total", "direction=\"tx\"", TX_CALLS },
	{ "ktls_shim_calls_total", "direction=\"rx\"", RX_CALLS },
	{ "ktls_shim_control_bytes_total", "direction=\"tx\"", TX_CTRL },
	{ "ktls_shim_control_bytes_total", "direction=\"rx\"", RX_CTRL },
	{ "ktls_shim_errors_total", "direction=\"tx\"", TX_ERR },
	{ "ktls_shim_errors_total", "direction=\"rx\"", RX_ERR },
	{ "ktls_shim_sockets", "state=\"open\"", OPEN },
	{ "ktls_shim_sockets", "state=\"closed\"", CLOSED },
};

static const struct family prog_families[] = {
	{ "ktls_shim_bytes_total", "counter", "Application bytes through kTLS sockets, by program, direction and path (eBPF; a program's closed sockets leave when the map evicts them)." },
	{ "ktls_shim_calls_total", "counter", "kTLS send/receive calls that carried bytes, by program and direction (eBPF)." },
	{ "ktls_shim_control_bytes_total", "counter", "Bytes of non-data records (handshake, alerts), by program and direction (eBPF)." },
	{ "ktls_shim_errors_total", "counter", "kTLS send/receive calls that failed, by program and direction (eBPF)." },
	{ "ktls_shim_sockets", "gauge", "kTLS sockets in the eBPF map, by program and state." },
};

static int by_comm(const void *a, const void *b)
{
	return strcmp(((const struct stats_row *)a)->comm,
		      ((const struct stats_row *)b)->comm);
}

static void prog_add(struct prog *p, const struct stats_row *r)
{
	const struct ktls_sock_stats *s = &r->s;
	int rx_dev = s->rx_device || (r->owned && r->o.rx_mode == KTLS_MODE_DEVICE);
	p->v[TX_SW] += s->tx_sw_bytes;
	p->v[TX_DEV] += s->tx_device_bytes;
	p->v[rx_dev ? RX_DEV : RX_SW] += s->rx_bytes;
	p->v[TX_CALLS] += s->tx_calls;
	p->v[RX_CALLS] += s->rx_calls;
	p->v[TX_CTRL] += s->tx_ctrl_bytes;
	p->v[RX_CTRL] += s->rx_ctrl_bytes;
	p->v[TX_ERR] += s->tx_errors;
	p->v[RX_ERR] += s->rx_errors;
	p->v[s->closed ? CLOSED : OPEN]++;
}

/* The rows summed per program (rows sorted by comm); NULL if no memory. */
static struct prog *programs(struct stats_snap *sn, size_t *n)
{
	struct prog *p = calloc(sn->nrows ? sn->nrows : 1, sizeof(*p));
	if (!p)
		return NULL;
	qsort(sn->rows, sn->nrows, sizeof(*sn->rows), by_comm);
	*n = 0;
	for (size_t i = 0; i < sn->nrows; i++) {
		if (!*n || strcmp(p[*n - 1].comm, sn->rows[i].comm))
			p[(*n)++].comm = sn->rows[i].comm;
		prog_add(&p[*n - 1], &sn->rows[i]);
	}
	return p;
}

/* A label value: \, " and newline escaped (the text format's rules). */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void render_programs(FILE *f, const struct prog *p, size_t n)
{
	for (size_t k = 0; k < sizeof(prog_families) / sizeof(prog_families[0]);
	     k++) {
		const struct family *fam = &prog_families[k];
		header(f, fam->name, fam->type, fam->help);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < sizeof(prog_samples) /
					       sizeof(prog_samples[0]); j++) {
				if (strcmp(prog_samples[j].family, fam->name))
					continue;
				fprintf(f, "%s{program=\"", fam->name);
				label_value(f, p[i].comm);
				fprintf(f, "\",%s} %llu\n", prog_samples[j].labels,
					p[i].v[prog_samples[j].idx]);
			}
	}
}

static void render_totals(FILE *f, const struct ktls_totals *t)
{
	header(f, "ktls_shim_all_bytes_total", "counter",
	       "Application bytes through every kTLS socket the eBPF "
	       "accounting saw, open and closed, by direction.");
	fprintf(f, "ktls_shim_all_bytes_total{direction=\"tx\"} %llu\n"
		"ktls_shim_all_bytes_total{direction=\"rx\"} %llu\n",
		(unsigned long long)t->tx_bytes, (unsigned long long)t->rx_bytes);
	header(f, "ktls_shim_all_sockets_total", "counter",
	       "kTLS sockets the eBPF accounting saw, open and closed.");
	fprintf(f, "ktls_shim_all_sockets_total %llu\n",
		(unsigned long long)t->sockets);
}

int stats_render_prometheus(FILE *f, const void *arg)
{
	/* Sorting rows by program is the only change made to the snapshot. */
	struct stats_snap *sn = (struct stats_snap *)arg;
	render_kernel(f);
	header(f, "ktls_shim_ebpf_loaded", "gauge",
	       "1 where the eBPF accounting is loaded (ktls-shim-stats load).");
	fprintf(f, "ktls_shim_ebpf_loaded %d\n", sn->loaded);
	if (!sn->loaded)
		return 0;
	size_t n;
	struct prog *p = programs(sn, &n);
	if (!p)
		return stats_fail("out of memory");
	render_programs(f, p, n);
	render_totals(f, &sn->all);
	free(p);
	return 0;
}
