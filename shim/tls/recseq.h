/*
 * Record sequence numbers, learned from OpenSSL's message callback. The
 * kernel must start each direction at the sequence number of the next
 * record, and nothing public in libssl says what that is; the message
 * callback, though, sees every record header as it is written or read, and
 * the messages that change keys. Counting headers since the last key change
 * gives the number exactly, whatever the handshake sent after it (a TLS 1.3
 * server's tickets, say). Pure: unit-tested with recorded callback traces.
 */
#ifndef KTLS_SHIM_RECSEQ_H
#define KTLS_SHIM_RECSEQ_H

#include <stddef.h>
#include <stdint.h>

struct ktls_recseq {
	uint64_t n[2];       /* [0] TX, [1] RX: records under the current key */
	uint8_t counting[2]; /* that direction's key change was seen */
	/* TLS 1.2 AES-GCM/CCM: the explicit nonce of the first TX record
	 * under the current key (OpenSSL's Finished), so the kernel can go
	 * on from the next one rather than risk repeating it. */
	uint8_t nonce_ok;
	uint8_t nonce[8];
};

/* One message callback, as OpenSSL 3.0/3.1 make it: write_p, version,
 * content_type (SSL3_RT_*, SSL3_RT_HEADER for a record header), buf, len.
 * A header's buf points into the whole record, which for a written record
 * is already sealed: the explicit nonce follows the 5 header bytes. */
void ktls_recseq_observe(struct ktls_recseq *q, int write_p, int version,
			 int content_type, const uint8_t *buf, size_t len);

/* The sequence number of the next record in one direction (0 TX, 1 RX);
 * -1 when the key change was never seen (nothing to go on). */
int64_t ktls_recseq_next(const struct ktls_recseq *q, int rx);

#endif
