#define _GNU_SOURCE
#include "gnutls_rekey.h"

#include <errno.h>
#include <linux/tls.h>
#include <pthread.h>
#include <string.h>

#include "config.h"
#include "crypto_info.h"
#include "engine.h"
#include "gnutls_bind.h"
#include "gnutls_kdf.h"
#include "ktls_install.h"
#include "shim.h"
#include "stats.h"

static struct ktls_gt_kdf kdf;
static pthread_once_t kdf_once = PTHREAD_ONCE_INIT;

static void kdf_init(void)
{
	ktls_gt_kdf_init(&kdf, ktls_gt.hkdf_expand);
}

static const struct ktls_kdf_ops *ops(void)
{
	pthread_once(&kdf_once, kdf_init);
	return &kdf.ops;
}

int ktls_gt_rekey_wanted(void)
{
	return (ktls_cfg.versions & KTLS_VERSION_BIT_TLS13) &&
	       ktls_gt.session_set_keylog_function &&
	       ktls_gt.session_get_keylog_function && ktls_gt.hkdf_expand &&
	       ktls_engine_kernel_rekeys();
}

void ktls_gt_secret_capture(struct ktls_gt_secrets *k, int server,
			    const char *label, const gnutls_datum_t *secret)
{
	int client_app = strcmp(label, "CLIENT_TRAFFIC_SECRET_0") == 0;
	if (!client_app && strcmp(label, "SERVER_TRAFFIC_SECRET_0") != 0)
		return;
	if (!secret || !secret->data ||
	    (secret->size != 32 && secret->size != 48))
		return;
	/* The peer's secret protects what we read. */
	int rx = client_app == server;
	memcpy(rx ? k->rx : k->tx, secret->data, secret->size);
	*(rx ? &k->rx_len : &k->tx_len) = (uint8_t)secret->size;
}

void ktls_gt_secret_wipe(struct ktls_gt_secrets *k, int rx)
{
	explicit_bzero(rx ? k->rx : k->tx, KTLS_TLS13_MAX_SECRET);
	*(rx ? &k->rx_len : &k->tx_len) = 0;
}

int ktls_gt_can_rekey(const struct ktls_gt_secrets *k, int rx)
{
	return (rx ? k->rx_len : k->tx_len) && ktls_engine_kernel_rekeys();
}

int ktls_gt_secret_check(struct ktls_gt_secrets *k, int rx,
			 enum ktls_cipher kc, const gnutls_datum_t *key,
			 const gnutls_datum_t *iv)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	uint8_t len = rx ? k->rx_len : k->tx_len;
	uint8_t dk[32], div[12];
	unsigned diff = 1;
	if (len && d && d->key_len <= sizeof(dk) && key && iv && key->data &&
	    iv->data && key->size == d->key_len && iv->size == sizeof(div) &&
	    ktls_tls13_key_iv(ops(), rx ? k->rx : k->tx, len, dk, d->key_len,
			      div) == 0) {
		diff = 0;
		for (size_t i = 0; i < d->key_len; i++)
			diff |= dk[i] ^ key->data[i];
		for (size_t i = 0; i < sizeof(div); i++)
			diff |= div[i] ^ iv->data[i];
	}
	explicit_bzero(dk, sizeof(dk));
	explicit_bzero(div, sizeof(div));
	if (diff)
		ktls_gt_secret_wipe(k, rx);
	return !diff;
}

int ktls_gt_rekey(struct ktls_gt_secrets *k, int fd, int rx,
		  enum ktls_cipher kc)
{
	uint8_t *secret = rx ? k->rx : k->tx;
	size_t len = rx ? k->rx_len : k->tx_len;
	struct ktls_crypto_info ci;
	int err = 0;
	if (!ktls_gt_can_rekey(k, rx) ||
	    ktls_tls13_next_secret(ops(), secret, len) != 0 ||
	    ktls_tls13_crypto_info(ops(), &ci, kc, secret, len, 0) != 0) {
		ktls_gt_secret_wipe(k, rx);
		errno = EINVAL;
		return -1;
	}
	if (ktls_install_dir(&ktls_sockops_sys, fd, rx ? TLS_RX : TLS_TX, &ci,
			     &err) != KTLS_R_MOVED) {
		ktls_gt_secret_wipe(k, rx);
		errno = err;
		return -1;
	}
	atomic_fetch_add(rx ? &ktls_stats.rekeys_rx : &ktls_stats.rekeys_tx,
			 1);
	return 0;
}
