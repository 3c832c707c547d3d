/*
 * Proving a program's own transport (issue 17). qemu hands GnuTLS push and
 * pull functions, curl and HAProxy hand OpenSSL their own BIOs: the TLS
 * library never sees a socket. During the handshake each call of such a
 * transport is watched: the libc calls it makes on this thread (the
 * interposition layer reports them) must carry exactly the bytes the
 * library handed down, or handed up, to and from one TCP socket, in order
 * and within the call. At the move the socket's own TCP count must agree.
 * Then the session's records can bypass the transport: nothing is queued
 * in it, nothing read ahead, nothing added or changed. Anything else gives
 * the reason that names what was seen, and the session stays in userspace.
 *
 * Library-neutral: the OpenSSL and GnuTLS sides wrap their library's
 * transport calls in ktls_xw_call_begin/end; the libc hooks call
 * ktls_xw_sent/received while a watch is running on their thread.
 */
#ifndef KTLS_SHIM_SESSION_XWATCH_H
#define KTLS_SHIM_SESSION_XWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/reason.h"

/* What the watch asks the kernel (a seam: the unit tests play TCP). */
struct ktls_xw_ops {
	int (*is_tcp)(int fd);
	int (*tcp_bytes_read)(int fd, uint64_t *out);
};
extern const struct ktls_xw_ops ktls_xw_ops_sys;

/* RX copies what one transport call read, up to this; a library that asks
 * for more is read past this point without a copy, so the call fails the
 * proof (no TLS library asks for more than a record and a header). */
#define KTLS_XW_RX_MAX (64 * 1024)

struct ktls_xwatch {
	const struct ktls_xw_ops *ops;
	enum ktls_reason verdict; /* KTLS_R_MOVED while everything holds */
	int fd;                   /* the socket; -1 until one carried bytes */
	int dontwait;             /* the transport passed MSG_DONTWAIT */
	int nosignal;             /* its sends passed MSG_NOSIGNAL */
	uint64_t tcp_base;        /* TCP's bytes read before the first call */
	uint64_t tx_total, rx_total;
	/* The transport call under way: TX: the bytes handed down (exp,
	 * exp_n) and how many went out so far (done). RX: what the fd gave
	 * (copy, done) and a read elsewhere (other_fd). */
	int in_call, rx;
	const struct iovec *exp;
	int exp_n;
	size_t exp_len, done;
	int other_fd, other_tcp;
	int pending_fd; /* a TCP read count taken before a read call */
	uint64_t pending_base;
	uint8_t *copy;
};

void ktls_xw_init(struct ktls_xwatch *w, const struct ktls_xw_ops *ops);
void ktls_xw_release(struct ktls_xwatch *w);

/* Around each call of the program's transport, on the calling thread.
 * TX: iov is what the library hands down; RX: cap is what it asked for.
 * end gets what the transport returned. */
void ktls_xw_call_begin_tx(struct ktls_xwatch *w, const struct iovec *iov,
			   int n);
void ktls_xw_call_begin_rx(struct ktls_xwatch *w, size_t cap);
void ktls_xw_call_end(struct ktls_xwatch *w, ssize_t ret, const void *rxbuf);

/* The watch running on this thread, or NULL (a thread-local: the libc
 * hooks ask it only while some watch runs in the process). */
struct ktls_xwatch *ktls_xw_current(void);
/* Makes w this thread's watch; returns the one it replaces. */
struct ktls_xwatch *ktls_xw_set_current(struct ktls_xwatch *w);

/* From the libc hooks: before a read-like call, and after each call with
 * what it did (r: its return value). */
void ktls_xw_before_read(struct ktls_xwatch *w, int fd);
void ktls_xw_sent(struct ktls_xwatch *w, int fd, const struct iovec *iov,
		  int n, ssize_t r, int flags);
void ktls_xw_received(struct ktls_xwatch *w, int fd, const struct iovec *iov,
		      int n, ssize_t r, int flags);

/* At the move: KTLS_R_MOVED and *fd the socket, or the reason. */
enum ktls_reason ktls_xw_verdict(struct ktls_xwatch *w, int *fd);

/* Watches running in the process: the first to begin points the libc
 * hooks at their watching variants (the interposition layer registers how,
 * at start-up), the last to end points them back, so a process with no
 * watch pays nothing on an ordinary call. */
void ktls_xw_register_switch(void (*sw)(int on));
void ktls_xw_hooks_hold(void);
void ktls_xw_hooks_release(void);

#endif
