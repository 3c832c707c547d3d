/*
 * ktls-shim-stats: loads, shows and unloads the eBPF per-socket kTLS
 * accounting (shim/bpf/ktls_stats.bpf.c).
 *
 *   ktls-shim-stats load          attach what the running kernel has, pin
 *                                 maps and links under /sys/fs/bpf/ktls-shim/
 *   ktls-shim-stats show [--json | --prometheus] [--output FILE]
 *                                 one row per socket (joined with the owners
 *                                 the shim registered); stats_show.c,
 *                                 stats_prom.c
 *   ktls-shim-stats unload        remove the pins (programs detach)
 *   ktls-shim-stats check         can kTLS work here? (stats_check.c)
 */
#define _GNU_SOURCE
#include <errno.h>
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

/* show [--json | --prometheus] [--output FILE]: Prometheus output has the
 * kernel's own counters even where the eBPF accounting is not loaded. */
static int cmd_show(int argc, char **argv)
{
	int (*render)(FILE *, const void *) = stats_render_table;
	const char *output = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			render = stats_render_json;
		else if (!strcmp(argv[i], "--prometheus"))
			render = stats_render_prometheus;
		else if (!strcmp(argv[i], "--output") && i + 1 < argc)
			output = argv[++i];
		else if (!strncmp(argv[i], "--output=", 9) && argv[i][9])
			output = argv[i] + 9;
		else if (!strcmp(argv[i], "--output")) {
			stats_fail("option '--output' needs a file");
			return 2;
		} else {
			stats_fail("show: unknown option '%s' (see " ME
				   " --help)", argv[i]);
			return 2;
		}
	}
	struct stats_snap sn;
	if (stats_snap_read(&sn) && (sn.loaded || errno == ENOMEM))
		return stats_fail("reading %s: %s", KTLS_BPF_PIN_DIR,
				  strerror(errno));
	if (!sn.loaded && render != stats_render_prometheus)
		return stats_fail("not loaded (%s: %s); run " ME " load",
				  KTLS_BPF_SOCKETS_PIN, strerror(errno));
	int rc = stats_write(output, render, &sn);
	stats_snap_free(&sn);
	return rc;
}

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: " ME " [-v] load | unload | check |\n"
		"       show [--json | --prometheus] [--output FILE]\n");
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
	if (!strcmp(cmd, "show"))
		return cmd_show(argc - i, argv + i);
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help"))
		return usage(stdout, 0);
	return usage(stderr, 2);
}
