/*
 * The kernel's kTLS API as the shim uses it: <linux/tls.h> (TLS_TX, TLS_RX,
 * the crypto_info structs, TLS_TX_ZEROCOPY_RO) and SOL_TLS. Debian 12's
 * headers have all of it; the fallback defines older ones needed are gone.
 */
#ifndef KTLS_SHIM_KERNEL_UAPI_H
#define KTLS_SHIM_KERNEL_UAPI_H

#include <linux/tls.h>

#include <sys/socket.h> /* SOL_TLS (glibc 2.28+) */

#endif
