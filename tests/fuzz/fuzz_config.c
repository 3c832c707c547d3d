/*
 * libFuzzer target for the config parser (ktls-preload.conf) and the
 * KTLS_SHIM_* environment: shim/core/config.c and shim/core/match.c, the only code
 * that reads text a user controls before anything else runs.
 *
 * Input: the text of a config file; or, when it starts with "#!env\n", one
 * NAME=VALUE per line, handed to ktls_config_apply_env by a fake getenv
 * (a value stops at a NUL byte, as a real environment string does).
 *
 * Beyond "no crash, no ASan/UBSan report", every run checks what the shim's
 * users rely on: an error is one printable line, and a config that parsed
 * holds only values the rest of the shim can take.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cipher.h"
#include "core/config.h"
#include "core/match.h"

#define ENV_PREFIX "#!env\n"
#define MAX_ENV 16

static struct {
	char *name, *value;
} env[MAX_ENV];
static int n_env;

static char *fake_getenv(const char *name)
{
	/* The last definition wins, as in a real environ built by setenv. */
	for (int i = n_env - 1; i >= 0; i--)
		if (strcmp(env[i].name, name) == 0)
			return env[i].value;
	return NULL;
}

static void env_load(const char *text)
{
	n_env = 0;
	while (*text && n_env < MAX_ENV) {
		size_t n = strcspn(text, "\n");
		const char *eq = memchr(text, '=', n);
		if (eq) {
			env[n_env].name = strndup(text, (size_t)(eq - text));
			env[n_env].value = strndup(eq + 1, n - (size_t)(eq - text) - 1);
			if (!env[n_env].name || !env[n_env].value)
				abort();
			n_env++;
		}
		text += n + (text[n] == '\n');
	}
}

static void env_free(void)
{
	for (int i = 0; i < n_env; i++) {
		free(env[i].name);
		free(env[i].value);
	}
	n_env = 0;
}

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz_config: check failed: %s\n",    \
				#cond);                                       \
			abort();                                              \
		}                                                             \
	} while (0)

/* What a caller prints after "ktls-shim: ": one line, no terminal control
 * (a tab may come back from a value, where it separates list words). */
static void check_error(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);
	CHECK(n > 0 && n < errlen);
	for (size_t i = 0; i < n; i++)
		CHECK(((unsigned char)err[i] >= 0x20 &&
		       (unsigned char)err[i] < 0x7f) ||
		      err[i] == '\t');
}

static void check_patlist(const struct ktls_patlist *l)
{
	CHECK(l->n >= 0 && l->n <= KTLS_MAX_PATTERNS);
	for (int i = 0; i < l->n; i++) {
		size_t n = strnlen(l->pat[i], KTLS_MAX_PATTERN_LEN);
		CHECK(n > 0 && n < KTLS_MAX_PATTERN_LEN);
		CHECK(strcspn(l->pat[i], ", \t") == n);
	}
}

static void check_config(const struct ktls_config *c)
{
	CHECK(c->enabled == 0 || c->enabled == 1);
	CHECK((c->directions & ~(KTLS_DIR_TX | KTLS_DIR_RX)) == 0);
	CHECK((c->ciphers & ~KTLS_CIPHERS_ALL) == 0);
	CHECK((c->versions &
	       ~(KTLS_VERSION_BIT_TLS12 | KTLS_VERSION_BIT_TLS13)) == 0);
	CHECK(c->log_level >= KTLS_LOG_OFF && c->log_level <= KTLS_LOG_DEBUG);
	CHECK(c->log_dest >= KTLS_LOG_STDERR && c->log_dest <= KTLS_LOG_FILE);
	size_t lp = strnlen(c->log_path, sizeof(c->log_path));
	CHECK(lp < sizeof(c->log_path));
	if (c->log_dest == KTLS_LOG_FILE)
		CHECK(lp >= 1 && c->log_path[0] == '/');
	check_patlist(&c->allow);
	check_patlist(&c->deny);
}

/* Who we might be: a long path, so that globs have something to chew on. */
static const struct ktls_prog progs[] = {
	{ "nginx", "nginx", "/usr/sbin/nginx" },
	{ "python3.11", "python3", "/usr/bin/python3.11" },
	{ "tls_xfer", "tls_xfer",
	  "/work/main/build/tests/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/tls_xfer" },
	{ NULL, NULL, NULL }, /* /proc/self/exe unreadable */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err[KTLS_CONFIG_ERRLEN];
	struct ktls_config c;
	const size_t np = sizeof(progs) / sizeof(progs[0]);

	if (size >= strlen(ENV_PREFIX) &&
	    memcmp(data, ENV_PREFIX, strlen(ENV_PREFIX)) == 0) {
		char *text = strndup((const char *)data + strlen(ENV_PREFIX),
				     size - strlen(ENV_PREFIX));
		if (!text)
			abort();
		env_load(text);
		free(text);
		ktls_config_defaults(&c);
		memset(err, 0, sizeof(err));
		if (ktls_config_apply_env(&c, fake_getenv, err, sizeof(err)))
			check_error(err, sizeof(err));
		else
			check_config(&c);
		for (size_t i = 0; i < np; i++)
			(void)ktls_config_allows(&c, &progs[i]);
		env_free();
		return 0;
	}

	/* The parser takes a buffer and a length, not a string: no copy, so
	 * ASan sees any read past the end. Every program must get the same
	 * verdict: the config promises that a typo in any [program] section
	 * is reported by every program. */
	static char first_err[KTLS_CONFIG_ERRLEN];
	int first_rc = 0;
	for (size_t i = 0; i < np; i++) {
		ktls_config_defaults(&c);
		memset(err, 0, sizeof(err));
		int rc = ktls_config_parse(&c, "/etc/ktls-preload.conf",
					   (const char *)data, size,
					   i + 1 < np ? &progs[i] : NULL, err,
					   sizeof(err));
		CHECK(rc == 0 || rc == -1);
		if (rc)
			check_error(err, sizeof(err));
		else
			check_config(&c);
		if (i == 0) {
			first_rc = rc;
			memcpy(first_err, err, sizeof(err));
		} else {
			CHECK(rc == first_rc);
			CHECK(strcmp(err, first_err) == 0);
		}
		(void)ktls_config_allows(&c, &progs[i]);
	}
	return 0;
}
