/*
 * Loading and unloading the eBPF accounting (ktls_stats.bpf.c) with its
 * libbpf skeleton: the one copy of this code, linked into ktls-shim-stats
 * and into libktls-shim-bpf.so (which the shim dlopen()s, so that the shim
 * itself never needs libbpf).
 *
 * Both take an exclusive flock on the bpffs mount (/sys/fs/bpf), so two
 * loaders (two shimmed processes, or one and the command) never load twice:
 * the second waits, then finds the pins and reports "already loaded".
 */
#ifndef KTLS_SHIM_BPF_LOADER_H
#define KTLS_SHIM_BPF_LOADER_H

#include <stddef.h>

enum {
	KTLS_BPF_LOAD_OK = 0,      /* this call loaded and pinned */
	KTLS_BPF_LOAD_ALREADY = 1, /* the pins were there */
	KTLS_BPF_LOAD_FAILED = -1, /* why holds one line ("cannot ...") */
};

/*
 * verbose 0: libbpf says nothing (the shim: nothing may reach the host
 * program's stderr); 1: libbpf warnings on stderr; 2: its debug output
 * (verifier log) too. attached: programs attached (on OK).
 */
int ktls_bpf_load(int verbose, int *attached, char *why, size_t whylen);

/* Removes the pins (the programs detach once no fd holds them). Returns
 * how many pins went, or -1 with why. */
int ktls_bpf_unload(char *why, size_t whylen);

#endif
