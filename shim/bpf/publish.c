/* A moved socket's row in the eBPF owners map, with the plugin loaded on
 * first use where config and privilege allow (autoload.c). */
#define _GNU_SOURCE
#include "bpf/publish.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "bpf/autoload.h"
#include "bpf/register.h"
#include "core/log.h"

void ktls_bpf_publish(int fd, unsigned version, unsigned cipher_type,
			      int tx, int rx)
{
	static _Atomic int said;
	const char *not_here = ktls_bpf_autoload();
	int err = ktls_bpf_register(fd, version, cipher_type, tx, rx);
	if (err && err != EAGAIN && !atomic_exchange(&said, 1))
		ktls_dbg("ebpf stats off: %s%s%s",
			 err == ENOENT ? "not loaded (ktls-shim-stats load)"
				       : strerror(err),
			 not_here ? "; " : "", not_here ? not_here : "");
}
