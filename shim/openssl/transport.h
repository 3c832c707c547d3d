/* A program's own OpenSSL BIO, proven or not during the handshake
 * (transport.c, session/xwatch.h). */
#ifndef KTLS_SHIM_OPENSSL_TRANSPORT_H
#define KTLS_SHIM_OPENSSL_TRANSPORT_H

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "core/reason.h"

/* Around the real SSL I/O call: a token when this call runs a handshake
 * over the program's own BIO (then end it with the token), else NULL. */
void *ktls_oxp_watch_begin(SSL *s);
void ktls_oxp_watch_end(void *token);

/* libssl's BIO_write/BIO_read (hooks.c), through the watch when the BIO
 * is the program's own of a handshake on this thread. */
int ktls_oxp_bio_write(int (*f)(BIO *, const void *, int), BIO *b,
		       const void *d, int n);
int ktls_oxp_bio_read(int (*f)(BIO *, void *, int), BIO *b, void *d, int n);

/* At the end of the handshake: KTLS_R_MOVED where the BIO is proven (a
 * pass-through to one TCP socket), else why the session stays; *fd its
 * socket where one carried its bytes (-1: none), *io_flags the send/recv
 * flags its transport used (MSG_DONTWAIT, MSG_NOSIGNAL). Asked again, the
 * same answer while nothing more went through the BIO. */
enum ktls_reason ktls_oxp_verdict(SSL *s, int *fd, int *io_flags);

/* The ex_data free callback of the watch. */
void ktls_oxp_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		      long argl, void *argp);

#endif
