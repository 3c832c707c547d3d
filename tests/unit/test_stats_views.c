#define _GNU_SOURCE
/* Unit tests of ktls-shim-stats show's views (tools/stats_show.c,
 * stats_prom.c, stats_snap.c) over a made-up snapshot: the eBPF maps need
 * a kTLS kernel, the rendering does not. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <iconv.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "stats.h"

#define FFFD "\xef\xbf\xbd"

static char *render(int (*fn)(FILE *, const void *), const void *arg)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	cr_assert_eq(fn(f, arg), 0);
	fclose(f);
	return buf;
}

/* glibc's iconv refuses an invalid sequence (EILSEQ): a check of UTF-8
 * that is not ours. */
static int valid_utf8(const char *s)
{
	iconv_t cd = iconv_open("UTF-8", "UTF-8");
	size_t inleft = strlen(s), outleft = inleft + 16;
	char *out = malloc(outleft), *o = out, *in = (char *)s;
	int ok = iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1;
	iconv_close(cd);
	free(out);
	return ok;
}

static void utf8(const char *in, size_t n, const char *want)
{
	char out[3 * KTLS_BPF_COMM_LEN + 1];
	stats_utf8(in, n, out, sizeof(out));
	cr_assert_str_eq(out, want, "%s", in);
}

Test(views, comm_becomes_valid_utf8)
{
	utf8("nginx", 16, "nginx");
	utf8("caf\xc3\xa9", 16, "caf\xc3\xa9");            /* é kept */
	utf8("\xff" "a", 16, FFFD "a");
	utf8("ab\xc3", 16, "ab" FFFD);                      /* cut by the kernel */
	utf8("\xc0\xaf", 16, FFFD FFFD);                    /* overlong '/' */
	utf8("\xed\xa0\x80", 16, FFFD FFFD FFFD);           /* surrogate */
	utf8("\xf4\x90\x80\x80", 16, FFFD FFFD FFFD FFFD);  /* > U+10FFFF */
	utf8("\xf0\x9f\x94\x92x", 16, "\xf0\x9f\x94\x92x"); /* 4 bytes */
	utf8("0123456789abcdefXYZ", 16, "0123456789abcdef"); /* no NUL: n */
	char all[16];
	for (int i = 0; i < 16; i++)
		all[i] = (char)(0x80 + i);
	char out[3 * KTLS_BPF_COMM_LEN + 1];
	stats_utf8(all, 16, out, sizeof(out));
	cr_assert(valid_utf8(out));
	cr_assert_eq(strlen(out), 48);
}

/* Two sockets of nginx (one closed, on the NIC), one of a program whose
 * comm holds a quote, a backslash and bytes that are no UTF-8. */
static struct stats_snap *fake_snap(void)
{
	static struct stats_row rows[3];
	static struct stats_snap sn;
	memset(rows, 0, sizeof(rows));
	rows[0].cookie = 11;
	rows[0].s = (struct ktls_sock_stats){ .tx_bytes = 100, .tx_calls = 2,
		.tx_sw_bytes = 100, .rx_bytes = 50, .rx_calls = 1, .pid = 7,
		.tx_sw = 1, .rx_sw = 1, .comm = "nginx" };
	rows[0].owned = 1;
	rows[0].o = (struct ktls_owner){ .pid = 7, .fd = 5, .version = 0x0303,
		.cipher_type = 51, .tx_mode = KTLS_MODE_SW,
		.rx_mode = KTLS_MODE_SW, .comm = "nginx" };
	rows[1].cookie = 12;
	rows[1].s = (struct ktls_sock_stats){ .tx_bytes = 1000, .tx_calls = 1,
		.tx_device_bytes = 1000, .rx_bytes = 7, .rx_calls = 1,
		.tx_ctrl_bytes = 24, .rx_errors = 1, .pid = 8, .tx_device = 1,
		.rx_device = 1, .closed = 1, .comm = "nginx" };
	rows[2].cookie = 13;
	rows[2].s = (struct ktls_sock_stats){ .rx_bytes = 3, .rx_calls = 1,
		.rx_sw = 1, .pid = 9 };
	memcpy(rows[2].s.comm, "a\"b\\c\xff\xc3", 8);
	for (int i = 0; i < 3; i++)
		stats_utf8(rows[i].owned ? rows[i].o.comm : rows[i].s.comm,
			   KTLS_BPF_COMM_LEN, rows[i].comm,
			   sizeof(rows[i].comm));
	sn = (struct stats_snap){ .loaded = 1, .rows = rows, .nrows = 3 };
	sn.all = (struct ktls_totals){ .sockets = 3, .tx_bytes = 1100,
				       .rx_bytes = 60 };
	return &sn;
}

Test(views, json_is_valid_utf8_and_parses)
{
	char *out = render(stats_render_json, fake_snap());
	cr_assert(valid_utf8(out), "%s", out);
	json_object *j = json_tokener_parse(out);
	cr_assert_not_null(j, "%s", out);
	json_object *rows = json_object_object_get(j, "sockets");
	cr_assert_eq(json_object_array_length(rows), 3);
	json_object *odd = json_object_array_get_idx(rows, 2);
	cr_assert_str_eq(json_object_get_string(
		json_object_object_get(odd, "comm")), "a\"b\\c" FFFD FFFD);
	cr_assert(json_object_is_type(json_object_object_get(odd, "owner"),
				      json_type_null));
	json_object *first = json_object_array_get_idx(rows, 0);
	json_object *owner = json_object_object_get(first, "owner");
	cr_assert_str_eq(json_object_get_string(
		json_object_object_get(owner, "version")), "TLS1.2");
	cr_assert_eq(json_object_get_uint64(
		json_object_object_get(first, "tx_bytes")), 100);
	json_object_put(j);
	free(out);
}

static char *tls_stat_file(const char *text)
{
	static char path[] = "/tmp/ktls-views-XXXXXX";
	strcpy(path, "/tmp/ktls-views-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Every line: a HELP or TYPE comment, or name{labels} value. */
static void assert_text_format(const char *out)
{
	regex_t sample;
	cr_assert_eq(regcomp(&sample, "^[a-z_]+(\\{[a-z_]+=\"([^\"\\\\]|\\\\.)*\""
			     "(,[a-z_]+=\"([^\"\\\\]|\\\\.)*\")*\\})? [0-9]+$",
			     REG_EXTENDED | REG_NOSUB), 0);
	char *copy = strdup(out), *save, *line;
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		cr_assert(!strncmp(line, "# HELP ", 7) ||
				  !strncmp(line, "# TYPE ", 7) ||
				  regexec(&sample, line, 0, NULL, 0) == 0,
			  "bad line: %s", line);
	free(copy);
	regfree(&sample);
}

Test(views, prometheus_kernel_and_programs)
{
	stats_tls_stat_path = tls_stat_file(
		"TlsCurrTxSw                     \t1\nTlsTxSw 5\nTlsRxDevice 2\n"
		"TlsFutureThing 9\n");
	char *out = render(stats_render_prometheus, fake_snap());
	unlink(stats_tls_stat_path);
	assert_text_format(out);
	cr_assert(valid_utf8(out), "%s", out);
	static const char *const want[] = {
		"\nktls_kernel_tls_stat_available 1\n",
		"\n# TYPE ktls_kernel_current_sockets gauge\n"
		"ktls_kernel_current_sockets{direction=\"tx\",path=\"sw\"} 1\n",
		"\n# TYPE ktls_kernel_sockets_total counter\n"
		"ktls_kernel_sockets_total{direction=\"tx\",path=\"sw\"} 5\n"
		"ktls_kernel_sockets_total{direction=\"rx\",path=\"device\"} 2\n",
		"\nktls_kernel_tls_stat{counter=\"TlsFutureThing\"} 9\n",
		"\nktls_shim_ebpf_loaded 1\n",
		"\nktls_shim_bytes_total{program=\"nginx\",direction=\"tx\",path=\"sw\"} 100\n"
		"ktls_shim_bytes_total{program=\"nginx\",direction=\"tx\",path=\"device\"} 1000\n"
		"ktls_shim_bytes_total{program=\"nginx\",direction=\"rx\",path=\"sw\"} 50\n"
		"ktls_shim_bytes_total{program=\"nginx\",direction=\"rx\",path=\"device\"} 7\n",
		"\nktls_shim_bytes_total{program=\"a\\\"b\\\\c" FFFD FFFD "\",direction=\"rx\",path=\"sw\"} 3\n",
		"\nktls_shim_control_bytes_total{program=\"nginx\",direction=\"tx\"} 24\n",
		"\nktls_shim_errors_total{program=\"nginx\",direction=\"rx\"} 1\n",
		"\nktls_shim_sockets{program=\"nginx\",state=\"open\"} 1\n"
		"ktls_shim_sockets{program=\"nginx\",state=\"closed\"} 1\n",
		"\nktls_shim_all_bytes_total{direction=\"tx\"} 1100\n",
		"\nktls_shim_all_sockets_total 3\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_not_null(strstr(out, want[i]), "missing %s in:\n%s",
				   want[i], out);
	/* Never a label per socket or process. */
	cr_assert_null(strstr(out, "cookie"));
	cr_assert_null(strstr(out, "pid"));
	free(out);
}

Test(views, prometheus_without_kernel_counters_or_ebpf)
{
	stats_tls_stat_path = "/nonexistent/tls_stat";
	struct stats_snap sn = { 0 };
	char *out = render(stats_render_prometheus, &sn);
	assert_text_format(out);
	cr_assert_not_null(strstr(out, "\nktls_kernel_tls_stat_available 0\n"));
	cr_assert_not_null(strstr(out, "\nktls_shim_ebpf_loaded 0\n"));
	cr_assert_null(strstr(out, "ktls_shim_bytes_total"));
	free(out);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(views, output_is_written_whole_or_not_at_all)
{
	char dir[] = "/tmp/ktls-out-XXXXXX", path[64], old[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ktls.prom", dir);
	snprintf(old, sizeof(old), "%s/before", dir);
	/* A reader holding the old file keeps it whole: rename, no rewrite. */
	FILE *f = fopen(path, "w");
	fputs("old\n", f);
	fclose(f);
	cr_assert_eq(link(path, old), 0);
	stats_tls_stat_path = "/nonexistent/tls_stat";
	struct stats_snap sn = { 0 };
	cr_assert_eq(stats_write(path, stats_render_prometheus, &sn), 0);
	char *want = render(stats_render_prometheus, &sn), got[4096] = "";
	f = fopen(path, "r");
	got[fread(got, 1, sizeof(got) - 1, f)] = 0;
	fclose(f);
	cr_assert_str_eq(got, want);
	f = fopen(old, "r");
	cr_assert_not_null(fgets(got, sizeof(got), f));
	fclose(f);
	cr_assert_str_eq(got, "old\n");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	cr_assert_eq(count_entries(dir), 2, "a temporary file was left");
	/* A directory that is not there: an error, nothing written. */
	snprintf(path, sizeof(path), "%s/no/ktls.prom", dir);
	cr_assert_eq(stats_write(path, stats_render_prometheus, &sn), 1);
	cr_assert_eq(count_entries(dir), 2);
	unlink(old);
	snprintf(path, sizeof(path), "%s/ktls.prom", dir);
	unlink(path);
	rmdir(dir);
	free(want);
}
