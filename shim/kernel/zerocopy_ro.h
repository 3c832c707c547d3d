/*
 * TLS_TX_ZEROCOPY_RO (kernel 5.19+): lets the kernel hand file pages given
 * to sendfile() straight to a TLS offload NIC instead of copying them first.
 * Opt-in (tx_zerocopy_ro = yes), because the NIC then reads the page cache
 * while the record is in flight: a file changed during sendfile() goes out
 * as changed, and a retransmission can carry bytes that differ from the
 * first copy, which the peer sees as a broken record. Software kTLS always
 * copies into its own record buffers, so there the option changes nothing.
 */
#ifndef KTLS_SHIM_ZEROCOPY_RO_H
#define KTLS_SHIM_ZEROCOPY_RO_H

#include "kernel/install.h"

/*
 * Asks for it on fd, whose TX is in the kernel, and reads it back: 1 when
 * the kernel holds it, otherwise -errno (the option never set is
 * -ENOPROTOOPT from a kernel that does not know it). Never fatal: a refusal
 * leaves the ordinary copying sendfile path, which is always correct.
 */
int ktls_tx_zerocopy_ro(const struct ktls_sockops *ops, int fd);

/* For the session line: "on", or "refused-<errno name>" in buf. */
const char *ktls_tx_zerocopy_ro_name(int rc, char *buf, size_t len);

#endif
