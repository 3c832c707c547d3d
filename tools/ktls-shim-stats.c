/*
 * ktls-shim-stats: loads, shows and unloads the eBPF per-socket kTLS
 * accounting (shim/bpf/ktls_stats.bpf.c).
 *
 *   ktls-shim-stats load          attach what the running kernel has, pin
 *                                 maps and links under /sys/fs/bpf/ktls-shim/
 *   ktls-shim-stats show [--json] one row per socket (joined with the owners
 *                                 the shim registered)
 *   ktls-shim-stats unload        remove the pins (programs detach)
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
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ktls_stats.h"
#include "ktls_stats.skel.h"

#define ME "ktls-shim-stats"

static int verbose;

static int print_libbpf(enum libbpf_print_level lvl, const char *fmt,
			va_list ap)
{
	if (lvl == LIBBPF_DEBUG && verbose < 2)
		return 0;
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, ME ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* Program -> the tls.ko function it attaches to. */
static const struct {
	const char *prog, *func;
} targets[] = {
	{ "sw_sendmsg", "tls_sw_sendmsg" },
	{ "device_sendmsg", "tls_device_sendmsg" },
	{ "sw_sendpage", "tls_sw_sendpage" },
	{ "device_sendpage", "tls_device_sendpage" },
	{ "sw_recvmsg_entry", "tls_sw_recvmsg" },
	{ "sw_recvmsg", "tls_sw_recvmsg" },
	{ "sw_splice_read", "tls_sw_splice_read" },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static int cmd_unload(int quiet)
{
	char path[256];
	int removed = 0;
	const char *maps[] = { "sockets", "owners", "rx_inflight" };
	for (size_t i = 0; i < NTARGETS; i++) {
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/link_%s",
			 targets[i].prog);
		removed += unlink(path) == 0;
	}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/%s", maps[i]);
		removed += unlink(path) == 0;
	}
	if (rmdir(KTLS_BPF_PIN_DIR) != 0 && errno != ENOENT)
		return fail("cannot remove %s: %s", KTLS_BPF_PIN_DIR,
			    strerror(errno));
	if (!quiet)
		printf("%s\n", removed ? "unloaded" : "not loaded");
	return 0;
}

static int cmd_load(void)
{
	if (exists(KTLS_BPF_SOCKETS_PIN)) {
		printf("already loaded (%s)\n", KTLS_BPF_PIN_DIR);
		return 0;
	}
	if (!exists("/sys/fs/bpf"))
		return fail("cannot load: no bpffs at /sys/fs/bpf "
			    "(mount -t bpf bpf /sys/fs/bpf)");
	struct btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return fail("cannot load: the kernel has no BTF "
			    "(/sys/kernel/btf/vmlinux missing)");
	struct btf *tls = btf__load_module_btf("tls", vmlinux);
	if (!tls) {
		btf__free(vmlinux);
		return fail("cannot attach: the kernel has no 'tls' module "
			    "BTF (/sys/kernel/btf/tls missing: kernel without "
			    "CONFIG_TLS, or tls.ko not loaded: modprobe tls)");
	}

	struct ktls_stats *skel = ktls_stats__open();
	if (!skel) {
		btf__free(tls);
		btf__free(vmlinux);
		return fail("cannot open the eBPF object: %s", strerror(errno));
	}
	int want = 0;
	for (size_t i = 0; i < NTARGETS; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(
			skel->obj, targets[i].prog);
		int has = btf__find_by_name_kind(tls, targets[i].func,
						 BTF_KIND_FUNC) > 0;
		if (p)
			bpf_program__set_autoload(p, has);
		want += has;
		if (verbose)
			fprintf(stderr, ME ": %s: %s\n", targets[i].func,
				has ? "attach" : "absent, skipped");
	}
	btf__free(tls);
	btf__free(vmlinux);
	if (!want) {
		ktls_stats__destroy(skel);
		return fail("cannot attach: tls.ko has none of the functions "
			    "this program knows");
	}
	int err = ktls_stats__load(skel);
	if (err) {
		ktls_stats__destroy(skel);
		return fail("cannot load the eBPF programs: %s (run with -v "
			    "for the verifier log)",
			    strerror(-err));
	}
	err = ktls_stats__attach(skel);
	if (err) {
		ktls_stats__destroy(skel);
		return fail("cannot attach: %s", strerror(-err));
	}
	if (mkdir(KTLS_BPF_PIN_DIR, 0700) && errno != EEXIST) {
		ktls_stats__destroy(skel);
		return fail("cannot create %s: %s", KTLS_BPF_PIN_DIR,
			    strerror(errno));
	}
	struct {
		struct bpf_map *m;
		const char *name;
	} maps[] = { { skel->maps.sockets, "sockets" },
		     { skel->maps.owners, "owners" },
		     { skel->maps.rx_inflight, "rx_inflight" } };
	char path[256];
	int attached = 0;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/%s",
			 maps[i].name);
		if ((err = bpf_map__pin(maps[i].m, path)))
			goto pin_failed;
	}
	for (size_t i = 0; i < NTARGETS; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(
			skel->obj, targets[i].prog);
		struct bpf_link *l = NULL;
		/* The skeleton keeps the links in its own array, in
		 * program order. */
		for (int j = 0; j < skel->skeleton->prog_cnt; j++)
			if (*skel->skeleton->progs[j].prog == p)
				l = *skel->skeleton->progs[j].link;
		if (!p || !l)
			continue;
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/link_%s",
			 targets[i].prog);
		if ((err = bpf_link__pin(l, path)))
			goto pin_failed;
		attached++;
	}
	printf("loaded: %d programs attached, pinned under %s\n", attached,
	       KTLS_BPF_PIN_DIR);
	ktls_stats__destroy(skel); /* the pins keep everything alive */
	return 0;
pin_failed:
	fail("cannot pin %s: %s", path, strerror(-err));
	ktls_stats__destroy(skel);
	cmd_unload(1);
	return 1;
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

static int cmd_show(int json)
{
	int sfd = bpf_obj_get(KTLS_BPF_SOCKETS_PIN);
	if (sfd < 0)
		return fail("not loaded (%s: %s); run " ME " load",
			    KTLS_BPF_SOCKETS_PIN, strerror(errno));
	int ofd = bpf_obj_get(KTLS_BPF_OWNERS_PIN);
	__u64 key, next, *prev = NULL;
	int n = 0;
	if (json)
		printf("[");
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
		int owned;
		if (bpf_map_lookup_elem(sfd, &key, &s))
			continue;
		owned = ofd >= 0 && bpf_map_lookup_elem(ofd, &key, &o) == 0;
		if (!owned)
			memset(&o, 0, sizeof(o));
		const char *txp = s.tx_device ? "device" : s.tx_sw ? "sw" : "-";
		const char *rxp = s.rx_sw ? "sw" : "-";
		if (json) {
			printf("%s\n {\"cookie\":%llu,\"pid\":%u,\"comm\":",
			       n ? "," : "", (unsigned long long)key,
			       owned ? o.pid : s.pid);
			json_str(owned ? o.comm : s.comm, KTLS_BPF_COMM_LEN);
			printf(",\"tx_path\":\"%s\",\"rx_path\":\"%s\"", txp,
			       rxp);
#define F(x) printf(",\"" #x "\":%llu", (unsigned long long)s.x)
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
				       o.pid, o.fd, version(o.version),
				       cipher(o.cipher_type), mode(o.tx_mode),
				       mode(o.rx_mode),
				       o.closed ? "true" : "false");
			else
				printf(",\"owner\":null");
			printf("}");
		} else {
			char comm[KTLS_BPF_COMM_LEN + 1] = { 0 };
			memcpy(comm, owned ? o.comm : s.comm,
			       KTLS_BPF_COMM_LEN);
			char fd[16] = "-";
			if (owned)
				snprintf(fd, sizeof(fd), "%d%s", o.fd,
					 o.closed ? "x" : "");
			printf("%-20llu %7u %-15s %5s %-6s %-17s %-8s %-8s "
			       "%14llu %9llu %14llu %9llu\n",
			       (unsigned long long)key, owned ? o.pid : s.pid,
			       comm, fd, version(o.version),
			       cipher(o.cipher_type), txp, rxp,
			       (unsigned long long)s.tx_bytes,
			       (unsigned long long)s.tx_calls,
			       (unsigned long long)s.rx_bytes,
			       (unsigned long long)s.rx_calls);
		}
		n++;
	}
	if (json)
		printf("%s]\n", n ? "\n" : "");
	else if (!n)
		printf("(no kTLS sockets seen yet)\n");
	if (ofd >= 0)
		close(ofd);
	close(sfd);
	return 0;
}

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: " ME " [-v] load | show [--json] | unload\n");
	return rc;
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc && !strcmp(argv[i], "-v")) {
		verbose++;
		i++;
	}
	libbpf_set_print(print_libbpf);
	if (i >= argc)
		return usage(stderr, 2);
	const char *cmd = argv[i++];
	if (!strcmp(cmd, "load") && i == argc)
		return cmd_load();
	if (!strcmp(cmd, "unload") && i == argc)
		return cmd_unload(0);
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
