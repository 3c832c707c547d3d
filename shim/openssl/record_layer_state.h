/* The shim's record layer's state and helpers, shared by its write side
 * (record_layer.c) and read side (record_layer_read.c). Not for outside
 * openssl/. */
#ifndef KTLS_SHIM_OPENSSL_RECORD_LAYER_STATE_H
#define KTLS_SHIM_OPENSSL_RECORD_LAYER_STATE_H

#include <limits.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cipher.h"
#include "session/fd.h"
#include "session/keyupdate.h"

/* The most a kernel recvmsg() returns for one record, and all the rest of
 * a record we could be asked to hold for SSL_peek or a short SSL_read. */
#define REC_MAX 16384
#define CONTINUE INT_MIN

struct ktls_orl {
	int fd;
	uint16_t version;
	enum ktls_cipher kc;
	uint8_t server;
	int io_flags; /* MSG_DONTWAIT/MSG_NOSIGNAL: the program's transport's */
	uint8_t failed;        /* fatal: every call fails, as OpenSSL's would */
	uint8_t ku_owed;       /* KeyUpdate to send first: 0, or 1 + request */
	uint8_t alert_pending; /* close_notify still to go out (EAGAIN) */
	int err;               /* SSL_get_error() of the last call that failed */
	size_t wr_done;        /* of a non-blocking SSL_write being retried */
	uint8_t *rbuf;         /* data read but not yet returned (REC_MAX) */
	size_t roff, rlen;
};

void ktls_orl_raise_ssl(int reason);
int ktls_orl_want(struct ktls_orl *o, int err);
int ktls_orl_syscall_error(struct ktls_orl *o);
int ktls_orl_is_retry(int err);
void ktls_orl_add_shutdown(SSL *s, int bits);
int ktls_orl_send_alert(struct ktls_orl *o, uint8_t level, uint8_t desc);
int ktls_orl_fatal(struct ktls_orl *o, int desc, int reason);
void ktls_orl_count(struct ktls_orl *o, enum ktls_io io, size_t n);
int ktls_orl_flush_key_update(struct ktls_orl *o);
struct ktls_ku_ctx ktls_orl_ku_ctx(struct ktls_orl *o);

#endif
