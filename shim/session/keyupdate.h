/*
 * TLS 1.3 after the handshake, once the kernel holds the records: the one
 * implementation of following the peer's KeyUpdate, sending ours, rekeying
 * the kernel and wiping the secrets, and of the gate that keeps RX out of
 * kernels that could not follow a KeyUpdate. Every engine (OpenSSL's kTLS
 * with the shim's RX, the shim's engine, the record layer for a libssl
 * without kTLS, GnuTLS) calls these and maps the outcome to its library's
 * error conventions.
 */
#ifndef KTLS_SHIM_SESSION_KEYUPDATE_H
#define KTLS_SHIM_SESSION_KEYUPDATE_H

#include <stdint.h>
#include <sys/types.h>

#include "core/cipher.h"
#include "core/fdtab.h"
#include "core/reason.h"
#include "kernel/install.h"
#include "tls/secrets.h"
#include "tls/tls13_keys.h"

/* One session's view for these steps: its fd, cipher, secrets and the KDF
 * of the library that derived them. */
struct ktls_ku_ctx {
	int fd;
	enum ktls_cipher kc;
	struct ktls_secrets *sec;
	const struct ktls_kdf_ops *kdf;
	/* Test seams (NULL: the real ones): the setsockopt() that installs
	 * the next key, and the kernel's ability to take one. */
	const struct ktls_sockops *ops;
	int (*can_rekey)(void);
};

/* Whether TLS 1.3 RX may move: where the kernel can rekey, only with the
 * RX secret held (else a KeyUpdate could not be followed); where it cannot,
 * only with tls13_rx_without_rekey (the config's consent that a KeyUpdate
 * fails the connection). KTLS_R_MOVED: go ahead. */
enum ktls_reason ktls_ku_rx_gate(uint16_t version, int rx_secret_held);

/* Whether the kernel can be given direction rx's next key. */
int ktls_ku_can_rekey(const struct ktls_ku_ctx *c, int rx);

/* Derives direction rx's next traffic secret and installs it. 0; else
 * -1 (errno set) with the secret wiped: a failed rekey leaves nothing. */
int ktls_ku_rekey(const struct ktls_ku_ctx *c, int rx);

/*
 * The peer's KeyUpdate, read by the kernel (which pauses RX behind it on
 * 6.14+). at_start: it began the record. NULL when the next RX key is in;
 * otherwise why not, already logged, and the caller fails the connection.
 */
const char *ktls_ku_follow_peer(const struct ktls_ku_ctx *c, int at_start);

enum ktls_ku_sent {
	KTLS_KU_SENT = 0,  /* out, and the kernel has the next TX key */
	KTLS_KU_NOT_SENT,  /* nothing went out (errno set): retry later */
	KTLS_KU_FAILED,    /* part went out or the rekey failed: logged, the
			    * fd poisoned; the connection must fail */
};

/* Our KeyUpdate through the kernel (request: ask for one back), then the
 * kernel's next TX key; resets the TX key's byte budget. */
enum ktls_ku_sent ktls_ku_send(const struct ktls_ku_ctx *c, int flags,
			       int request);

/* A KeyUpdate the library itself sent through the kernel (OpenSSL 3.0/3.1
 * with kTLS TX): the kernel's next TX key, or the fd poisoned. 0 when the
 * kernel took it. */
int ktls_ku_after_sent(const struct ktls_ku_ctx *c);

/*
 * A library that gives the kernel the next key itself (OpenSSL 3.2+: a
 * setsockopt(TLS_TX/TLS_RX) again on a direction already moved): the same
 * session rekeyed, counted as such. install() makes that setsockopt().
 * Where the kernel cannot take a next key (before 6.14) it is not tried:
 * the fd is poisoned, the reason logged, -1 with EKEYEXPIRED, and the
 * library fails the connection, never reading or sending under a stale
 * key. 0 when the kernel took it.
 */
int ktls_ku_lib_install(int fd, int rx, int (*install)(void *), void *arg);

#endif
