#define _GNU_SOURCE
#include "session/keyupdate.h"

#include <errno.h>
#include <stdatomic.h>

#include "core/config.h"
#include "core/log.h"
#include "core/shim.h"
#include "core/stats.h"
#include "kernel/install.h"
#include "kernel/probe.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "tls/crypto_info.h"
#include "tls/handshake.h"
#include "tls/record.h"

enum ktls_reason ktls_ku_rx_gate(uint16_t version, int rx_secret_held)
{
	if (version != KTLS_TLS13)
		return KTLS_R_MOVED;
	if (ktls_kernel_can_rekey())
		return rx_secret_held ? KTLS_R_MOVED : KTLS_R_NO_SECRET;
	return ktls_cfg.tls13_rx_without_rekey ? KTLS_R_MOVED
					       : KTLS_R_TLS13_RX_NO_REKEY;
}

static int kernel_can_rekey(const struct ktls_ku_ctx *c)
{
	return c->can_rekey ? c->can_rekey() : ktls_kernel_can_rekey();
}

/* The kernel holds direction rx's next key: one rekey of the session (not
 * a new one), and TX starts a fresh byte budget. */
static void next_key_in(int fd, int rx)
{
	atomic_fetch_add(rx ? &ktls_stats.rekeys_rx : &ktls_stats.rekeys_tx,
			 1);
	struct ktls_fd *e = rx ? NULL : ktls_fd_get(fd);
	if (e) {
		atomic_store(&e->tx_key_bytes, 0);
		atomic_fetch_and(&e->flags, ~(uint32_t)KTLS_FD_REKEY_DUE);
	}
}

int ktls_ku_can_rekey(const struct ktls_ku_ctx *c, int rx)
{
	return c->sec && ktls_secrets_held(c->sec, rx) && kernel_can_rekey(c);
}

int ktls_ku_rekey(const struct ktls_ku_ctx *c, int rx)
{
	struct ktls_crypto_info ci;
	int err = EINVAL;
	if (!ktls_ku_can_rekey(c, rx))
		goto fail;
	uint8_t *secret = rx ? c->sec->rx : c->sec->tx;
	size_t len = rx ? c->sec->rx_len : c->sec->tx_len;
	if (ktls_tls13_next_secret(c->kdf, secret, len) != 0 ||
	    ktls_tls13_crypto_info(c->kdf, &ci, c->kc, secret, len, 0) != 0)
		goto fail;
	/* ktls_install_dir wipes ci whatever happens. */
	if (ktls_install_dir(c->ops ? c->ops : &ktls_sockops_sys, c->fd,
			     rx ? TLS_RX : TLS_TX, &ci, &err) != KTLS_R_MOVED)
		goto fail;
	next_key_in(c->fd, rx);
	return 0;
fail:
	if (c->sec)
		ktls_secrets_wipe(c->sec, rx);
	errno = err;
	return -1;
}

/* RX: nothing may be read under the key the peer dropped. TX: the peer
 * reads under the next key from here on, or would read records under one
 * it dropped: nothing more may go out. Either way the connection fails. */
static void fail_connection(int fd, int rx, const char *what)
{
	ktls_err("fd=%d: TLS 1.3 KeyUpdate %s%s; failing this connection "
		 "rather than %s under a stale key",
		 fd, rx ? "from the peer: " : "", what,
		 rx ? "reading" : "sending");
	struct ktls_fd *e = ktls_fd_get(fd);
	if (e)
		atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
}

const char *ktls_ku_follow_peer(const struct ktls_ku_ctx *c, int at_start)
{
	const char *why = NULL;
	if (!at_start)
		why = "behind another message in one record, where the kernel "
		      "does not look for it";
	else if (!kernel_can_rekey(c))
		why = "this kernel cannot take the next key (6.14+ can)";
	else if (!c->sec || !ktls_secrets_held(c->sec, 1))
		why = "the traffic secret the next key derives from is not "
		      "known";
	else if (ktls_ku_rekey(c, 1) != 0)
		why = "installing the next key failed";
	if (why) {
		fail_connection(c->fd, 1, why);
		return why;
	}
	ktls_dbg("fd=%d: TLS 1.3 KeyUpdate received; next RX key installed",
		 c->fd);
	return NULL;
}

static int after_sent(const struct ktls_ku_ctx *c, int request)
{
	if (ktls_ku_rekey(c, 0) != 0) {
		fail_connection(c->fd, 0,
				"sent, but the kernel did not take the next TX "
				"key");
		return -1;
	}
	ktls_dbg("fd=%d: TLS 1.3 KeyUpdate sent%s; next TX key installed",
		 c->fd, request ? " (update requested)" : "");
	return 0;
}

int ktls_ku_after_sent(const struct ktls_ku_ctx *c)
{
	return after_sent(c, 0);
}

enum ktls_ku_sent ktls_ku_send(const struct ktls_ku_ctx *c, int flags,
			       int request)
{
	uint8_t msg[KTLS_KEY_UPDATE_LEN];
	ktls_hs_key_update_msg(msg, request);
	ssize_t n = ktls_record_send(c->fd, KTLS_CT_HANDSHAKE, msg,
				     sizeof(msg), flags);
	if (n < 0)
		return KTLS_KU_NOT_SENT;
	if (n != (ssize_t)sizeof(msg)) {
		fail_connection(c->fd, 0, "only partly sent");
		return KTLS_KU_FAILED;
	}
	return after_sent(c, request) == 0 ? KTLS_KU_SENT : KTLS_KU_FAILED;
}

int ktls_ku_lib_install(int fd, int rx, int (*install)(void *), void *arg)
{
	if (!ktls_kernel_can_rekey()) {
		fail_connection(fd, rx,
				rx ? "this kernel cannot take the next key "
				     "(6.14+ can)"
				   : "sent, but this kernel cannot take the "
				     "next TX key (6.14+ can)");
		errno = EKEYEXPIRED;
		return -1;
	}
	int rc = install(arg);
	if (rc != 0) {
		int err = errno;
		fail_connection(fd, rx,
				rx ? "installing the next key failed"
				   : "sent, but the kernel did not take the "
				     "next TX key");
		errno = err;
		return rc;
	}
	next_key_in(fd, rx);
	ktls_dbg("fd=%d: TLS 1.3 KeyUpdate %s; the library installed the next "
		 "%s key",
		 fd, rx ? "received" : "sent", rx ? "RX" : "TX");
	return 0;
}
