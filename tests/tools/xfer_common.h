/*
 * What tls_xfer (OpenSSL) and gnutls_xfer (GnuTLS) share, so that the two
 * send the same stream for a seed, report the kernel's and the shim's view
 * the same way, and end a connection the same way.
 */
#ifndef KTLS_XFER_COMMON_H
#define KTLS_XFER_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Prefixes the messages below ("tls_xfer", "gnutls_xfer"). */
extern const char *xfer_prog;

/* xorshift64*: a cheap deterministic stream; content only has to differ
 * per seed and be hard to get right by accident. text: printable lines
 * only, what line-based echo peers take. */
void xfer_fill(uint8_t *b, size_t n, uint64_t *st, int text);

void xfer_hex(const unsigned char *d, unsigned n, char *out);

/* getsockopt(SOL_TLS, dir): does the kernel hold this direction? */
int xfer_kernel_has(int fd, int dir);

/* The shim's public query, looked up at run time as its header advises:
 * "-" when the shim is not loaded. */
void xfer_shim_state(int fd, char *out, size_t len);

/* Waits for what the TLS library asked for, and for incoming data while
 * we still read; exits 4 after 60 s without progress. */
int xfer_wait_io(int fd, int want_write, int reading);

/* After both close_notify alerts: half-close and read to the peer's FIN
 * (bounded), so a late record the peer sent does not turn our close()
 * into a reset (see the .c). */
void xfer_drain_to_eof(int fd);

#endif
