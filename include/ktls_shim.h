/*
 * ktls-shim public interface.
 *
 * A program that wants to know whether its TLS records are handled by the
 * kernel (like GnuTLS's gnutls_transport_is_ktls_enabled()) asks here. The
 * answer comes from the kernel (getsockopt SOL_TLS), so it is also right for
 * sockets the shim did not move itself.
 *
 * Programs that must run with or without the shim preloaded should not link
 * against libktls-shim.so; look the function up at run time instead:
 *
 *     int (*q)(int, struct ktls_shim_fd_info *) =
 *         (int (*)(int, struct ktls_shim_fd_info *))
 *             dlsym(RTLD_DEFAULT, "ktls_shim_fd_info");
 *     if (q && q(fd, &info) == 0 && (info.kernel & KTLS_SHIM_TX)) ...
 */
#ifndef KTLS_SHIM_H
#define KTLS_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

#define KTLS_SHIM_TX 1u
#define KTLS_SHIM_RX 2u

struct ktls_shim_fd_info {
	unsigned kernel;      /* KTLS_SHIM_TX | KTLS_SHIM_RX: in the kernel */
	unsigned version;     /* 0x0303 TLS 1.2, 0x0304 TLS 1.3; 0 if none */
	unsigned cipher;      /* TLS_CIPHER_* of <linux/tls.h>; 0 if none */
	int tracked;          /* 1 if the shim saw this session's handshake */
	const char *tx_state; /* "kernel", or why TX stayed in userspace */
	const char *rx_state; /* likewise for RX; NULL when not tracked */
	unsigned long long kernel_tx_bytes; /* via the kernel, as counted */
	unsigned long long kernel_rx_bytes; /* by the shim's hooks */
};

/*
 * Fills *info for fd. Returns 0, or -1 with errno EBADF (fd not open) or
 * ENOTSOCK. A TCP socket without kTLS returns 0 with info->kernel == 0.
 */
int ktls_shim_fd_info(int fd, struct ktls_shim_fd_info *info);

/* The library's version string, e.g. "0.1.0". */
const char *ktls_shim_version(void);

#ifdef __cplusplus
}
#endif

#endif
