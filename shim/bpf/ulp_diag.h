/*
 * Software or NIC offload? The kernel says so per socket and per direction
 * in its sock_diag reply: INET_DIAG_ULP_INFO { INET_ULP_INFO_NAME "tls",
 * INET_ULP_INFO_TLS { TLS_INFO_TXCONF, TLS_INFO_RXCONF, ... } }.
 * The parser is pure (a buffer in, a struct out) so that hand-built device
 * replies can be tested on a machine without a TLS-offload NIC; the query
 * uses raw syscalls because the shim interposes socket calls.
 */
#ifndef KTLS_SHIM_BPF_ULP_DIAG_H
#define KTLS_SHIM_BPF_ULP_DIAG_H

#include <stddef.h>
#include <stdint.h>

enum ktls_ulp_kind {
	KTLS_ULP_NONE = 0, /* no INET_DIAG_ULP_INFO: no ULP on the socket */
	KTLS_ULP_TLS,
	KTLS_ULP_OTHER, /* mptcp, espintcp, ... */
};

struct ktls_ulp_info {
	uint8_t ulp;        /* enum ktls_ulp_kind */
	uint16_t version;   /* TLS_INFO_VERSION, 0 if absent */
	uint16_t cipher;    /* TLS_INFO_CIPHER (TLS_CIPHER_*), 0 if absent */
	uint16_t txconf;    /* TLS_CONF_*, 0 if absent */
	uint16_t rxconf;
	uint8_t zc_ro_tx;   /* TLS_INFO_ZC_RO_TX flag */
	uint8_t rx_no_pad;  /* TLS_INFO_RX_NO_PAD flag */
	uint64_t cookie;    /* idiag_cookie of the reply */
};

/*
 * One SOCK_DIAG_BY_FAMILY message body: struct inet_diag_msg followed by
 * attributes. Returns 0, or EBADMSG for anything truncated, overlong or of
 * the wrong size (out is then zeroed: the caller must not half-trust it).
 */
int ktls_ulp_parse_msg(const void *body, size_t len, struct ktls_ulp_info *out);

/*
 * A whole netlink reply (one or more nlmsghdr). Returns 0 with out filled
 * from the first SOCK_DIAG_BY_FAMILY message, the kernel's errno from an
 * NLMSG_ERROR, ENOENT when the reply holds neither, EBADMSG when malformed.
 */
int ktls_ulp_parse_reply(const void *buf, size_t len,
			 struct ktls_ulp_info *out);

/* TLS_CONF_* -> KTLS_MODE_* (ktls_stats.h): SW -> SW, HW and HW_RECORD ->
 * DEVICE, BASE -> NONE, absent or unknown (a newer kernel) -> KERNEL. */
int ktls_ulp_conf_mode(unsigned conf);

/*
 * The modes to record for a socket the shim moved. info NULL (the query
 * failed) or not a TLS ULP: KTLS_MODE_KERNEL for each direction the shim
 * moved, NONE for the others; otherwise what the kernel says.
 */
void ktls_ulp_modes(const struct ktls_ulp_info *info, int shim_tx,
		    int shim_rx, uint8_t *tx_mode, uint8_t *rx_mode);

/*
 * Asks the kernel about one TCP socket of this process (matched by its
 * addresses and socket cookie). Returns 0, or an errno (that of the kernel's
 * answer, e.g. ESTALE when the 4-tuple now belongs to another socket).
 */
int ktls_ulp_query(int fd, uint64_t cookie, struct ktls_ulp_info *out);

#endif
