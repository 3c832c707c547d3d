/*
 * GnuTLS's side of the TLS 1.3 secrets (tls/secrets.h keeps them, and
 * session/keyupdate.c uses them): captured from the keylog function,
 * checked against GnuTLS's own record state, expanded with GnuTLS's HKDF
 * for programs that never load libcrypto.
 */
#ifndef KTLS_SHIM_GNUTLS_SECRETS_H
#define KTLS_SHIM_GNUTLS_SECRETS_H

#include <gnutls/gnutls.h>

#include "core/cipher.h"
#include "tls/secrets.h"
#include "tls/tls13_keys.h"

/* Whether this GnuTLS and kernel can follow KeyUpdates at all (keylog
 * functions, HKDF, a kernel that rekeys). */
int ktls_gt_rekey_wanted(void);

/* GnuTLS's HKDF as tls/ takes a KDF. */
const struct ktls_kdf_ops *ktls_gt_kdf_ops(void);

/* A keylog line: the application traffic secrets are kept. */
void ktls_gt_secret_capture(struct ktls_secrets *k, int server,
			    const char *label, const gnutls_datum_t *secret);

/* 1 when secret rx derives GnuTLS's own key and IV (else it is wiped). */
int ktls_gt_secret_check(struct ktls_secrets *k, int rx, enum ktls_cipher kc,
			 const gnutls_datum_t *key, const gnutls_datum_t *iv);

#endif
