/*
 * gnutls_xfer's transports (--transport MODE): how a GnuTLS session's
 * records reach its TCP socket. "int" is gnutls_transport_set_int (GnuTLS's
 * own push/pull); the others install the program's own push (or vec_push),
 * pull and pull_timeout functions over a transport object, as qemu does, in
 * the shapes the shim must tell apart (gnutls_transport.c says which).
 */
#ifndef KTLS_GNUTLS_TRANSPORT_H
#define KTLS_GNUTLS_TRANSPORT_H

#include <gnutls/gnutls.h>

struct gx_transport;

/* Is NAME a mode ("int", "push", "vec", "readahead", "queue", "dupfd",
 * "send", "sendto")? */
int gx_transport_known(const char *name);

/* Gives session s its transport over the connected socket fd; NULL (and
 * errno) when out of memory or dup() failed. */
struct gx_transport *gx_transport_set(gnutls_session_t s, int fd,
				      const char *name);

/* Writes out what "queue" holds back: 1 when nothing is left, 0 when the
 * socket would block, -1 on an error (errno). Other modes: 1. */
int gx_transport_flush(struct gx_transport *t);

/* Does "queue" still hold bytes GnuTLS believes sent? */
int gx_transport_pending(const struct gx_transport *t);

/* "send" mode: the records pull read, and the biggest one's length (its
 * body as on the wire: ciphertext, tag and all). */
void gx_transport_records(const struct gx_transport *t,
			  unsigned long long *records,
			  unsigned long long *max_record);

/* Frees the object (closes a dupfd's second fd, not the socket). */
void gx_transport_free(struct gx_transport *t);

#endif
