/*
 * What the shim does around OpenSSL's own kTLS: turn it on in every SSL,
 * watch and police the setsockopt calls it makes, check the result once the
 * handshake is done, and refuse anything that would put bytes on the wire
 * under the wrong key.
 */
#ifndef KTLS_SHIM_SESSION_H
#define KTLS_SHIM_SESSION_H

#include <openssl/ssl.h>
#include <sys/socket.h>

#include "fdtab.h"

enum ktls_io { KTLS_IO_READ = 0, KTLS_IO_WRITE = 1 };

void ktls_sess_on_new(SSL *s);

/* Before an SSL I/O or handshake call: -1 (errno set) refuses the call. */
int ktls_sess_pre(SSL *s, enum ktls_io io);

/* After it: finalises a newly finished handshake, counts kernel bytes. */
void ktls_sess_post(SSL *s, enum ktls_io io, size_t bytes);

/* 0 when the program may ask for a TLS 1.3 KeyUpdate on this session. */
int ktls_sess_key_update_ok(SSL *s);

/* setsockopt() on TCP_ULP or SOL_TLS, observed and policed. */
int ktls_sess_setsockopt(int fd, int level, int name, const void *val,
			 socklen_t len);

/* 1 when this sendmsg() must not go out (errno set). */
int ktls_sess_sendmsg_refused(int fd, struct ktls_fd *e,
			      const struct msghdr *m);

/* 1 when a write-like call on this fd must be refused (errno set). */
int ktls_sess_send_refused(struct ktls_fd *e);

void ktls_sess_count(struct ktls_fd *e, enum ktls_io io, size_t bytes);

void ktls_sess_close(int fd, struct ktls_fd *e);

#endif
