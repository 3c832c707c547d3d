/*
 * What the shim does around OpenSSL's own kTLS: turn it on in every SSL_CTX
 * and SSL, watch and police the setsockopt calls OpenSSL makes, check the
 * result when the handshake is done (from an info callback chained in front
 * of the program's, so BIO_f_ssl users that never call SSL_read through the
 * PLT are seen too), and refuse anything that would put bytes on the wire
 * under the wrong key.
 */
#ifndef KTLS_SHIM_SESSION_H
#define KTLS_SHIM_SESSION_H

#include <openssl/ssl.h>
#include <sys/socket.h>

#include "core/cipher.h"
#include "core/fdtab.h"
#include "core/reason.h"
#include "session/fd.h"

typedef void (*ktls_info_cb)(const SSL *, int, int);

/* The socket fd behind a socket BIO, or -1 (no BIO, another kind). */
int ktls_ssl_sock_fd(BIO *b);

void ktls_sess_on_ctx_new(SSL_CTX *ctx);
void ktls_sess_on_new(SSL *s);
/* An SSL over the program's own BIO: OpenSSL's own kTLS off again where
 * the shim turned it on (never where the program did). */
void ktls_sess_own_bio(SSL *s);

/* The program's info callbacks, kept behind ours. */
void ktls_sess_set_ctx_info_cb(SSL_CTX *ctx, ktls_info_cb cb);
ktls_info_cb ktls_sess_get_ctx_info_cb(const SSL_CTX *ctx);
void ktls_sess_set_info_cb(SSL *s, ktls_info_cb cb);
ktls_info_cb ktls_sess_get_info_cb(const SSL *s);

/*
 * SSL_CTX_{get,set,clear}_options and SSL_*: the real call (ctx or s;
 * set, else clear, else get), with SSL_OP_ENABLE_KTLS left out of the
 * answer when the shim, not the program, turned it on.
 */
uint64_t ktls_sess_options(SSL_CTX *ctx, SSL *s, uint64_t set, uint64_t clear);

/* From the info callback (finalize.c): a handshake starts (a reused fd
 * number or a renegotiation starts afresh), a handshake is done. */
void ktls_sess_handshake_start(SSL *s);
void ktls_sess_handshake_done(SSL *s, int from_cb);

/* After an SSL I/O call: finalises a handshake the callback missed. */
void ktls_sess_after_io(SSL *s);

/* Before SSL_write/_ex: sends a KeyUpdate first when the TX key's byte
 * budget ran out. */
void ktls_sess_before_write(SSL *s);

/* 0 when the program may ask for a TLS 1.3 KeyUpdate on this session. */
int ktls_sess_key_update_ok(SSL *s);

/* setsockopt() on TCP_ULP or SOL_TLS, observed and policed. */
int ktls_sess_setsockopt(int fd, int level, int name, const void *val,
			 socklen_t len);

/* OpenSSL 3.2+ (lib_rekey.c). Whether it may move TLS 1.3 RX here:
 * KTLS_R_MOVED, or why not (its TLS_RX setsockopt is then refused). */
enum ktls_reason ktls_sess_lib_rx_gate(uint16_t version);
/* Whether a TLS 1.3 KeyUpdate may go out on this TX-in-kernel fd: the
 * kernel gets the next key from the shim's engine (3.0/3.1) or from
 * OpenSSL 3.2+ itself (6.14+). If not, why not, for the error lines. */
int ktls_sess_tx_rekey_ok(struct ktls_fd *e);
const char *ktls_sess_tx_rekey_why_not(void);
/* Its setsockopt(name) on a direction already moved: a rekey. */
int ktls_sess_lib_rekey(int fd, int name, const void *val, socklen_t len);
/* 1 when SSL_set_read_ahead(s, yes) must be ignored: 3.2+'s kTLS record
 * layer fails every later read without read-ahead (openssl#32336). */
int ktls_sess_read_ahead_kept(SSL *s, int yes);
/* After a moved TLS 1.3 TX: the key's byte budget (key_update_bytes). */
void ktls_sess_lib_tx_budget(struct ktls_fd *e, enum ktls_cipher kc);

/* 1 when this sendmsg() must not go out (errno set). */
int ktls_sess_sendmsg_refused(int fd, struct ktls_fd *e,
			      const struct msghdr *m);

/* After a sendmsg() went out: a whole TLS 1.3 KeyUpdate moves TX to the
 * next key. */
void ktls_sess_after_sendmsg(int fd, struct ktls_fd *e, const struct msghdr *m,
			     ssize_t n);

/* recvmsg() on a tracked fd: counted, and adjusted for sessions whose RX
 * the shim's engine moved. */
ssize_t ktls_sess_recvmsg(int fd, struct ktls_fd *e, struct msghdr *m,
			  int flags);

/* sendfile() to a tracked socket: straight through when TX is in the
 * kernel, through the TLS session when it is not; never plaintext. */
ssize_t ktls_sess_sendfile(struct ktls_fd *e, int out_fd, int in_fd,
			   off_t *offset, size_t count,
			   ssize_t (*real)(int, int, off_t *, size_t));

/* ex_data free callback: the fd must stop pointing at a freed SSL. */
void ktls_sess_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		       long argl, void *argp);


#endif
