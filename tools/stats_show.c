/*
 * ktls-shim-stats show: the table (one row per socket, joined with the
 * owners the shim registered, then totals) and --json (json-c, so that
 * escaping is the library's and every string is valid UTF-8).
 */
#define _GNU_SOURCE
#include <string.h>

#include <json-c/json.h>

#include "stats.h"

static void totals_line(FILE *f, const char *label, const struct ktls_totals *t)
{
	fprintf(f, "%-20s %7llu %14llu %9llu %14llu %9llu\n", label,
		(unsigned long long)t->sockets, (unsigned long long)t->tx_bytes,
		(unsigned long long)t->tx_calls,
		(unsigned long long)t->rx_bytes,
		(unsigned long long)t->rx_calls);
}

static void table_row(FILE *f, const struct stats_row *r)
{
	const struct ktls_sock_stats *s = &r->s;
	const struct ktls_owner *o = &r->o;
	const char *txp = s->tx_device ? "device" : s->tx_sw ? "sw" : "-";
	const char *rxp = s->rx_sw ? "sw" : "-";
	char fd[16] = "-";
	if (r->owned)
		snprintf(fd, sizeof(fd), "%d%s", o->fd,
			 o->closed || s->closed ? "x" : "");
	/* tx/rx: the owner's mode (sock_diag) where the shim registered
	 * the socket, else the path the programs saw. */
	fprintf(f, "%-20llu %7u %-15s %5s %-6s %-17s %-8s %-8s %14llu %9llu "
		"%14llu %9llu\n",
		(unsigned long long)r->cookie, r->owned ? o->pid : s->pid,
		r->comm, fd, stats_version_name(o->version),
		stats_cipher_name(o->cipher_type),
		r->owned && o->tx_mode ? stats_mode_name(o->tx_mode) : txp,
		r->owned && o->rx_mode ? stats_mode_name(o->rx_mode) : rxp,
		(unsigned long long)s->tx_bytes, (unsigned long long)s->tx_calls,
		(unsigned long long)s->rx_bytes, (unsigned long long)s->rx_calls);
}

int stats_render_table(FILE *f, const void *arg)
{
	const struct stats_snap *sn = arg;
	fprintf(f, "%-20s %7s %-15s %5s %-6s %-17s %-8s %-8s %14s %9s %14s "
		"%9s\n", "cookie", "pid", "comm", "fd", "tls", "cipher", "tx",
		"rx", "tx_bytes", "tx_calls", "rx_bytes", "rx_calls");
	for (size_t i = 0; i < sn->nrows; i++)
		table_row(f, &sn->rows[i]);
	if (!sn->nrows)
		fprintf(f, "(no kTLS sockets seen yet)\n");
	fprintf(f, "\n%-20s %7s %14s %9s %14s %9s\n", "totals", "sockets",
		"tx_bytes", "tx_calls", "rx_bytes", "rx_calls");
	totals_line(f, "live", &sn->live);
	totals_line(f, "closed", &sn->closed);
	totals_line(f, "all", &sn->all);
	for (size_t i = 0; i < sn->npids; i++) {
		char label[32];
		snprintf(label, sizeof(label), "closed, pid %u",
			 sn->pids[i].pid);
		totals_line(f, label, &sn->pids[i].t);
	}
	return 0;
}

static void add_u64(json_object *o, const char *k, unsigned long long v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static json_object *totals_json(const struct ktls_totals *t)
{
	json_object *o = json_object_new_object();
#define X(f) add_u64(o, #f, t->f);
	TOTALS_FIELDS(X)
#undef X
	return o;
}

static json_object *owner_json(const struct ktls_owner *o)
{
	json_object *j = json_object_new_object();
	add_u64(j, "pid", o->pid);
	json_object_object_add(j, "fd", json_object_new_int(o->fd));
	add_str(j, "version", stats_version_name(o->version));
	add_str(j, "cipher", stats_cipher_name(o->cipher_type));
	add_str(j, "tx_mode", stats_mode_name(o->tx_mode));
	add_str(j, "rx_mode", stats_mode_name(o->rx_mode));
	json_object_object_add(j, "closed", json_object_new_boolean(o->closed));
	return j;
}

static json_object *row_json(const struct stats_row *r)
{
	const struct ktls_sock_stats *s = &r->s;
	json_object *j = json_object_new_object();
	add_u64(j, "cookie", r->cookie);
	add_u64(j, "pid", r->owned ? r->o.pid : s->pid);
	add_str(j, "comm", r->comm);
	add_str(j, "tx_path", s->tx_device ? "device" : s->tx_sw ? "sw" : "-");
	add_str(j, "rx_path", s->rx_sw ? "sw" : "-");
	json_object_object_add(j, "closed", json_object_new_boolean(s->closed));
#define F(x) add_u64(j, #x, s->x);
	F(tx_bytes) F(tx_calls) F(tx_sw_bytes) F(tx_device_bytes)
	F(tx_sendpage_bytes) F(tx_ctrl_bytes) F(tx_errors) F(rx_bytes)
	F(rx_calls) F(rx_splice_bytes) F(rx_ctrl_bytes) F(rx_errors)
#undef F
	json_object_object_add(j, "owner", r->owned ? owner_json(&r->o) : NULL);
	return j;
}

int stats_render_json(FILE *f, const void *arg)
{
	const struct stats_snap *sn = arg;
	json_object *root = json_object_new_object();
	json_object *rows = json_object_new_array();
	for (size_t i = 0; i < sn->nrows; i++)
		json_object_array_add(rows, row_json(&sn->rows[i]));
	json_object_object_add(root, "sockets", rows);
	json_object *tot = json_object_new_object();
	json_object_object_add(tot, "live", totals_json(&sn->live));
	json_object_object_add(tot, "closed", totals_json(&sn->closed));
	json_object_object_add(tot, "all", totals_json(&sn->all));
	json_object_object_add(root, "totals", tot);
	json_object *pids = json_object_new_array();
	for (size_t i = 0; i < sn->npids; i++) {
		json_object *p = json_object_new_object();
		add_u64(p, "pid", sn->pids[i].pid);
		json_object_object_add(p, "totals", totals_json(&sn->pids[i].t));
		json_object_array_add(pids, p);
	}
	json_object_object_add(root, "closed_by_pid", pids);
	fprintf(f, "%s\n", json_object_to_json_string_ext(root,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return 0;
}
