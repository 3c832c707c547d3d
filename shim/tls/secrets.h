/*
 * The TLS 1.3 application traffic secrets of one session, kept only while
 * the kernel holds a direction it may have to rekey (KeyUpdate), and wiped
 * as soon as they are not needed. Every engine keeps them the same way.
 */
#ifndef KTLS_SHIM_TLS_SECRETS_H
#define KTLS_SHIM_TLS_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "tls/tls13_keys.h"

struct ktls_secrets {
	uint8_t rx[KTLS_TLS13_MAX_SECRET], tx[KTLS_TLS13_MAX_SECRET];
	uint8_t rx_len, tx_len; /* 0: not held */
};

/* Which direction a CLIENT_/SERVER_TRAFFIC_SECRET_0 protects for us: the
 * peer's secret protects what we read. */
static inline int ktls_secret_is_rx(enum ktls_secret_kind kind, int server)
{
	return (kind == KTLS_SECRET_CLIENT_APP) == (server != 0);
}

/* Keeps len bytes (32 or 48; anything else is ignored) for direction rx. */
void ktls_secrets_set(struct ktls_secrets *k, int rx, const uint8_t *secret,
		      size_t len);
void ktls_secrets_wipe(struct ktls_secrets *k, int rx);
static inline int ktls_secrets_held(const struct ktls_secrets *k, int rx)
{
	return (rx ? k->rx_len : k->tx_len) != 0;
}

/* 1 when key/iv are what secret rx derives to (TLS 1.3, cipher kc):
 * proof the secret is this session's. A mismatch wipes it. */
int ktls_secrets_match(const struct ktls_kdf_ops *ops, struct ktls_secrets *k,
		       int rx, enum ktls_cipher kc, const uint8_t *key,
		       size_t key_len, const uint8_t *iv, size_t iv_len);

#endif
