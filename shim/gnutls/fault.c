/* Fault injection at the libgnutls binding table (core/fault.h says how
 * it is driven). Only in libktls-shim-fault.so. */
#define _GNU_SOURCE
#include "core/fault.h"
#include "gnutls/bind.h"

static struct ktls_gt gnext;

static int f_record_get_state(gnutls_session_t s, unsigned rd,
			      gnutls_datum_t *mac, gnutls_datum_t *iv,
			      gnutls_datum_t *key, unsigned char *seq)
{
	if (ktls_fault_hit(FP_GT_RECORD_GET_STATE))
		return GNUTLS_E_INVALID_REQUEST;
	return gnext.record_get_state(s, rd, mac, iv, key, seq);
}
static int f_hkdf_expand(gnutls_mac_algorithm_t m, const gnutls_datum_t *k,
			 const gnutls_datum_t *info, void *out, size_t n)
{
	if (ktls_fault_hit(FP_GT_HKDF_EXPAND))
		return GNUTLS_E_MEMORY_ERROR;
	return gnext.hkdf_expand(m, k, info, out, n);
}

void ktls_fault_wrap_gt(struct ktls_gt *g)
{
	gnext = *g;
	g->record_get_state = f_record_get_state;
	if (g->hkdf_expand)
		g->hkdf_expand = f_hkdf_expand;
}
