/*
 * libktls-shim-bpf.so: the loader (loader.c) behind one symbol, for the
 * shim to dlopen() (autoload.c). Linking libbpf here, not in the shim, is
 * what lets a host without libbpf run shimmed programs.
 */
#include <stddef.h>

#include "bpf/autoload.h"
#include "bpf/loader.h"

int ktls_shim_bpf_load_v1(char *why, size_t whylen);

int ktls_shim_bpf_load_v1(char *why, size_t whylen)
{
	int attached;
	/* verbose 0: nothing from libbpf may reach the program's stderr. */
	return ktls_bpf_load(0, &attached, why, whylen);
}
