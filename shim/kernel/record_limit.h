/*
 * The record size the peer negotiated, honoured by the kernel: RFC 6066's
 * max_fragment_length and RFC 8449's record_size_limit bound the plaintext
 * of every record we send. The kernel makes records of up to 16 KiB unless
 * told otherwise with TLS_TX_MAX_PAYLOAD_LEN (net/tls, newer than 6.12: the 7.2 VM kernel has it); a kernel
 * without it cannot keep a smaller promise, and TX must stay in userspace.
 */
#ifndef KTLS_SHIM_KERNEL_RECORD_LIMIT_H
#define KTLS_SHIM_KERNEL_RECORD_LIMIT_H

#include <stdint.h>

#include "core/reason.h"
#include "kernel/install.h"

/* Asks for TX records of at most max_content plaintext bytes (content
 * type excluded: RFC 8449's limit minus one in TLS 1.3), on a socket with
 * the ULP attached and TLS_TX not yet installed, so no record can go out
 * before the limit does. KTLS_R_MOVED when the kernel took it,
 * KTLS_R_RECORD_SIZE_LIMITED when it cannot (then TX must stay). */
enum ktls_reason ktls_tx_limit_set(const struct ktls_sockops *ops, int fd,
				   unsigned max_content);

/* After TLS_TX: 1 when the kernel holds the limit, 0 when it holds
 * another, -1 when it cannot say. */
int ktls_tx_limit_holds(const struct ktls_sockops *ops, int fd,
			uint16_t version, unsigned max_content);

#endif
