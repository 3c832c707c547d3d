#define _GNU_SOURCE
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static enum ktls_log_level g_level = KTLS_LOG_WARN;
static enum ktls_log_dest g_dest = KTLS_LOG_STDERR;
static int g_fd = 2;

static const char *const level_names[] = {
	[KTLS_LOG_OFF] = "off",     [KTLS_LOG_ERROR] = "error",
	[KTLS_LOG_WARN] = "warning", [KTLS_LOG_INFO] = "info",
	[KTLS_LOG_DEBUG] = "debug",
};

void ktls_log_setup(enum ktls_log_level level, enum ktls_log_dest dest,
		    const char *path)
{
	g_level = level;
	g_dest = dest;
	if (dest == KTLS_LOG_FILE) {
		/* O_APPEND keeps lines from concurrent processes whole;
		 * O_CLOEXEC keeps the fd out of programs we exec; O_NONBLOCK
		 * only for the open: a FIFO without a reader would otherwise
		 * hang the program in our constructor (it fails, ENXIO). */
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
					    O_NOCTTY | O_NONBLOCK, 0600);
		if (fd >= 0)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		if (fd < 0) {
			int e = errno;
			g_dest = KTLS_LOG_STDERR;
			ktls_warn("cannot open log file '%s': %s; logging to stderr",
				  path, strerror(e));
			return;
		}
		g_fd = fd;
	}
}

int ktls_log_enabled(enum ktls_log_level level)
{
	return level != KTLS_LOG_OFF && level <= g_level;
}

void ktls_log(enum ktls_log_level level, const char *fmt, ...)
{
	if (!ktls_log_enabled(level))
		return;
	int saved = errno; /* logging must never disturb the program's errno */
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (g_dest == KTLS_LOG_SYSLOG) {
		static const int prio[] = { LOG_ERR, LOG_ERR, LOG_WARNING,
					    LOG_INFO, LOG_DEBUG };
		syslog(LOG_DAEMON | prio[level], "ktls-shim: %s", msg);
	} else {
		/* One write() per line so lines from threads do not interleave. */
		char line[1200];
		int n = snprintf(line, sizeof(line), "ktls-shim[%d] %s: %s\n",
				 (int)getpid(), level_names[level], msg);
		if (n > (int)sizeof(line))
			n = sizeof(line);
		if (n > 0) {
			ssize_t w = write(g_fd, line, (size_t)n);
			(void)w;
		}
	}
	errno = saved;
}
