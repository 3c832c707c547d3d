#define _GNU_SOURCE
#include "gnutls/kdf.h"

#include <string.h>

static void wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

static int expand(const struct ktls_kdf_ops *self, const uint8_t *prk,
		  size_t prk_len, const uint8_t *info, size_t info_len,
		  uint8_t *out, size_t out_len)
{
	const struct ktls_gt_kdf *k = (const struct ktls_gt_kdf *)self;
	/* GnuTLS takes const datums but declares them writable. */
	gnutls_datum_t key = { (unsigned char *)(uintptr_t)prk,
			       (unsigned)prk_len };
	gnutls_datum_t in = { (unsigned char *)(uintptr_t)info,
			      (unsigned)info_len };
	if (!k->hkdf_expand)
		return -1;
	return k->hkdf_expand(prk_len == 48 ? GNUTLS_MAC_SHA384
					    : GNUTLS_MAC_SHA256,
			      &key, &in, out, out_len) == 0
		       ? 0
		       : -1;
}

void ktls_gt_kdf_init(struct ktls_gt_kdf *k, ktls_gt_hkdf_fn hkdf_expand)
{
	memset(k, 0, sizeof(*k));
	k->ops.cleanse = wipe;
	k->ops.expand = expand;
	k->hkdf_expand = hkdf_expand;
}
