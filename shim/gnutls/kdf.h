/*
 * The TLS 1.3 key schedule (tls13_keys.c) over GnuTLS's HKDF, for GnuTLS
 * programs (nbdkit, gnutls-cli) that never load libcrypto. The HKDF
 * function is handed in: bound at run time in the shim (gnutls_bind.c),
 * the real one in unit tests.
 */
#ifndef KTLS_SHIM_GNUTLS_KDF_H
#define KTLS_SHIM_GNUTLS_KDF_H

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "tls/tls13_keys.h"

typedef int (*ktls_gt_hkdf_fn)(gnutls_mac_algorithm_t mac,
			       const gnutls_datum_t *key,
			       const gnutls_datum_t *info, void *out,
			       size_t len);

struct ktls_gt_kdf {
	struct ktls_kdf_ops ops; /* first: tls13_keys.c is handed &ops */
	ktls_gt_hkdf_fn hkdf_expand;
};

/* Fills k; its ops wipe with explicit_bzero. */
void ktls_gt_kdf_init(struct ktls_gt_kdf *k, ktls_gt_hkdf_fn hkdf_expand);

#endif
