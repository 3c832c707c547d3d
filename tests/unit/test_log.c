#define _GNU_SOURCE
/*
 * Unit tests of shim/core/log.c. The logger's state is per process; Criterion
 * runs every test in a process of its own, so each starts from the
 * defaults (warn, stderr).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static char dir[] = "/tmp/ktls-unit-log-XXXXXX";
static char path[128];
static char text[8192];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir), "%s", strerror(errno));
	snprintf(path, sizeof(path), "%s/shim.log", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(log, .init = setup, .fini = teardown);

/* The file's bytes in text (NUL-terminated); returns the length. */
static size_t slurp(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, text + got, sizeof(text) - 1 - got);
		cr_assert_geq(r, 0);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	text[got] = '\0';
	return got;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(log, file_at_info_level)
{
	char want[128];
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_FILE, path);
	ktls_info("hello %d", 42);
	ktls_dbg("a debug line %s", "not-written");
	ktls_warn("careful");
	ktls_err("broken");
	size_t n = slurp(path);
	cr_assert_eq(memchr(text, '\0', n), NULL);
	cr_assert_not_null(strstr(text, "ktls-shim["), "%s", text);
	snprintf(want, sizeof(want), "ktls-shim[%d] info: hello 42\n",
		 (int)getpid());
	cr_assert(strncmp(text, want, strlen(want)) == 0, "%s", text);
	cr_assert_not_null(strstr(text, "] warning: careful\n"), "%s", text);
	cr_assert_not_null(strstr(text, "] error: broken\n"), "%s", text);
	cr_assert_null(strstr(text, "not-written"), "%s", text);
	cr_assert_eq(count_lines(text), 3, "%s", text);
}

Test(log, enabled_levels)
{
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_STDERR, NULL);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_ERROR), 1);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_WARN), 1);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_INFO), 1);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_DEBUG), 0);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_OFF), 0);
	ktls_log_setup(KTLS_LOG_DEBUG, KTLS_LOG_STDERR, NULL);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_DEBUG), 1);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_OFF), 0);
	ktls_log_setup(KTLS_LOG_OFF, KTLS_LOG_STDERR, NULL);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_ERROR), 0);
}

Test(log, default_level_is_warn)
{
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_WARN), 1);
	cr_assert_eq(ktls_log_enabled(KTLS_LOG_INFO), 0);
}

Test(log, off_writes_nothing)
{
	ktls_log_setup(KTLS_LOG_OFF, KTLS_LOG_FILE, path);
	ktls_err("should not appear");
	ktls_log(KTLS_LOG_OFF, "nor this");
	cr_assert_eq(slurp(path), 0, "%s", text);
}

Test(log, errno_preserved)
{
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_FILE, path);
	errno = EXDEV;
	ktls_info("a message that formats %s", strerror(ENOENT));
	cr_assert_eq(errno, EXDEV);
	errno = ERANGE;
	ktls_dbg("filtered out");
	cr_assert_eq(errno, ERANGE);
	cr_assert_not_null(strstr((slurp(path), text), "No such file"), "%s",
			   text);
}

Test(log, errno_preserved_when_write_fails)
{
	/* stderr closed: write() fails with EBADF inside ktls_log. */
	int saved = dup(2);
	cr_assert_geq(saved, 0);
	close(2);
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_STDERR, NULL);
	errno = ETIMEDOUT;
	ktls_warn("into the void");
	int after = errno;
	dup2(saved, 2);
	close(saved);
	cr_assert_eq(after, ETIMEDOUT);
}

Test(log, unopenable_path_falls_back_to_stderr)
{
	const char *bad = "/nonexistent-ktls-unit/dir/x.log";
	char errpath[160];
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(efd, 0);
	int saved = dup(2);
	cr_assert_geq(saved, 0);
	cr_assert_eq(dup2(efd, 2), 2);
	close(efd);

	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_FILE, bad);
	ktls_info("after the fallback");

	dup2(saved, 2);
	close(saved);
	slurp(errpath);
	unlink(errpath);

	cr_assert_not_null(strstr(text, "ktls-shim["), "%s", text);
	cr_assert_not_null(strstr(text, "cannot open log file"), "%s", text);
	cr_assert_not_null(strstr(text, bad), "%s", text);
	cr_assert_not_null(strstr(text, "] info: after the fallback\n"), "%s",
			   text);
	cr_assert_eq(access(bad, F_OK), -1);
}

Test(log, file_is_private_and_appended)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "old line\n", 9), 9);
	close(fd);
	ktls_log_setup(KTLS_LOG_WARN, KTLS_LOG_FILE, path);
	ktls_warn("new line");
	slurp(path);
	cr_assert(strncmp(text, "old line\nktls-shim[", 19) == 0, "%s", text);

	/* A log file the shim creates is readable by its owner only. */
	char fresh[160];
	struct stat st;
	snprintf(fresh, sizeof(fresh), "%s/fresh.log", dir);
	ktls_log_setup(KTLS_LOG_WARN, KTLS_LOG_FILE, fresh);
	int rc = stat(fresh, &st);
	unlink(fresh);
	cr_assert_eq(rc, 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
}

Test(log, long_message_is_one_whole_line)
{
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_FILE, path);
	ktls_info("%s", big);
	ktls_info("next");
	size_t n = slurp(path);
	cr_assert_eq(memchr(text, '\0', n), NULL, "NUL byte in the log");
	cr_assert_eq(count_lines(text), 2, "%s", text);
	char *nl = strchr(text, '\n');
	cr_assert_not_null(nl);
	cr_assert_leq((size_t)(nl - text), 1200);
	/* The message is cut, not the line's end. */
	cr_assert_eq(nl[-1], 'x');
	cr_assert(strncmp(nl + 1, "ktls-shim[", 10) == 0, "%s", nl + 1);
}

Test(log, fifo_without_reader_does_not_block, .timeout = 5)
{
	/* A log "file" that is a FIFO nobody reads: open(O_WRONLY) would
	 * block the program in the shim's constructor for ever. */
	cr_assert_eq(mkfifo(path, 0600), 0, "%s", strerror(errno));
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_FILE, path);
	ktls_info("still here");
}

Test(log, log_file_is_blocking_after_open)
{
	/* O_NONBLOCK is for the open only: a slow reader of a FIFO or a
	 * full pipe must not cost log lines (EAGAIN) afterwards. */
	ktls_log_setup(KTLS_LOG_INFO, KTLS_LOG_FILE, path);
	int flags = -1;
	for (int fd = 3; fd < 64; fd++) {
		char link[64], target[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0)
			flags = fcntl(fd, F_GETFL);
	}
	cr_assert_geq(flags, 0, "no fd open on %s", path);
	cr_assert_eq(flags & O_NONBLOCK, 0);
	cr_assert(flags & O_APPEND);
}
