/* Logging for the shim. Never pass key material to these functions. */
#ifndef KTLS_SHIM_LOG_H
#define KTLS_SHIM_LOG_H

#include <stdarg.h>

enum ktls_log_level {
	KTLS_LOG_OFF = 0,
	KTLS_LOG_ERROR,
	KTLS_LOG_WARN,
	KTLS_LOG_INFO,
	KTLS_LOG_DEBUG,
};

enum ktls_log_dest {
	KTLS_LOG_STDERR = 0,
	KTLS_LOG_SYSLOG,
	KTLS_LOG_FILE,
};

/* Opens the destination; on failure falls back to stderr and says so once. */
void ktls_log_setup(enum ktls_log_level level, enum ktls_log_dest dest,
		    const char *path);
int ktls_log_enabled(enum ktls_log_level level);
void ktls_log(enum ktls_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define ktls_err(...) ktls_log(KTLS_LOG_ERROR, __VA_ARGS__)
#define ktls_warn(...) ktls_log(KTLS_LOG_WARN, __VA_ARGS__)
#define ktls_info(...) ktls_log(KTLS_LOG_INFO, __VA_ARGS__)
#define ktls_dbg(...) ktls_log(KTLS_LOG_DEBUG, __VA_ARGS__)

#endif
