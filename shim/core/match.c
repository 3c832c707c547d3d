#define _GNU_SOURCE
#include "core/match.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int match_one(const char *pat, const struct ktls_prog *p)
{
	if (strchr(pat, '/'))
		return p->path && fnmatch(pat, p->path, 0) == 0;
	return (p->exe_name && fnmatch(pat, p->exe_name, 0) == 0) ||
	       (p->argv0_name && fnmatch(pat, p->argv0_name, 0) == 0);
}

int ktls_patlist_match(const struct ktls_patlist *l, const struct ktls_prog *p)
{
	for (int i = 0; i < l->n; i++)
		if (match_one(l->pat[i], p))
			return 1;
	return 0;
}

int ktls_patlist_parse(struct ktls_patlist *l, const char *s, char *err,
		       unsigned long errlen)
{
	l->n = 0;
	while (*s) {
		size_t skip = strspn(s, ", \t");
		s += skip;
		if (!*s)
			break;
		size_t len = strcspn(s, ", \t");
		if (len >= KTLS_MAX_PATTERN_LEN) {
			snprintf(err, errlen, "pattern longer than %d characters",
				 KTLS_MAX_PATTERN_LEN - 1);
			return -1;
		}
		if (l->n == KTLS_MAX_PATTERNS) {
			snprintf(err, errlen, "more than %d patterns",
				 KTLS_MAX_PATTERNS);
			return -1;
		}
		memcpy(l->pat[l->n], s, len);
		l->pat[l->n][len] = '\0';
		l->n++;
		s += len;
	}
	return 0;
}

void ktls_prog_self(struct ktls_prog *p, char *pathbuf, unsigned long pathlen)
{
	ssize_t n = readlink("/proc/self/exe", pathbuf, pathlen - 1);
	if (n < 0)
		n = 0;
	pathbuf[n] = '\0';
	p->path = n > 0 ? pathbuf : NULL;
	const char *slash = p->path ? strrchr(p->path, '/') : NULL;
	p->exe_name = slash ? slash + 1 : p->path;
	p->argv0_name = program_invocation_short_name;
}
