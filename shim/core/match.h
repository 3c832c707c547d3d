/* Program allowlists and denylists: shell globs on a program's name or path. */
#ifndef KTLS_SHIM_MATCH_H
#define KTLS_SHIM_MATCH_H

#define KTLS_MAX_PATTERNS 32
#define KTLS_MAX_PATTERN_LEN 256

struct ktls_patlist {
	int n;
	char pat[KTLS_MAX_PATTERNS][KTLS_MAX_PATTERN_LEN];
};

/*
 * Who we are. A pattern containing '/' is matched against path (the
 * resolved /proc/self/exe); any other against the executable's base name
 * and argv[0]'s base name, so "python3*" catches /usr/bin/python3.11 run
 * as "python3".
 */
struct ktls_prog {
	const char *exe_name;
	const char *argv0_name;
	const char *path;
};

int ktls_patlist_match(const struct ktls_patlist *l, const struct ktls_prog *p);

/* Splits a comma/space separated list into l; -1 with a message on error. */
int ktls_patlist_parse(struct ktls_patlist *l, const char *s, char *err,
		       unsigned long errlen);

/* Fills p from /proc/self/exe and program_invocation_name into buffers. */
void ktls_prog_self(struct ktls_prog *p, char *pathbuf, unsigned long pathlen);

#endif
