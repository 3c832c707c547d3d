#define _GNU_SOURCE
#include "kernel/record_limit.h"

#include "kernel/uapi.h"

#include <errno.h>

#include "core/cipher.h"
#include "tls/record.h"

/* Newer <linux/tls.h>; Debian 12's and 13's headers lack it. */
#ifndef TLS_TX_MAX_PAYLOAD_LEN
#define TLS_TX_MAX_PAYLOAD_LEN 5
#endif

enum ktls_reason ktls_tx_limit_set(const struct ktls_sockops *ops, int fd,
				   unsigned max_content)
{
	if (max_content >= KTLS_MAX_PLAINTEXT)
		return KTLS_R_MOVED; /* the kernel's own limit */
	uint16_t v = (uint16_t)max_content;
	/* ENOPROTOOPT: a kernel without the option; EINVAL: one below its
	 * minimum (64). Either way the kernel would send bigger records. */
	if (ops->setsockopt(fd, SOL_TLS, TLS_TX_MAX_PAYLOAD_LEN, &v,
			    sizeof(v)) != 0)
		return KTLS_R_RECORD_SIZE_LIMITED;
	return KTLS_R_MOVED;
}

int ktls_tx_limit_holds(const struct ktls_sockops *ops, int fd,
			uint16_t version, unsigned max_content)
{
	if (max_content >= KTLS_MAX_PLAINTEXT)
		return 1;
	uint16_t v = 0;
	socklen_t len = sizeof(v);
	if (ops->getsockopt(fd, SOL_TLS, TLS_TX_MAX_PAYLOAD_LEN, &v, &len) !=
		    0 ||
	    len != sizeof(v))
		return -1;
	/* Some versions of the patch report TLS 1.3's limit with the
	 * content type byte counted in. */
	return v == max_content ||
	       (version == KTLS_TLS13 && v == max_content + 1);
}
