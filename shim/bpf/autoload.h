/*
 * Loading the eBPF accounting from a shimmed process: where nothing is
 * pinned yet, a privileged process that the config allows (ebpf_load = auto,
 * KTLS_SHIM_EBPF_LOAD) loads it once, through libktls-shim-bpf.so, which it
 * dlopen()s from its own directory: the shim never links libbpf, and a
 * missing .so or libbpf only means no stats.
 */
#ifndef KTLS_SHIM_BPF_AUTOLOAD_H
#define KTLS_SHIM_BPF_AUTOLOAD_H

/* The name the shim dlopen()s and the one symbol it looks up. */
#define KTLS_BPF_PLUGIN "libktls-shim-bpf.so"
#define KTLS_BPF_PLUGIN_LOAD "ktls_shim_bpf_load_v1"
/* int ktls_shim_bpf_load_v1(char *why, size_t whylen): loader.h's codes. */

/*
 * Runs once per process (later calls return at once). NULL when the
 * accounting is loaded (by this process or before) or loading was not
 * wanted; otherwise why this process did not load it, for the caller's one
 * debug line. Never writes to stdout/stderr itself.
 */
const char *ktls_bpf_autoload(void);

#endif
