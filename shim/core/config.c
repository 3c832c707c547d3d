#define _GNU_SOURCE
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cipher.h"

void ktls_config_defaults(struct ktls_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = 1;
	c->directions = KTLS_DIR_TX | KTLS_DIR_RX;
	c->ciphers = KTLS_CIPHERS_ALL;
	c->versions = KTLS_VERSION_BIT_TLS12 | KTLS_VERSION_BIT_TLS13;
	c->log_level = KTLS_LOG_WARN;
	c->log_dest = KTLS_LOG_STDERR;
	c->key_update_bytes = KTLS_KEY_UPDATE_AUTO;
	c->custom_transports = 1;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* "[program GLOB]": does this section apply to us? -1 when malformed. */
static int section_applies(char *line, const struct ktls_prog *prog)
{
	/* The last ']': globs may hold bracket expressions ([0-9]). */
	char *end = strrchr(line, ']');
	if (!end || *trim(end + 1) != '\0')
		return -1;
	*end = '\0';
	char *body = trim(line + 1);
	if (strncmp(body, "program", 7) != 0 ||
	    (body[7] != ' ' && body[7] != '\t'))
		return -1;
	struct ktls_patlist l;
	char why[128];
	if (ktls_patlist_parse(&l, trim(body + 7), why, sizeof(why)) != 0 ||
	    l.n == 0)
		return -1;
	return prog && ktls_patlist_match(&l, prog);
}

int ktls_config_parse(struct ktls_config *c, const char *name,
		      const char *buf, size_t len, const struct ktls_prog *prog,
		      char *err, size_t errlen)
{
	char line[KTLS_CONFIG_MAX_LINE + 1];
	char why[KTLS_CONFIG_ERRLEN];
	int lineno = 0, in_section = 0, applies = 1;
	size_t pos = 0;

	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "%s: contains a NUL byte (not a text file)",
			 name);
		return -1;
	}
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		lineno++;
		if (n > KTLS_CONFIG_MAX_LINE) {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes",
				 name, lineno, KTLS_CONFIG_MAX_LINE);
			return -1;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;

		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		if (*s == '[') {
			int a = section_applies(s, prog);
			if (a < 0) {
				snprintf(err, errlen,
					 "%s:%d: bad section header (expected "
					 "[program GLOB...])",
					 name, lineno);
				return -1;
			}
			in_section = 1;
			applies = a;
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected key = value", name,
				 lineno);
			return -1;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		if (in_section && (strcmp(key, "allow") == 0 ||
				   strcmp(key, "deny") == 0 ||
				   strcmp(key, "log") == 0)) {
			snprintf(err, errlen,
				 "%s:%d: '%s' is only valid before the first "
				 "[program] section",
				 name, lineno, key);
			return -1;
		}
		/* Validate every line, even in sections that do not apply, so
		 * that a typo is reported by every program, not just one. */
		struct ktls_config scratch = *c;
		if (ktls_config_set(applies ? c : &scratch, key, val, why,
				    sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", name, lineno, why);
			return -1;
		}
	}
	return 0;
}

int ktls_config_load_file(struct ktls_config *c, const char *path,
			  int required, int privileged,
			  const struct ktls_prog *prog, char *err,
			  size_t errlen)
{
	/* Messages start with the path: a path longer than the message
	 * would leave no room to say what is wrong with it. */
	char shown[160];
	if (strlen(path) >= sizeof(shown))
		snprintf(shown, sizeof(shown), "%.60s...%s", path,
			 path + strlen(path) - 60);
	else
		snprintf(shown, sizeof(shown), "%s", path);

	/* O_NONBLOCK: a FIFO named as the config must not hang the program
	 * in our constructor; it is refused below as not a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && !required)
			return 0;
		snprintf(err, errlen, "%s: cannot open: %s", shown,
			 strerror(errno));
		return -1;
	}
	struct stat st;
	char *buf = NULL;
	int rc = -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", shown);
		goto cleanup;
	}
	if (st.st_size > KTLS_CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %d bytes", shown,
			 KTLS_CONFIG_MAX_BYTES);
		goto cleanup;
	}
	/* A root or setuid process must not take orders from a file that an
	 * unprivileged user could have written. */
	if (privileged && ((st.st_mode & (S_IWGRP | S_IWOTH)) ||
			   (st.st_uid != 0 && st.st_uid != geteuid()))) {
		snprintf(err, errlen,
			 "%s: writable by group/others or owned by another "
			 "user; refused for a privileged process",
			 shown);
		goto cleanup;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", shown);
		goto cleanup;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: read error: %s", shown,
				 strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	rc = ktls_config_parse(c, shown, buf, got, prog, err, errlen);
cleanup:
	free(buf);
	close(fd);
	return rc;
}

int ktls_config_apply_env(struct ktls_config *c,
			  char *(*getenv_fn)(const char *), char *err,
			  size_t errlen)
{
	static const struct { const char *env, *key; } map[] = {
		{ "KTLS_SHIM_ENABLE", "enabled" },
		{ "KTLS_SHIM_ALLOW", "allow" },
		{ "KTLS_SHIM_DENY", "deny" },
		{ "KTLS_SHIM_DIRECTIONS", "directions" },
		{ "KTLS_SHIM_CIPHERS", "ciphers" },
		{ "KTLS_SHIM_VERSIONS", "versions" },
		{ "KTLS_SHIM_LOG_LEVEL", "log_level" },
		{ "KTLS_SHIM_LOG", "log" },
		{ "KTLS_SHIM_ENGINE", "engine" },
		{ "KTLS_SHIM_TLS13_RX_WITHOUT_REKEY", "tls13_rx_without_rekey" },
		{ "KTLS_SHIM_KEY_UPDATE_BYTES", "key_update_bytes" },
		{ "KTLS_SHIM_EBPF_LOAD", "ebpf_load" },
		{ "KTLS_SHIM_TX_ZEROCOPY_RO", "tx_zerocopy_ro" },
		{ "KTLS_SHIM_CUSTOM_TRANSPORTS", "custom_transports" },
		{ "KTLS_SHIM_RECORD_PADDING", "record_padding" },
	};
	char why[KTLS_CONFIG_ERRLEN];
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v = getenv_fn(map[i].env);
		if (!v)
			continue;
		if (strlen(v) > KTLS_CONFIG_MAX_LINE) {
			snprintf(err, errlen, "%s: value longer than %d bytes",
				 map[i].env, KTLS_CONFIG_MAX_LINE);
			return -1;
		}
		if (ktls_config_set(c, map[i].key, v, why, sizeof(why)) != 0) {
			/* why starts with the key name: replace it by the
			 * variable's so the user knows what to fix. */
			const char *rest = why;
			size_t kl = strlen(map[i].key);
			if (strncmp(why, map[i].key, kl) == 0 && why[kl] == ':')
				rest = why + kl + 2;
			snprintf(err, errlen, "%s: %s", map[i].env, rest);
			return -1;
		}
	}
	return 0;
}

int ktls_config_allows(const struct ktls_config *c, const struct ktls_prog *p)
{
	if (!c->enabled)
		return 0;
	if (ktls_patlist_match(&c->deny, p))
		return 0;
	return c->allow.n == 0 || ktls_patlist_match(&c->allow, p);
}
