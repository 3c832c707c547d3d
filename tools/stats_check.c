/*
 * ktls-shim-stats check: can kTLS work here, and if not, why. One line per
 * thing ("ok", "warn", "FAIL" or "info", a name, what was found); exit 1
 * where a FAIL line says the shim could move nothing. Every answer comes
 * from asking the thing itself (the kernel, the libraries, the parser
 * the shim uses), never from version numbers alone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "stats.h"

void check_line(enum check_status st, const char *name, const char *fmt, ...)
{
	static const char *const word[] = { "ok", "warn", "FAIL", "info" };
	va_list ap;
	va_start(ap, fmt);
	printf("%-5s %-13s ", word[st], name);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

/* What moves with this libssl (README's support table). */
static void check_libssl(void)
{
	void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		check_line(CHECK_INFO, "libssl", "not installed (libssl.so.3)");
		return;
	}
	const char *(*text)(int) = (const char *(*)(int))dlsym(h,
		"OpenSSL_version");
	unsigned long (*num)(void) = (unsigned long (*)(void))dlsym(h,
		"OpenSSL_version_num");
	if (!text || !num) {
		check_line(CHECK_WARN, "libssl", "libssl.so.3 without "
			   "OpenSSL_version: not OpenSSL's?");
		dlclose(h);
		return;
	}
	unsigned long v = num();
	unsigned major = (unsigned)(v >> 28), minor = (unsigned)(v >> 20) & 0xff;
	check_line(CHECK_OK, "libssl", "%s: %s", text(0),
		   major == 3 && minor < 2
			   ? "TLS 1.2 TX+RX and TLS 1.3 TX by OpenSSL, TLS 1.3 "
			     "RX by the shim's engine (kernels that rekey, or "
			     "tls13_rx_without_rekey)"
			   : "TLS 1.2 and 1.3 TX+RX by OpenSSL itself, TLS 1.3 "
			     "RX where the kernel rekeys (or "
			     "tls13_rx_without_rekey)");
	dlclose(h);
}

static void check_gnutls(void)
{
	void *h = dlopen("libgnutls.so.30", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		check_line(CHECK_INFO, "gnutls", "not installed "
			   "(libgnutls.so.30)");
		return;
	}
	const char *(*ver)(const char *) = (const char *(*)(const char *))
		dlsym(h, "gnutls_check_version");
	check_line(CHECK_OK, "gnutls", "GnuTLS %s: TLS 1.2 and 1.3 moved by "
		   "the shim's own installer", ver ? ver(NULL) : "?");
	dlclose(h);
}

/* The file and KTLS_SHIM_* variables, through the shim's own parser. */
static int check_config(void)
{
	const char *env = getenv("KTLS_SHIM_CONFIG");
	int named = env && *env;
	const char *path = named ? env : KTLS_CONFIG_DEFAULT_PATH;
	struct ktls_config c;
	struct ktls_prog prog = { ME, ME, NULL };
	char err[KTLS_CONFIG_ERRLEN];
	ktls_config_defaults(&c);
	int absent = !named && access(path, F_OK) != 0;
	if (ktls_config_load_file(&c, path, named, geteuid() == 0, &prog, err,
				  sizeof(err)) ||
	    ktls_config_apply_env(&c, getenv, err, sizeof(err))) {
		check_line(CHECK_FAIL, "config", "%s: the shim disables itself",
			   err);
		return 1;
	}
	if (!c.enabled) {
		check_line(CHECK_FAIL, "config", "%s%s: enabled = no: the shim "
			   "moves nothing", path,
			   getenv("KTLS_SHIM_ENABLE") ? " (KTLS_SHIM_ENABLE)" : "");
		return 1;
	}
	check_line(CHECK_OK, "config", "%s: %s%s", path,
		   absent ? "absent, defaults apply" : "valid",
		   named ? " (KTLS_SHIM_CONFIG)" : "");
	return 0;
}

int stats_check(void)
{
	/* The probe decides, not the module's files: a kernel may have tls
	 * built in without saying so in modules.builtin. */
	check_tls_module();
	int bad = check_ulp_and_aeads();
	check_ebpf();
	check_libssl();
	check_gnutls();
	bad |= check_config();
	if (bad)
		check_line(CHECK_FAIL, "verdict", "kTLS cannot work here "
			   "(the FAIL lines above say why)");
	else
		check_line(CHECK_OK, "verdict", "kTLS can work here");
	fflush(stdout);
	return bad;
}
