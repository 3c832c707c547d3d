/*
 * Start-up: read the config once, decide whether this process is touched
 * at all (interpose/summary.c prints what it did at exit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fdtab.h"
#include "core/log.h"
#include "core/real.h"
#include "core/shim.h"
#include "core/stats.h"

struct ktls_config ktls_cfg;
static atomic_int g_active;
/* Copied at start: nginx and others rewrite argv (setproctitle), which
 * program_invocation_short_name points into. */
char ktls_prog_name[64] = "?";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int privileged(void)
{
	return geteuid() == 0 || getauxval(AT_SECURE) != 0;
}

static void child_after_fork(void)
{
	/* The parent reports what it did; the child reports only its own. */
	ktls_stats_reset();
}

static void init_once(void)
{
	char path[PATH_MAX], err[KTLS_CONFIG_ERRLEN];
	struct ktls_prog prog;

	ktls_real_bind();
	ktls_prog_self(&prog, path, sizeof(path));
	ktls_config_defaults(&ktls_cfg);

	/* secure_getenv: in a setuid/setgid program every KTLS_SHIM_*
	 * variable is ignored, as the loader ignores LD_* there. */
	const char *cfg_path = secure_getenv("KTLS_SHIM_CONFIG");
	int named = cfg_path && *cfg_path;
	if (ktls_config_load_file(&ktls_cfg, named ? cfg_path
						    : KTLS_CONFIG_DEFAULT_PATH,
				  named, privileged(), &prog, err,
				  sizeof(err)) != 0 ||
	    ktls_config_apply_env(&ktls_cfg, secure_getenv, err,
				  sizeof(err)) != 0) {
		/* Always to stderr: the log settings may be what is broken. */
		fprintf(stderr, "ktls-shim: %s; shim disabled for this process\n",
			err);
		return;
	}
	ktls_log_setup(ktls_cfg.log_level, ktls_cfg.log_dest,
		       ktls_cfg.log_path);
	snprintf(ktls_prog_name, sizeof(ktls_prog_name), "%s",
		 prog.exe_name ? prog.exe_name : program_invocation_short_name);
	if (!ktls_config_allows(&ktls_cfg, &prog)) {
		ktls_dbg("%s: not allowed by config; not touching this process",
			 prog.path ? prog.path : "?");
		return;
	}

	struct rlimit rl;
	size_t max = KTLS_MAX_TRACKED_FDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max < max)
		max = rl.rlim_max;
	if (ktls_fdtab_init(max) != 0) {
		ktls_warn("cannot map the fd table; shim disabled");
		return;
	}
	pthread_atfork(NULL, NULL, child_after_fork);
	atomic_store(&g_active, 1);
	ktls_dbg("active in %s (pid %d)", prog.path ? prog.path : "?",
		 (int)getpid());
}

int ktls_shim_active(void)
{
	pthread_once(&once, init_once);
	return atomic_load_explicit(&g_active, memory_order_relaxed);
}

__attribute__((constructor)) static void ktls_shim_ctor(void)
{
	ktls_shim_active();
}
