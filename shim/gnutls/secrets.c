#define _GNU_SOURCE
#include "gnutls/secrets.h"

#include <pthread.h>
#include <string.h>

#include "core/config.h"
#include "core/shim.h"
#include "gnutls/bind.h"
#include "gnutls/kdf.h"
#include "kernel/probe.h"

static struct ktls_gt_kdf kdf;
static pthread_once_t kdf_once = PTHREAD_ONCE_INIT;

static void kdf_init(void)
{
	ktls_gt_kdf_init(&kdf, ktls_gt.hkdf_expand);
}

const struct ktls_kdf_ops *ktls_gt_kdf_ops(void)
{
	pthread_once(&kdf_once, kdf_init);
	return &kdf.ops;
}

int ktls_gt_rekey_wanted(void)
{
	return (ktls_cfg.versions & KTLS_VERSION_BIT_TLS13) &&
	       ktls_gt.session_set_keylog_function &&
	       ktls_gt.session_get_keylog_function && ktls_gt.hkdf_expand &&
	       ktls_kernel_can_rekey();
}

void ktls_gt_secret_capture(struct ktls_secrets *k, int server,
			    const char *label, const gnutls_datum_t *secret)
{
	enum ktls_secret_kind kind =
		strcmp(label, "CLIENT_TRAFFIC_SECRET_0") == 0 ? KTLS_SECRET_CLIENT_APP
		: strcmp(label, "SERVER_TRAFFIC_SECRET_0") == 0
			? KTLS_SECRET_SERVER_APP
			: KTLS_SECRET_NONE;
	if (kind == KTLS_SECRET_NONE || !secret)
		return;
	ktls_secrets_set(k, ktls_secret_is_rx(kind, server), secret->data,
			 secret->size);
}

int ktls_gt_secret_check(struct ktls_secrets *k, int rx, enum ktls_cipher kc,
			 const gnutls_datum_t *key, const gnutls_datum_t *iv)
{
	if (!key || !iv || !key->data || !iv->data) {
		ktls_secrets_wipe(k, rx);
		return 0;
	}
	return ktls_secrets_match(ktls_gt_kdf_ops(), k, rx, kc, key->data,
				  key->size, iv->data, iv->size);
}
