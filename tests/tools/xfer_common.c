/* See xfer_common.h. */
#define _GNU_SOURCE
#include "xfer_common.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/tls.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "ktls_shim.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* xorshift64*: a cheap deterministic stream; content only has to differ
 * per seed and be hard to get right by accident. */
void xfer_fill(uint8_t *b, size_t n, uint64_t *st, int text)
{
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			*st ^= *st >> 12;
			*st ^= *st << 25;
			*st ^= *st >> 27;
		}
		b[i] = (uint8_t)((*st * 0x2545F4914F6CDD1DULL) >> (8 * (i & 7)));
		if (text) /* printable lines: what line-based echo peers take */
			b[i] = (b[i] & 63) == 63 ? '\n' : (uint8_t)('0' + (b[i] & 63));
	}
}

void xfer_hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

int xfer_kernel_has(int fd, int dir)
{
	struct tls_crypto_info hdr = { 0 };
	socklen_t len = sizeof(hdr); /* header only: the kernel returns no key */
	return getsockopt(fd, SOL_TLS, dir, &hdr, &len) == 0 &&
	       hdr.cipher_type != 0;
}

/* The shim's public query, looked up at run time as its header advises:
 * "-" when the shim is not loaded. */
void xfer_shim_state(int fd, char *out, size_t len)
{
	int (*q)(int, struct ktls_shim_fd_info *) =
		(int (*)(int, struct ktls_shim_fd_info *))dlsym(
			RTLD_DEFAULT, "ktls_shim_fd_info");
	struct ktls_shim_fd_info i;
	if (!q || q(fd, &i) != 0) {
		snprintf(out, len, "-");
		return;
	}
	snprintf(out, len, "kernel=%u,tracked=%d,tx=%s,rx=%s", i.kernel,
		 i.tracked, i.tx_state ? i.tx_state : "-",
		 i.rx_state ? i.rx_state : "-");
}

/* Waits for what the TLS library asked for, and for incoming data while we still
 * read: a peer that only reads once it is done sending must not deadlock
 * against our own blocked write. */
int xfer_wait_io(int fd, int want_write, int reading)
{
	short ev = (short)((want_write ? POLLOUT : 0) |
			   (reading || !want_write ? POLLIN : 0));
	struct pollfd p = { fd, ev, 0 };
	int r = poll(&p, 1, 60000);
	if (r == 0) {
		fprintf(stderr, "%s: no progress for 60 s\n", xfer_prog);
		exit(4);
	}
	return r;
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Both close_notify alerts are through, but the peer may still send: OpenSSL
 * 3.0 answers a KeyUpdate with update_requested even after it has sent its
 * close_notify, and once ours has arrived nothing reads that answer. Closing
 * with it unread makes TCP send a reset, and the peer, still reading towards
 * our close_notify, fails with ECONNRESET (most runs with --key-updates on
 * both sides). So half-close, then read to the peer's FIN before close().
 * recvmsg with room for a record type: where the kernel holds TLS RX, a
 * handshake record is consumed instead of failing the read with EIO. Two
 * iovecs: one with a control buffer is the shape of OpenSSL's record read,
 * which the shim's engine takes over, and this read is below TLS.
 * Bounded, for a peer that never closes.
 */
void xfer_drain_to_eof(int fd)
{
	if (shutdown(fd, SHUT_WR) != 0)
		return;
	long long end = now_ms() + 5000;
	char buf[16384];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(unsigned char))];
	} c;
	for (long long left; (left = end - now_ms()) > 0;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return;
		struct iovec v[2] = {
			{ .iov_base = buf, .iov_len = sizeof(buf) / 2 },
			{ .iov_base = buf + sizeof(buf) / 2,
			  .iov_len = sizeof(buf) / 2 },
		};
		struct msghdr m = { .msg_iov = v, .msg_iovlen = 2,
				    .msg_control = c.b,
				    .msg_controllen = sizeof(c.b) };
		ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}
