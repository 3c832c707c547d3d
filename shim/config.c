#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cipher.h"

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
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

/* Calls fn on each comma/space separated word of v; stops on error. */
static int for_each_word(const char *v, int (*fn)(const char *w, void *arg),
			 void *arg, char *bad, size_t badlen)
{
	char w[64];
	while (*v) {
		v += strspn(v, ", \t");
		if (!*v)
			break;
		size_t n = strcspn(v, ", \t");
		snprintf(w, sizeof(w), "%.*s", (int)n, v);
		if (n >= sizeof(w) || fn(w, arg) != 0) {
			snprintf(bad, badlen, "%.*s", (int)(n > 40 ? 40 : n), v);
			return -1;
		}
		v += n;
	}
	return 0;
}

static int add_direction(const char *w, void *arg)
{
	unsigned *m = arg;
	if (strcasecmp(w, "tx") == 0)
		*m |= KTLS_DIR_TX;
	else if (strcasecmp(w, "rx") == 0)
		*m |= KTLS_DIR_RX;
	else if (strcasecmp(w, "none") != 0)
		return -1;
	return 0;
}

static int add_cipher(const char *w, void *arg)
{
	unsigned *m = arg;
	if (strcasecmp(w, "all") == 0) {
		*m |= KTLS_CIPHERS_ALL;
		return 0;
	}
	enum ktls_cipher c = ktls_cipher_by_name(w);
	if (c == KTLS_CIPHER_NONE)
		return -1;
	*m |= KTLS_CIPHER_BIT(c);
	return 0;
}

static int add_version(const char *w, void *arg)
{
	unsigned *m = arg;
	if (strcasecmp(w, "tls1.2") == 0 || strcasecmp(w, "tlsv1.2") == 0)
		*m |= KTLS_VERSION_BIT_TLS12;
	else if (strcasecmp(w, "tls1.3") == 0 || strcasecmp(w, "tlsv1.3") == 0)
		*m |= KTLS_VERSION_BIT_TLS13;
	else
		return -1;
	return 0;
}

static int parse_level(const char *v, enum ktls_log_level *out)
{
	static const struct { const char *n; enum ktls_log_level l; } t[] = {
		{ "off", KTLS_LOG_OFF },	 { "error", KTLS_LOG_ERROR },
		{ "warn", KTLS_LOG_WARN },	 { "warning", KTLS_LOG_WARN },
		{ "info", KTLS_LOG_INFO },	 { "debug", KTLS_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(v, t[i].n) == 0)
			return *out = t[i].l, 0;
	return -1;
}

static int parse_list(const char *key, const char *v, unsigned *out,
		      int (*fn)(const char *, void *), const char *expected,
		      char *err, size_t errlen)
{
	char bad[48];
	unsigned m = 0;
	if (for_each_word(v, fn, &m, bad, sizeof(bad)) != 0) {
		snprintf(err, errlen, "%s: unknown value '%s' (expected %s)", key,
			 bad, expected);
		return -1;
	}
	*out = m;
	return 0;
}

/* auto | never | N[K|M|G|T], binary units, at least 1 MiB: a KeyUpdate
 * every few records would be a denial of service on ourselves. */
static int parse_key_update_bytes(const char *v, unsigned long long *out)
{
	if (strcmp(v, "auto") == 0) {
		*out = KTLS_KEY_UPDATE_AUTO;
		return 0;
	}
	if (strcmp(v, "never") == 0) {
		*out = 0;
		return 0;
	}
	unsigned long long n = 0;
	const char *p = v;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (1ull << 50))
			return -1;
		n = n * 10 + (unsigned)(*p - '0');
	}
	static const char units[] = "KMGT";
	const char *u = *p ? strchr(units, *p) : NULL;
	if (*p && (!u || p[1]))
		return -1;
	for (int i = u ? (int)(u - units) + 1 : 0; i > 0; i--) {
		if (n > (1ull << 53))
			return -1;
		n <<= 10;
	}
	if (n < (1ull << 20) || n == KTLS_KEY_UPDATE_AUTO)
		return -1;
	*out = n;
	return 0;
}

int ktls_config_set(struct ktls_config *c, const char *key, const char *value,
		    char *err, size_t errlen)
{
	/* The key is echoed in every message below: a stray byte in it
	 * must not put terminal control codes on the user's stderr. */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			snprintf(err, errlen, "invalid character 0x%02x in key",
				 *p);
			return -1;
		}
	}
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
			snprintf(err, errlen,
				 "%s: invalid character 0x%02x in value", key,
				 *p);
			return -1;
		}
	}
	if (strcmp(key, "enabled") == 0) {
		if (parse_bool(value, &c->enabled) == 0)
			return 0;
		snprintf(err, errlen, "enabled: expected yes or no, got '%.40s'",
			 value);
		return -1;
	}
	if (strcmp(key, "directions") == 0)
		return parse_list(key, value, &c->directions, add_direction,
				  "tx, rx or none", err, errlen);
	if (strcmp(key, "ciphers") == 0)
		return parse_list(key, value, &c->ciphers, add_cipher,
				  "aes-128-gcm, aes-256-gcm, chacha20-poly1305, "
				  "aes-128-ccm or all",
				  err, errlen);
	if (strcmp(key, "versions") == 0)
		return parse_list(key, value, &c->versions, add_version,
				  "tls1.2, tls1.3", err, errlen);
	if (strcmp(key, "log_level") == 0) {
		if (parse_level(value, &c->log_level) == 0)
			return 0;
		snprintf(err, errlen,
			 "log_level: expected off, error, warn, info or debug, "
			 "got '%.40s'",
			 value);
		return -1;
	}
	if (strcmp(key, "log") == 0) {
		if (strcmp(value, "stderr") == 0) {
			c->log_dest = KTLS_LOG_STDERR;
		} else if (strcmp(value, "syslog") == 0) {
			c->log_dest = KTLS_LOG_SYSLOG;
		} else if (strncmp(value, "file:/", 6) == 0 &&
			   strlen(value + 5) < sizeof(c->log_path)) {
			c->log_dest = KTLS_LOG_FILE;
			strcpy(c->log_path, value + 5);
		} else {
			snprintf(err, errlen,
				 "log: expected stderr, syslog or "
				 "file:/absolute/path, got '%.40s'",
				 value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "ebpf_load") == 0) {
		if (strcasecmp(value, "auto") == 0)
			c->ebpf_load = KTLS_EBPF_LOAD_AUTO;
		else if (strcasecmp(value, "never") == 0)
			c->ebpf_load = KTLS_EBPF_LOAD_NEVER;
		else {
			snprintf(err, errlen,
				 "ebpf_load: expected auto or never, got "
				 "'%.40s'",
				 value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "engine") == 0) {
		if (strcmp(value, "auto") == 0)
			c->engine = KTLS_ENGINE_AUTO;
		else if (strcmp(value, "openssl") == 0)
			c->engine = KTLS_ENGINE_OPENSSL;
		else if (strcmp(value, "shim") == 0)
			c->engine = KTLS_ENGINE_SHIM;
		else {
			snprintf(err, errlen,
				 "engine: expected auto, openssl or shim, got "
				 "'%.40s'",
				 value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "key_update_bytes") == 0) {
		if (parse_key_update_bytes(value, &c->key_update_bytes) == 0)
			return 0;
		snprintf(err, errlen,
			 "key_update_bytes: expected auto, never or a size "
			 "such as 64G (at least 1M), got '%.40s'",
			 value);
		return -1;
	}
	if (strcmp(key, "tls13_rx_without_rekey") == 0) {
		if (parse_bool(value, &c->tls13_rx_without_rekey) == 0)
			return 0;
		snprintf(err, errlen,
			 "tls13_rx_without_rekey: expected yes or no, got "
			 "'%.40s'",
			 value);
		return -1;
	}
	if (strcmp(key, "tx_zerocopy_ro") == 0) {
		if (parse_bool(value, &c->tx_zerocopy_ro) == 0)
			return 0;
		snprintf(err, errlen,
			 "tx_zerocopy_ro: expected yes or no, got '%.40s'",
			 value);
		return -1;
	}
	if (strcmp(key, "allow") == 0 || strcmp(key, "deny") == 0) {
		char why[128];
		struct ktls_patlist *l = key[0] == 'a' ? &c->allow : &c->deny;
		if (ktls_patlist_parse(l, value, why, sizeof(why)) == 0)
			return 0;
		snprintf(err, errlen, "%s: %s", key, why);
		return -1;
	}
	snprintf(err, errlen, "unknown key '%.40s'", key);
	return -1;
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
