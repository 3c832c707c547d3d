/* The one line a process that used TLS prints at exit (log level info). */
#define _GNU_SOURCE
#include "core/log.h"
#include "core/shim.h"
#include "core/stats.h"
#include "gnutls/session.h"
#include "openssl/bind.h"

__attribute__((destructor)) static void ktls_shim_dtor(void)
{
	/* Programs that never called into libssl or GnuTLS have nothing to
	 * report: with /etc/ld.so.preload, that is nearly every process. */
	if (!ktls_shim_active() || (!ktls_ossl.ok && !ktls_gts_used()) ||
	    !ktls_log_enabled(KTLS_LOG_INFO))
		return;
	char line[900];
	ktls_stats_format(line, sizeof(line));
	ktls_info("summary %s %s", ktls_prog_name, line);
}
