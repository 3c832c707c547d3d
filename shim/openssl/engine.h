/*
 * The shim's own key installer, for what OpenSSL 3.0/3.1 will not move:
 * TLS 1.3 receive. It learns the peer's application traffic secret from the
 * keylog callback (chained in front of the program's), derives the record
 * key, and hands it to OpenSSL's socket BIO (BIO_CTRL_SET_KTLS), which does
 * the setsockopt(TLS_RX) and switches its record layer to reading records
 * the kernel has already decrypted. Everything above the record layer
 * (SSL_read, SSL_pending, SSL_get_error, close_notify, NewSessionTicket) is
 * then OpenSSL's own code. What 3.0's record layer lacks for TLS 1.3 (it
 * expects an inner content type on every record) the recvmsg() hook adds.
 * KeyUpdate: on kernels that can rekey (6.14+) the shim derives the next
 * secret and installs it, in both directions; on others it fails the
 * connection rather than read or send under a stale key.
 */
#ifndef KTLS_SHIM_ENGINE_H
#define KTLS_SHIM_ENGINE_H

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/cipher.h"
#include "core/fdtab.h"
#include "core/reason.h"
#include "tls/tls13_keys.h"

typedef void (*ktls_keylog_cb)(const SSL *, const char *);
typedef void (*ktls_msg_cb)(int, int, int, const void *, size_t, SSL *,
			    void *);

/* The most plaintext one record may carry, either way: RFC 6066's
 * max_fragment_length where negotiated, else 16 KiB. (OpenSSL 3.0-3.5
 * implement no record_size_limit, RFC 8449: none to honour.) */
unsigned ktls_engine_record_limit(SSL *s);

/* Whether the engine may move anything (TLS 1.3 RX, or everything). */
int ktls_engine_wanted(void);
/* Whether a context should hand us its secrets (the keylog callback). */
int ktls_engine_wants_secrets(void);

/* libcrypto's KDFs, as tls/ and session/ take them. */
const struct ktls_kdf_ops *ktls_engine_kdf(void);

/* engine = shim, and a libssl whose record layer the engine can drive:
 * the engine moves every direction, OpenSSL's own installer none. */
int ktls_engine_all(void);

/* 0 when this libssl's socket BIO ignores the kTLS ctrl (built without
 * kTLS). Probed once. */
int ktls_engine_lib_has_ktls(void);

/* engine = shim or auto on a libssl without kTLS: the shim's record layer
 * runs moved sessions (ossl_record.h). */
int ktls_engine_own(void);

/* Whether a session over the program's own BIO, once its handshake
 * proved the BIO (transport.c), is moved with the shim's engine and record
 * layer: custom_transports on, engine auto or shim, any libssl 3. */
int ktls_engine_own_bio(void);

/* An own-BIO session about to run its handshake: the engine counts its
 * records (message callback, as for engine = shim) and keeps its secrets. */
void ktls_engine_own_bio_begin(SSL *s);

/* Moves both directions with the shim's record layer, or neither: r[0]
 * (TX) and r[1] (RX) come in as finalize's verdicts and leave as the
 * outcome. A TX refused after RX went in poisons the fd. io_flags: the
 * send/recv flags the record layer adds (MSG_DONTWAIT, MSG_NOSIGNAL where
 * the program's own transport used them; 0 for a socket BIO). */
void ktls_engine_move_own(SSL *s, int fd, struct ktls_fd *e,
			  enum ktls_cipher kc, enum ktls_reason r[2],
			  int io_flags);


void ktls_engine_on_ctx_new(SSL_CTX *ctx);
void ktls_engine_on_new(SSL *s);

/* The program's message callbacks, kept behind the engine's record
 * counter (engine = shim) until the session is settled. */
void ktls_engine_set_ctx_msg_cb(SSL_CTX *ctx, ktls_msg_cb cb);
void ktls_engine_set_msg_cb(SSL *s, ktls_msg_cb cb);
void ktls_engine_set_keylog_cb(SSL_CTX *ctx, ktls_keylog_cb cb);
ktls_keylog_cb ktls_engine_get_keylog_cb(const SSL_CTX *ctx);


/*
 * At the end of the first handshake: moves one direction (rx 0 or 1) of
 * what OpenSSL left. engine = auto: TLS 1.3 RX only, and only from the info
 * callback (no application record read yet: sequence number 0). engine =
 * shim: any direction and version, at the sequence number counted from the
 * message callback. Returns KTLS_R_MOVED or why not.
 */
enum ktls_reason ktls_engine_move(SSL *s, int fd, struct ktls_fd *e,
				  enum ktls_cipher kc, int rx);

/* After the session is settled: wipes every secret not needed for a
 * future rekey (all of them where the kernel cannot rekey). */
void ktls_engine_settle(SSL *s, struct ktls_fd *e, enum ktls_cipher kc);

/* From the program's next SSL I/O call after the TX key's byte budget ran
 * out (KTLS_FD_REKEY_DUE): asks OpenSSL for a KeyUpdate, which goes out
 * with the next write and moves the kernel to the next key. */
void ktls_engine_key_update_due(SSL *s, int fd, struct ktls_fd *e,
				int (*key_update)(SSL *, int));

/* recvmsg() on an fd whose RX the engine moved. */
ssize_t ktls_engine_recvmsg(int fd, struct ktls_fd *e, struct msghdr *m,
			    int flags,
			    ssize_t (*real)(int, struct msghdr *, int),
			    int *record_type);

/* 1 when a TLS 1.3 KeyUpdate may go out on this TX-in-kernel fd: the
 * engine can give the kernel the next key right after it. */
int ktls_engine_tx_rekey_ready(struct ktls_fd *e);

/* After a sendmsg() that carried a whole KeyUpdate: the next TX key. */
void ktls_engine_after_key_update_sent(int fd, struct ktls_fd *e);

/* Thread-local check of OpenSSL's setsockopt(TLS_RX) made on our behalf:
 * 0 not ours, 1 ours and as expected, -1 ours but not the bytes we built
 * (an OpenSSL whose internal layout we do not know: refuse it). */
int ktls_engine_check_setsockopt(int fd, int name, const void *val,
				 socklen_t len);

void ktls_engine_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
			 long argl, void *argp);

#endif
