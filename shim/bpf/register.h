/*
 * Registration of the sockets the shim moves into the kernel, for the eBPF
 * accounting (ktls_stats.bpf.c): socket cookie -> owner, in the pinned map
 * /sys/fs/bpf/ktls-shim/owners that `ktls-shim-stats load` creates.
 * Raw bpf(2), no libbpf. Cheap when stats are off: a missing pin or a
 * refused bpf(2) is remembered, and retried at most once a second.
 */
#ifndef KTLS_SHIM_BPF_REGISTER_H
#define KTLS_SHIM_BPF_REGISTER_H

/* Both return 0 when written, or a positive errno that the caller may log
 * once at debug level (ENOENT: stats not loaded; EPERM/EACCES: not
 * privileged; EAGAIN: not retried yet, the last try failed < 1 s ago).
 * tx_kernel/rx_kernel: 0 userspace, 1 kernel (the shim's view); the row
 * records KTLS_MODE_SW/DEVICE as sock_diag reports them (ulp_diag.h), or
 * KTLS_MODE_KERNEL when the kernel will not say.
 * Async-signal-unsafe only in the sense that close() is. */
int ktls_bpf_register(int fd, unsigned version, unsigned cipher_type,
		      int tx_kernel, int rx_kernel);
int ktls_bpf_unregister(int fd); /* marks the row closed */

#endif
