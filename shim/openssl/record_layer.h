/*
 * The record layer over the kernel for OpenSSL sessions whose libssl has no
 * kTLS of its own (OpenSSL's default "no-ktls" build, and many self-built
 * ones). Such a libssl has no record path that reads or writes through the
 * kernel, so the shim's engine installs both directions itself
 * (setsockopt) and from then on the interposed SSL calls run here, with
 * OpenSSL's conventions: SSL_read/_ex, SSL_peek/_ex, SSL_pending,
 * SSL_has_pending, SSL_write/_ex (partial writes, non-blocking retries),
 * SSL_get_error, SSL_shutdown (close_notify as an alert record through the
 * kernel), SSL_key_update and SSL_do_handshake. Both directions or neither:
 * a libssl that writes its own records on a socket whose TX is in the
 * kernel would have them sealed twice. OpenSSL's record layer is fenced
 * off (its BIO_read/BIO_write on the socket are refused), so no path we did
 * not interpose can put a record on the wire under a key the kernel has, or
 * take plaintext the program should get.
 */
#ifndef KTLS_SHIM_OSSL_RECORD_H
#define KTLS_SHIM_OSSL_RECORD_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cipher.h"

struct ktls_orl;

/* Set once any session was moved this way: until then the interposed SSL
 * calls pay one load for this. */
extern atomic_int ktls_orl_active;

/* Set once the program made an SSL BIO (BIO_f_ssl and the BIO_new_ssl*
 * helpers): its reads and writes go through libssl's own record layer
 * without any call the shim interposes, so this process's sessions stay
 * with OpenSSL. */
extern atomic_int ktls_orl_ssl_bio;

/* io_flags: added to each send/recv on fd (MSG_DONTWAIT, MSG_NOSIGNAL as
 * the program's own transport used them); 0: write()/recvmsg() as
 * OpenSSL's socket BIO does. */
struct ktls_orl *ktls_orl_new(int fd, uint16_t version, enum ktls_cipher kc,
			      int server, int io_flags);
void ktls_orl_free(struct ktls_orl *o);

/* The session's record layer when it is ours, else NULL (OpenSSL's). */
struct ktls_orl *ktls_orl_lookup(const SSL *s);
static inline struct ktls_orl *ktls_orl_of(const SSL *s)
{
	if (!atomic_load_explicit(&ktls_orl_active, memory_order_relaxed))
		return NULL;
	return ktls_orl_lookup(s);
}

/* SSL_read's convention: bytes, 0 (close_notify, EOF) or -1. */
int ktls_orl_read(struct ktls_orl *o, SSL *s, void *buf, size_t n, int peek);
/* SSL_write's: bytes (all of n unless partial writes are on) or <= 0. */
int ktls_orl_write(struct ktls_orl *o, SSL *s, const void *buf, size_t n);
size_t ktls_orl_pending(const struct ktls_orl *o);
int ktls_orl_get_error(const struct ktls_orl *o, int ret);
int ktls_orl_shutdown(struct ktls_orl *o, SSL *s);
int ktls_orl_key_update(struct ktls_orl *o, SSL *s, int type);
/* SSL_do_handshake on a moved session: an owed KeyUpdate goes out. */
int ktls_orl_handshake(struct ktls_orl *o, SSL *s);

/* 1 when OpenSSL's own record layer is about to touch this BIO's socket,
 * whose records are ours: the caller refuses (BIO_read/BIO_write). */
int ktls_orl_fenced(BIO *b, int writing);

#endif
