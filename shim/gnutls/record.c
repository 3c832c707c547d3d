#define _GNU_SOURCE
#include "gnutls/record.h"

#include "tls/record.h"

#include <errno.h>
#include <string.h>


uint16_t ktls_gt_version(gnutls_protocol_t p)
{
	return p == GNUTLS_TLS1_2 ? KTLS_TLS12 : p == GNUTLS_TLS1_3 ? KTLS_TLS13
								 : 0;
}

enum ktls_cipher ktls_gt_cipher(gnutls_cipher_algorithm_t c)
{
	switch (c) {
	case GNUTLS_CIPHER_AES_128_GCM:
		return KTLS_CIPHER_AES_128_GCM;
	case GNUTLS_CIPHER_AES_256_GCM:
		return KTLS_CIPHER_AES_256_GCM;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		return KTLS_CIPHER_CHACHA20_POLY1305;
	case GNUTLS_CIPHER_AES_128_CCM: /* not _CCM_8: an 8-byte tag */
		return KTLS_CIPHER_AES_128_CCM;
	default:
		return KTLS_CIPHER_NONE;
	}
}

int ktls_gt_crypto_info(struct ktls_crypto_info *ci, uint16_t version,
			enum ktls_cipher kc, const gnutls_datum_t *key,
			const gnutls_datum_t *iv, const unsigned char seq[8])
{
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s = (s << 8) | seq[i];
	if (!key || !iv || !key->data || !iv->data) {
		ktls_crypto_info_wipe(ci);
		return -1;
	}
	/* explicit nonce NULL: ktls_crypto_info_build writes seq there,
	 * which is what GnuTLS has been sending (and the kernel continues). */
	if (ktls_crypto_info_build(ci, version, kc, key->data, key->size,
				   iv->data, iv->size, NULL, s) != 0) {
		ktls_crypto_info_wipe(ci);
		return -1;
	}
	return 0;
}

int ktls_gt_err_from_errno(int err, int sending)
{
	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return GNUTLS_E_AGAIN;
	case EINTR:
		return GNUTLS_E_INTERRUPTED;
	case EBADMSG: /* the record did not authenticate */
		return GNUTLS_E_DECRYPTION_FAILED;
	case EMSGSIZE: /* a record longer than TLS allows */
		return GNUTLS_E_RECORD_OVERFLOW;
	default:
		return sending ? GNUTLS_E_PUSH_ERROR : GNUTLS_E_PULL_ERROR;
	}
}

int ktls_gt_alert_result(uint16_t version, uint8_t level, uint8_t desc)
{
	if (desc == KTLS_AD_CLOSE_NOTIFY)
		return 0;
	if (version == KTLS_TLS13)
		return desc == KTLS_AD_USER_CANCELED ? GNUTLS_E_WARNING_ALERT_RECEIVED
						   : GNUTLS_E_FATAL_ALERT_RECEIVED;
	return level == KTLS_AL_WARNING ? GNUTLS_E_WARNING_ALERT_RECEIVED
					    : GNUTLS_E_FATAL_ALERT_RECEIVED;
}
