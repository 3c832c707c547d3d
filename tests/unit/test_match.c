#define _GNU_SOURCE
/* Unit tests of shim/core/match.c: pattern lists and who-we-are matching. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/match.h"

static struct ktls_patlist l;
static char err[256];

static int parse(const char *s)
{
	err[0] = '\0';
	return ktls_patlist_parse(&l, s, err, sizeof(err));
}

static int match1(const char *pattern, const char *exe, const char *argv0,
		  const char *path)
{
	const struct ktls_prog p = { exe, argv0, path };
	cr_assert_eq(parse(pattern), 0, "%s", err);
	return ktls_patlist_match(&l, &p);
}

Test(match, parse_splits_on_commas_spaces_tabs)
{
	cr_assert_eq(parse("a,b c\td,, \t e,"), 0, "%s", err);
	cr_assert_eq(l.n, 5);
	static const char *const want[] = { "a", "b", "c", "d", "e" };
	for (int i = 0; i < 5; i++)
		cr_assert_str_eq(l.pat[i], want[i]);
}

Test(match, parse_keeps_glob_characters)
{
	cr_assert_eq(parse("python3.[0-9]* /usr/*/bin/?x"), 0, "%s", err);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.pat[0], "python3.[0-9]*");
	cr_assert_str_eq(l.pat[1], "/usr/*/bin/?x");
}

Test(match, parse_empty)
{
	cr_assert_eq(parse(""), 0);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(parse(" ,\t, "), 0);
	cr_assert_eq(l.n, 0);
}

Test(match, parse_replaces_previous_list)
{
	cr_assert_eq(parse("a b c"), 0);
	cr_assert_eq(parse("z"), 0);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.pat[0], "z");
}

static void patterns(char *buf, size_t len, int n, const char *sep)
{
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%sp%d", i ? sep : "", i);
	}
}

Test(match, parse_pattern_count_limit)
{
	char s[1024];
	patterns(s, sizeof(s), KTLS_MAX_PATTERNS, ",");
	cr_assert_eq(parse(s), 0, "%s", err);
	cr_assert_eq(l.n, KTLS_MAX_PATTERNS);
	cr_assert_str_eq(l.pat[KTLS_MAX_PATTERNS - 1], "p31");
	/* Trailing separators after the 32nd pattern are not a 33rd. */
	strcat(s, " ,\t");
	cr_assert_eq(parse(s), 0, "%s", err);
	patterns(s, sizeof(s), KTLS_MAX_PATTERNS + 1, " ");
	cr_assert_eq(parse(s), -1);
	cr_assert_not_null(strstr(err, "more than 32"), "%s", err);
	cr_assert_leq(l.n, KTLS_MAX_PATTERNS);
}

Test(match, parse_pattern_length_limit)
{
	char s[KTLS_MAX_PATTERN_LEN + 8];
	memset(s, 'x', KTLS_MAX_PATTERN_LEN - 1);
	s[KTLS_MAX_PATTERN_LEN - 1] = '\0';
	cr_assert_eq(parse(s), 0, "%s", err);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(strlen(l.pat[0]), KTLS_MAX_PATTERN_LEN - 1);

	memset(s, 'x', KTLS_MAX_PATTERN_LEN);
	s[KTLS_MAX_PATTERN_LEN] = '\0';
	cr_assert_eq(parse(s), -1);
	cr_assert_not_null(strstr(err, "longer than 255"), "%s", err);
}

Test(match, parse_small_error_buffer)
{
	char s[400], small[8];
	memset(s, 'y', 300);
	s[300] = '\0';
	cr_assert_eq(ktls_patlist_parse(&l, s, small, sizeof(small)), -1);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
}

Test(match, python3_star)
{
	cr_assert_eq(match1("python3*", "python3.11", "python3",
			    "/usr/bin/python3.11"),
		     1);
	cr_assert_eq(match1("python3*", "python3.11", NULL, NULL), 1);
	cr_assert_eq(match1("python3*", NULL, "python3", NULL), 1);
	cr_assert_eq(match1("python3*", "python2.7", "python", NULL), 0);
	/* Not matched against the path (which does not start with python). */
	cr_assert_eq(match1("python3*", NULL, NULL, "python3"), 0);
}

Test(match, argv0_or_exe)
{
	/* A busybox-style link: exe is busybox, argv[0] says wget. */
	cr_assert_eq(match1("wget", "busybox", "wget", "/bin/busybox"), 1);
	cr_assert_eq(match1("busybox", "busybox", "wget", "/bin/busybox"), 1);
	cr_assert_eq(match1("curl", "busybox", "wget", "/bin/busybox"), 0);
}

Test(match, path_pattern_matches_path_only)
{
	cr_assert_eq(match1("/usr/bin/*", "curl", "curl", "/usr/bin/curl"), 1);
	cr_assert_eq(match1("/usr/bin/*", NULL, NULL, "/usr/bin/curl"), 1);
	cr_assert_eq(match1("/usr/bin/*", "curl", "curl", "/usr/sbin/curl"),
		     0);
	cr_assert_eq(match1("/usr/bin/*", "curl", "curl", NULL), 0);
	/* Names are never compared with a path pattern. */
	cr_assert_eq(match1("/usr/bin/*", "/usr/bin/curl", "/usr/bin/curl",
			    "/opt/curl"),
		     0);
	cr_assert_eq(match1("/usr/sbin/nginx", "x", "x", "/usr/sbin/nginx"),
		     1);
}

Test(match, name_pattern_is_not_a_path_pattern)
{
	cr_assert_eq(match1("nginx", NULL, NULL, "/usr/sbin/nginx"), 0);
	cr_assert_eq(match1("nginx", "nginx", NULL, "/usr/sbin/nginx"), 1);
	cr_assert_eq(match1("nginx", NULL, "nginx", NULL), 1);
	cr_assert_eq(match1("nginx", "nginx-debug", "nginx-debug", NULL), 0);
	cr_assert_eq(match1("nginx*", "nginx-debug", NULL, NULL), 1);
}

Test(match, any_pattern_of_list)
{
	cr_assert_eq(match1("curl, wget , nginx", "nginx", NULL, NULL), 1);
	cr_assert_eq(match1("curl wget\tnginx", "haproxy", "haproxy",
			    "/usr/sbin/haproxy"),
		     0);
	cr_assert_eq(match1("curl /usr/sbin/*", "haproxy", "haproxy",
			    "/usr/sbin/haproxy"),
		     1);
}

Test(match, empty_list_matches_nothing)
{
	const struct ktls_prog p = { "a", "a", "/a" };
	cr_assert_eq(parse(""), 0);
	cr_assert_eq(ktls_patlist_match(&l, &p), 0);
	cr_assert_eq(match1("*", NULL, NULL, NULL), 0);
	cr_assert_eq(match1("*", "", NULL, NULL), 1);
}

Test(match, prog_self)
{
	char buf[PATH_MAX], want[PATH_MAX];
	struct ktls_prog p;
	ssize_t n = readlink("/proc/self/exe", want, sizeof(want) - 1);
	cr_assert_gt(n, 0, "%s", strerror(errno));
	want[n] = '\0';
	ktls_prog_self(&p, buf, sizeof(buf));
	cr_assert_not_null(p.path);
	cr_assert_str_eq(p.path, want);
	cr_assert_str_eq(p.exe_name, strrchr(want, '/') + 1);
	cr_assert_str_eq(p.argv0_name, program_invocation_short_name);
	cr_assert_eq(strchr(p.exe_name, '/'), NULL);
}

Test(match, prog_self_short_buffer)
{
	/* A buffer too small for the path: truncated, still terminated. */
	char buf[4];
	struct ktls_prog p;
	ktls_prog_self(&p, buf, sizeof(buf));
	cr_assert_not_null(p.path);
	cr_assert_eq(strlen(p.path), sizeof(buf) - 1);
}
