/*
 * The GnuTLS side of a session the shim put into the kernel, as pure
 * functions (unit-tested): what gnutls_record_recv() must return for each
 * thing the kernel hands up, and the kernel struct built from what
 * gnutls_record_get_state() exposes. Only GnuTLS's headers are used; the
 * shim never links libgnutls.
 */
#ifndef KTLS_SHIM_GNUTLS_RECORD_H
#define KTLS_SHIM_GNUTLS_RECORD_H

#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cipher.h"
#include "tls/crypto_info.h"


/* 0x0303 / 0x0304 for TLS 1.2 / 1.3, 0 for anything the kernel lacks. */
uint16_t ktls_gt_version(gnutls_protocol_t p);

/* The kernel's cipher for a GnuTLS one, or KTLS_CIPHER_NONE (CCM_8,
 * CBC, ...). */
enum ktls_cipher ktls_gt_cipher(gnutls_cipher_algorithm_t c);

/*
 * The struct for one direction, from gnutls_record_get_state(): key, iv
 * (TLS 1.3 and ChaCha20: the 12-byte IV; TLS 1.2 AES: the 4-byte implicit
 * part) and the big-endian sequence number of the next record. GnuTLS uses
 * that sequence number as the TLS 1.2 explicit nonce, and so does the
 * kernel from here on. 0, or -1 when sizes do not fit (ci wiped).
 */
int ktls_gt_crypto_info(struct ktls_crypto_info *ci, uint16_t version,
			enum ktls_cipher kc, const gnutls_datum_t *key,
			const gnutls_datum_t *iv, const unsigned char seq[8]);

/* errno of a failed send/recv on the kernel socket -> GnuTLS error. */
int ktls_gt_err_from_errno(int err, int sending);

/* An alert record from the peer -> what gnutls_record_recv returns:
 * 0 for close_notify, else GNUTLS_E_WARNING/FATAL_ALERT_RECEIVED. TLS 1.3
 * (RFC 8446 6): every alert but close_notify and user_canceled is fatal,
 * whatever its level says. */
int ktls_gt_alert_result(uint16_t version, uint8_t level, uint8_t desc);

#endif
