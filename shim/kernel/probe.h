/* What the running kernel's kTLS can do, asked once per process (again
 * while its tls module is not loaded). */
#ifndef KTLS_SHIM_KERNEL_PROBE_H
#define KTLS_SHIM_KERNEL_PROBE_H

/* 1 when the kernel takes a second TLS_TX/TLS_RX on a socket (TLS 1.3
 * KeyUpdate, 6.14+). */
int ktls_kernel_can_rekey(void);
/* 1 only when the kernel is known to have kTLS without rekey (its tls
 * module loaded, 6.13 or older); 0 where it rekeys or is not known yet. */
int ktls_kernel_cannot_rekey(void);

#endif
