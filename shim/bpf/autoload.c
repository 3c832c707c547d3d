/*
 * See autoload.h. Costs one stat() per process when the pins exist; the
 * load itself (BTF parsing, the verifier) runs in the thread that moved the
 * first socket, once per boot of the host, not per process.
 */
#define _GNU_SOURCE
#include "bpf/autoload.h"

#include <dlfcn.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf/ktls_stats.h"
#include "bpf/loader.h"
#include "core/config.h"
#include "core/log.h"
#include "core/shim.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why_not[320];

static int has_cap(const struct __user_cap_data_struct *d, unsigned cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1u;
}

/* Tracing programs need CAP_BPF (with CAP_PERFMON) or CAP_SYS_ADMIN; root
 * has them unless a container dropped them, and then the load would fail. */
static int privileged(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return 0;
	return has_cap(d, CAP_SYS_ADMIN) || has_cap(d, CAP_BPF);
}

/* Our own directory: the .so is installed (and built) next to the shim. */
static void plugin_path(char *out, size_t len)
{
	Dl_info info;
	const char *slash;
	if (dladdr((void *)ktls_bpf_autoload, &info) && info.dli_fname &&
	    (slash = strrchr(info.dli_fname, '/')))
		snprintf(out, len, "%.*s/" KTLS_BPF_PLUGIN,
			 (int)(slash - info.dli_fname), info.dli_fname);
	else
		snprintf(out, len, KTLS_BPF_PLUGIN);
}

static void autoload(void)
{
	struct stat st;
	if (stat(KTLS_BPF_OWNERS_PIN, &st) == 0)
		return; /* loaded before us: nothing to do, nothing to say */
	if (ktls_cfg.ebpf_load != KTLS_EBPF_LOAD_AUTO) {
		snprintf(why_not, sizeof(why_not),
			 "not loading it here (ebpf_load = never)");
		return;
	}
	if (!privileged()) {
		snprintf(why_not, sizeof(why_not),
			 "not loading it here: not privileged (needs CAP_BPF "
			 "or CAP_SYS_ADMIN)");
		return;
	}
	char path[PATH_MAX];
	plugin_path(path, sizeof(path));
	/* Kept loaded: libbpf may hold static state, and unloading it
	 * would save a few pages once per process. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why_not, sizeof(why_not), "cannot load it here: %s",
			 dlerror());
		return;
	}
	int (*load)(char *, size_t) =
		(int (*)(char *, size_t))dlsym(h, KTLS_BPF_PLUGIN_LOAD);
	if (!load) {
		snprintf(why_not, sizeof(why_not),
			 "cannot load it here: %.200s has no "
			 KTLS_BPF_PLUGIN_LOAD, path);
		return;
	}
	char why[256];
	int rc = load(why, sizeof(why));
	if (rc == KTLS_BPF_LOAD_OK)
		ktls_dbg("ebpf stats loaded by this process (%s)",
			 KTLS_BPF_PIN_DIR);
	else if (rc != KTLS_BPF_LOAD_ALREADY)
		snprintf(why_not, sizeof(why_not), "loading it here failed: %s",
			 why);
}

const char *ktls_bpf_autoload(void)
{
	pthread_once(&once, autoload);
	return why_not[0] ? why_not : NULL;
}
