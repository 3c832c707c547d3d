#define _GNU_SOURCE
#include "kernel/install.h"

#include "kernel/uapi.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fault.h"


/*
 * Raw syscalls: the shim interposes setsockopt() to watch what OpenSSL does,
 * and its own calls must not be mistaken for the program's.
 */
static int sys_setsockopt(int fd, int level, int name, const void *val,
			  socklen_t len)
{
#ifdef KTLS_FAULT
	int fault = ktls_fault_sockopt(1, level, name);
	if (fault)
		return errno = fault, -1;
#endif
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

static int sys_getsockopt(int fd, int level, int name, void *val,
			  socklen_t *len)
{
#ifdef KTLS_FAULT
	int fault = ktls_fault_sockopt(0, level, name);
	if (fault)
		return errno = fault, -1;
#endif
	return (int)syscall(SYS_getsockopt, fd, level, name, val, len);
}

const struct ktls_sockops ktls_sockops_sys = { sys_setsockopt,
					       sys_getsockopt };

enum ktls_reason ktls_check_socket(const struct ktls_sockops *ops, int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);
	if (ops->getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0 ||
	    v != IPPROTO_TCP)
		return KTLS_R_NOT_TCP;
	struct tcp_info ti;
	len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (ops->getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    ti.tcpi_state != TCP_ESTABLISHED)
		return KTLS_R_NOT_CONNECTED;
	return KTLS_R_MOVED;
}

int ktls_has_ulp(const struct ktls_sockops *ops, int fd)
{
	char name[16] = { 0 };
	socklen_t len = sizeof(name);
	if (ops->getsockopt(fd, IPPROTO_TCP, TCP_ULP, name, &len) != 0)
		return -1;
	return strcmp(name, "tls") == 0;
}

enum ktls_reason ktls_reason_from_ulp_errno(int err)
{
	switch (err) {
	case ENOENT: /* no tls module, and none can be loaded */
		return KTLS_R_NO_KERNEL_TLS;
	case ENOTCONN:
		return KTLS_R_NOT_CONNECTED;
	case EOPNOTSUPP:
	case ENOPROTOOPT:
		return KTLS_R_NOT_TCP;
	default:
		return KTLS_R_ULP_FAILED;
	}
}

enum ktls_reason ktls_reason_from_install_errno(int err)
{
	switch (err) {
	case ENOENT: /* crypto API could not allocate the AEAD */
	case EINVAL: /* cipher type unknown to this kernel */
		return KTLS_R_KERNEL_CIPHER;
	case ENOPROTOOPT: /* SOL_TLS without the ULP */
		return KTLS_R_NO_KERNEL_TLS;
	default:
		return KTLS_R_SETSOCKOPT_FAILED;
	}
}

enum ktls_reason ktls_attach_ulp(const struct ktls_sockops *ops, int fd,
				 int *err)
{
	*err = 0;
	if (ops->setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 4) == 0)
		return KTLS_R_MOVED;
	*err = errno;
	/* EEXIST: a ULP is attached already; fine only if it is ours. */
	if (*err == EEXIST && ktls_has_ulp(ops, fd) == 1)
		return KTLS_R_MOVED;
	return ktls_reason_from_ulp_errno(*err);
}

enum ktls_reason ktls_install_dir(const struct ktls_sockops *ops, int fd,
				  int dir, struct ktls_crypto_info *ci,
				  int *err)
{
	int rc = ops->setsockopt(fd, SOL_TLS, dir, &ci->u, ci->len);
	*err = rc == 0 ? 0 : errno;
	/* The kernel has copied the key (or refused it): either way this copy
	 * has no further use. */
	ktls_crypto_info_wipe(ci);
	return rc == 0 ? KTLS_R_MOVED : ktls_reason_from_install_errno(*err);
}

int ktls_query_dir(const struct ktls_sockops *ops, int fd, int dir,
		   uint16_t *version, uint16_t *cipher_type)
{
	struct tls_crypto_info hdr = { 0 };
	socklen_t len = sizeof(hdr);
	if (ops->getsockopt(fd, SOL_TLS, dir, &hdr, &len) != 0)
		return errno == ENOPROTOOPT || errno == EBUSY ||
				       errno == ENOTCONN || errno == EOPNOTSUPP
			       ? 0
			       : -1;
	if (hdr.cipher_type == 0)
		return 0; /* ULP attached, direction not configured */
	if (version)
		*version = hdr.version;
	if (cipher_type)
		*cipher_type = hdr.cipher_type;
	return 1;
}

int ktls_kernel_holds(const struct ktls_sockops *ops, int fd, int dir,
		      uint16_t version, enum ktls_cipher kc)
{
	uint16_t v = 0, ct = 0;
	int k = ktls_query_dir(ops, fd, dir, &v, &ct);
	const struct ktls_cipher_desc *d = ktls_cipher_desc(kc);
	if (k != 1)
		return -1;
	return d && v == version && ct == d->kernel_type;
}
