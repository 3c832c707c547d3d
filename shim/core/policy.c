#define _GNU_SOURCE
#include "core/policy.h"

#include "core/config.h"
#include "core/log.h"
#include "core/shim.h"

unsigned ktls_version_bit(unsigned v)
{
	return v == KTLS_TLS12 ? KTLS_VERSION_BIT_TLS12
	       : v == KTLS_TLS13 ? KTLS_VERSION_BIT_TLS13
				 : 0;
}

enum ktls_reason ktls_policy_check(int rx, unsigned version,
				   enum ktls_cipher kc)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	if (!ktls_version_bit(version))
		return KTLS_R_VERSION_UNSUPPORTED;
	if (!d || (version == KTLS_TLS13 && !d->tls13_ok))
		return KTLS_R_CIPHER_UNSUPPORTED;
	return ktls_policy_config(rx, version, kc);
}

enum ktls_reason ktls_policy_config(int rx, unsigned version,
				    enum ktls_cipher kc)
{
	if (!(ktls_cfg.versions & ktls_version_bit(version)))
		return KTLS_R_VERSION_OFF;
	if (!(ktls_cfg.directions & (rx ? KTLS_DIR_RX : KTLS_DIR_TX)))
		return KTLS_R_DIRECTION_OFF;
	if (!(ktls_cfg.ciphers & KTLS_CIPHER_BIT(kc)))
		return KTLS_R_CIPHER_OFF;
	return KTLS_R_MOVED;
}

unsigned long long ktls_policy_tx_key_budget(enum ktls_cipher kc)
{
	if (ktls_cfg.key_update_bytes != KTLS_KEY_UPDATE_AUTO)
		return ktls_cfg.key_update_bytes;
	/* AES-GCM may protect 2^24.5 full records under one key; 2^38 bytes
	 * (256 GiB) stays below that. ChaCha20-Poly1305's limit is beyond
	 * any connection's life. */
	return kc == KTLS_CIPHER_AES_128_GCM || kc == KTLS_CIPHER_AES_256_GCM
		       ? 1ull << 38
		       : 0;
}
