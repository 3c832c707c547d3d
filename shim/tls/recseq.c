#include "tls/recseq.h"

#include <openssl/ssl3.h>
#include <openssl/tls1.h>
#include <string.h>

static void start(struct ktls_recseq *q, int d)
{
	q->counting[d] = 1;
	q->n[d] = 0;
	if (d == 0)
		q->nonce_ok = 0;
}

void ktls_recseq_observe(struct ktls_recseq *q, int write_p, int version,
			 int content_type, const uint8_t *buf, size_t len)
{
	int d = write_p ? 0 : 1;
	if (content_type == SSL3_RT_HEADER) {
		if (!q->counting[d] || len < SSL3_RT_HEADER_LENGTH)
			return;
		/* Only where the length field says the record has them. */
		size_t reclen = (size_t)buf[3] << 8 | buf[4];
		if (d == 0 && q->n[0] == 0 && reclen >= sizeof(q->nonce)) {
			memcpy(q->nonce, buf + SSL3_RT_HEADER_LENGTH,
			       sizeof(q->nonce));
			q->nonce_ok = 1;
		}
		q->n[d]++;
		return;
	}
	/* TLS 1.2: the record after ChangeCipherSpec (Finished) is the first
	 * under the new key. A TLS 1.3 "compatibility" CCS changes nothing. */
	if (content_type == SSL3_RT_CHANGE_CIPHER_SPEC &&
	    version != TLS1_3_VERSION) {
		start(q, d);
		return;
	}
	if (content_type != SSL3_RT_HANDSHAKE || len < 1 ||
	    buf[0] != SSL3_MT_FINISHED)
		return;
	/* TLS 1.3: Finished is the last record under the handshake key; its
	 * header was seen before this message, so counting starts at 0. */
	if (version == TLS1_3_VERSION) {
		start(q, d);
		return;
	}
	/* TLS 1.2: Finished is alone in the first record under the new key.
	 * 3.0 does not report the peer's CCS, so this is where the count
	 * starts for RX; for TX it agrees with what CCS started. */
	q->counting[d] = 1;
	q->n[d] = 1;
}

int64_t ktls_recseq_next(const struct ktls_recseq *q, int rx)
{
	return q->counting[rx ? 1 : 0] ? (int64_t)q->n[rx ? 1 : 0] : -1;
}
