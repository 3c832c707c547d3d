/*
 * Putting a TCP socket's TLS record layer into the kernel: TCP_ULP "tls",
 * then SOL_TLS TLS_TX / TLS_RX. Every call goes through a struct ktls_sockops
 * so unit tests can play the kernel (including one without kTLS).
 */
#ifndef KTLS_SHIM_KTLS_INSTALL_H
#define KTLS_SHIM_KTLS_INSTALL_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/reason.h"
#include "tls/crypto_info.h"

struct ktls_sockops {
	int (*setsockopt)(int fd, int level, int name, const void *val,
			  socklen_t len);
	int (*getsockopt)(int fd, int level, int name, void *val,
			  socklen_t *len);
};

/* The real system calls (the shim's interposed setsockopt is bypassed). */
extern const struct ktls_sockops ktls_sockops_sys;

/* TCP and ESTABLISHED, the only state in which the kernel takes TCP_ULP. */
enum ktls_reason ktls_check_socket(const struct ktls_sockops *ops, int fd);

/* 1 when the "tls" ULP is already attached, 0 when not, -1 on error. */
int ktls_has_ulp(const struct ktls_sockops *ops, int fd);

/* Attaches the ULP; *err gets errno on failure. */
enum ktls_reason ktls_attach_ulp(const struct ktls_sockops *ops, int fd,
				 int *err);

/* Installs one direction (TLS_TX or TLS_RX) and wipes ci in every case. */
enum ktls_reason ktls_install_dir(const struct ktls_sockops *ops, int fd,
				  int dir, struct ktls_crypto_info *ci,
				  int *err);

/*
 * What the kernel holds for a direction: 1 and version/cipher_type when
 * active, 0 when not. Asks for the 4-byte header only, so the kernel never
 * copies the key back to us.
 */
int ktls_query_dir(const struct ktls_sockops *ops, int fd, int dir,
		   uint16_t *version, uint16_t *cipher_type);

enum ktls_reason ktls_reason_from_ulp_errno(int err);
enum ktls_reason ktls_reason_from_install_errno(int err);

/* What the kernel holds for direction dir of fd, asked after an install:
 * 1 exactly this version and cipher, 0 something else (a disagreement:
 * nothing is safe), -1 nothing (or it cannot say). */
int ktls_kernel_holds(const struct ktls_sockops *ops, int fd, int dir,
		      uint16_t version, enum ktls_cipher kc);

#endif
