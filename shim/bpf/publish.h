#ifndef KTLS_SHIM_BPF_PUBLISH_H
#define KTLS_SHIM_BPF_PUBLISH_H

/* Registers fd (a direction of it in the kernel) for the eBPF counters;
 * says once, at debug level, why not where it cannot. */
void ktls_bpf_publish(int fd, unsigned version, unsigned cipher_type, int tx,
		      int rx);

#endif
