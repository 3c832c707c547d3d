/*
 * OpenSSL 3.2+'s own kTLS at key changes, as the shim follows it. Its
 * record layer is chosen again at every key change, kTLS where the socket
 * BIO takes it: so it moves TLS 1.3 RX by itself, and after each KeyUpdate
 * it gives the kernel the next key with setsockopt(TLS_TX/TLS_RX) again.
 * The shim keeps the same promises as with 3.0's (finalize.c, the engine):
 * TLS 1.3 RX goes in only where a KeyUpdate can be followed, a re-install
 * is a rekey of the same session, and where the kernel cannot take the
 * next key nothing is read or sent under a stale one. And one 3.2+ bug
 * the shim must not expose programs to: read-ahead turned off.
 */
#define _GNU_SOURCE
#include "openssl/session.h"

#include <errno.h>

#include "core/policy.h"
#include "core/real.h"
#include "core/shim.h"
#include "kernel/probe.h"
#include "kernel/uapi.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "session/keyupdate.h"
#include "tls/record.h"

enum ktls_reason ktls_sess_lib_rx_gate(uint16_t version)
{
	if (!ktls_ossl.rekeys_itself)
		return KTLS_R_MOVED;
	/* Refused, 3.2+ falls back to its userspace record layer: a failed
	 * kTLS install at the handshake's key change is "not suitable",
	 * never fatal (ssl_set_new_record_layer tries the default method). */
	return ktls_ku_rx_gate(version, 1);
}

static int lib_follows_tx_rekey(void)
{
	return ktls_ossl.rekeys_itself && ktls_kernel_can_rekey();
}

int ktls_sess_tx_rekey_ok(struct ktls_fd *e)
{
	return ktls_engine_tx_rekey_ready(e) || lib_follows_tx_rekey();
}

const char *ktls_sess_tx_rekey_why_not(void)
{
	return ktls_ossl.rekeys_itself
		       ? "this kernel cannot take the next TX key (6.14+ can)"
		       : "OpenSSL 3.0 cannot give the kernel the next TX key";
}

struct reinstall {
	int fd, name;
	const void *val;
	socklen_t len;
};

static int reinstall(void *arg)
{
	const struct reinstall *r = arg;
	return KTLS_REAL(setsockopt)(r->fd, SOL_TLS, r->name, r->val, r->len);
}

int ktls_sess_lib_rekey(int fd, int name, const void *val, socklen_t len)
{
	/* 3.2+ treats a failed re-install as fatal ("no suitable record
	 * layer": its current method is kTLS and has no fallback), which is
	 * what the connection must do then; the shim says why first. */
	struct reinstall r = { fd, name, val, len };
	return ktls_ku_lib_install(fd, name == TLS_RX, reinstall, &r);
}

void ktls_sess_lib_tx_budget(struct ktls_fd *e, enum ktls_cipher kc)
{
	if (lib_follows_tx_rekey() &&
	    atomic_load(&e->version) == KTLS_TLS13 &&
	    (atomic_load(&e->flags) & KTLS_FD_TX))
		atomic_store(&e->tx_key_limit, ktls_policy_tx_key_budget(kc));
}

/*
 * 3.2+'s kTLS record layer reads with read-ahead on (ktls_new_record_layer
 * sets it), and turned off it fails the next read with "record layer
 * failure" without a system call (openssl/openssl#32336, open). CPython's
 * unwrap() turns it off before its second SSL_shutdown(): seen in the VM
 * with 3.5 and Python 3.13, with and without the shim, wherever RX was in
 * the kernel. Read-ahead only keeps OpenSSL from reading past a record in
 * a socket it reads itself; with RX in the kernel there is nothing to
 * read past, so it is left on, as the proposed fix does.
 */
int ktls_sess_read_ahead_kept(SSL *s, int yes)
{
	if (yes || !ktls_ossl.rekeys_itself)
		return 0;
	BIO *rb = ktls_ossl.SSL_get_rbio(s);
	return rb && ktls_ossl.BIO_ctrl(rb, BIO_CTRL_GET_KTLS_RECV, 0, NULL) > 0;
}
