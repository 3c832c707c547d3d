/* What the running kernel's kTLS can do, asked once per process. */
#ifndef KTLS_SHIM_KERNEL_PROBE_H
#define KTLS_SHIM_KERNEL_PROBE_H

/* 1 when the kernel takes a second TLS_TX/TLS_RX on a socket (TLS 1.3
 * KeyUpdate, 6.14+). */
int ktls_kernel_can_rekey(void);

#endif
