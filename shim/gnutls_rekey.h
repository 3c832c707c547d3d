/*
 * TLS 1.3 KeyUpdate for GnuTLS sessions the shim moved. GnuTLS hands out
 * keys (gnutls_record_get_state) but not the traffic secrets the next keys
 * derive from, so the shim learns them from the session's keylog function
 * (chained in front of the program's, which still sees every line) and
 * derives each next key itself (tls13_keys.c over GnuTLS's own HKDF: a
 * GnuTLS program need not load libcrypto). A secret is trusted only once
 * it gives exactly the key and IV GnuTLS itself uses, and is kept only
 * while a direction in the kernel may need its next key.
 */
#ifndef KTLS_SHIM_GNUTLS_REKEY_H
#define KTLS_SHIM_GNUTLS_REKEY_H

#include <gnutls/gnutls.h>
#include <stdint.h>

#include "cipher.h"
#include "tls13_keys.h"

struct ktls_gt_secrets {
	uint8_t rx[KTLS_TLS13_MAX_SECRET], tx[KTLS_TLS13_MAX_SECRET];
	uint8_t rx_len, tx_len; /* 0: not held */
};

/* 1 when sessions should hand us their secrets: TLS 1.3 allowed, a
 * kernel that can rekey (6.14+), a GnuTLS with keylog functions and HKDF.
 * Elsewhere no secret is ever copied. */
int ktls_gt_rekey_wanted(void);

/* From the keylog function: keeps the application traffic secrets. */
void ktls_gt_secret_capture(struct ktls_gt_secrets *k, int server,
			    const char *label, const gnutls_datum_t *secret);

/* 1 when the held secret of a direction derives exactly this key and IV
 * (what gnutls_record_get_state returned); otherwise it is wiped: 0. */
int ktls_gt_secret_check(struct ktls_gt_secrets *k, int rx,
			 enum ktls_cipher kc, const gnutls_datum_t *key,
			 const gnutls_datum_t *iv);

/* After a KeyUpdate in that direction: the next secret, and its key
 * installed on fd. 0, or -1 (errno set, secret wiped). */
int ktls_gt_rekey(struct ktls_gt_secrets *k, int fd, int rx,
		  enum ktls_cipher kc);

/* 1 while a direction's next key can be derived. */
int ktls_gt_can_rekey(const struct ktls_gt_secrets *k, int rx);

void ktls_gt_secret_wipe(struct ktls_gt_secrets *k, int rx);

#endif
