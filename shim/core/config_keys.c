/*
 * Every key of ktls-preload.conf (and KTLS_SHIM_* in the environment): one
 * table, its parser and its one-line error for a bad value. The table is
 * the list of keys (ktls_config_key_names), so the documentation can be
 * checked against it.
 */
#define _GNU_SOURCE
#include "core/config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/cipher.h"

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

/* "KEY: expected WHAT, got 'VALUE'": the one shape of a bad value. */
static int expected(const char *key, const char *what, const char *value,
		    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: expected %s, got '%.40s'", key, what,
		 value);
	return -1;
}

static int set_bool(int *out, const char *key, const char *v, char *err,
		    size_t errlen)
{
	return parse_bool(v, out) == 0 ? 0
				       : expected(key, "yes or no", v, err,
						  errlen);
}

static int set_enabled(struct ktls_config *c, const char *k, const char *v,
		       char *err, size_t errlen)
{
	return set_bool(&c->enabled, k, v, err, errlen);
}

static int set_directions(struct ktls_config *c, const char *k,
			  const char *v, char *err, size_t errlen)
{
	return parse_list(k, v, &c->directions, add_direction,
			  "tx, rx or none", err, errlen);
}

static int set_ciphers(struct ktls_config *c, const char *k, const char *v,
		       char *err, size_t errlen)
{
	return parse_list(k, v, &c->ciphers, add_cipher,
			  "aes-128-gcm, aes-256-gcm, chacha20-poly1305, "
			  "aes-128-ccm or all",
			  err, errlen);
}

static int set_versions(struct ktls_config *c, const char *k, const char *v,
			char *err, size_t errlen)
{
	return parse_list(k, v, &c->versions, add_version, "tls1.2, tls1.3",
			  err, errlen);
}

static int set_log_level(struct ktls_config *c, const char *k,
			 const char *v, char *err, size_t errlen)
{
	return parse_level(v, &c->log_level) == 0
		       ? 0
		       : expected(k, "off, error, warn, info or debug", v, err,
				  errlen);
}

static int set_log(struct ktls_config *c, const char *k, const char *v,
		   char *err, size_t errlen)
{
	if (strcmp(v, "stderr") == 0) {
		c->log_dest = KTLS_LOG_STDERR;
	} else if (strcmp(v, "syslog") == 0) {
		c->log_dest = KTLS_LOG_SYSLOG;
	} else if (strncmp(v, "file:/", 6) == 0 &&
		   strlen(v + 5) < sizeof(c->log_path)) {
		c->log_dest = KTLS_LOG_FILE;
		strcpy(c->log_path, v + 5);
	} else {
		return expected(k, "stderr, syslog or file:/absolute/path", v,
				err, errlen);
	}
	return 0;
}

/* A key whose value is one word of a few, each naming a number. */
struct word {
	const char *name;
	int value;
};

/* nocase: ebpf_load was always case-blind, engine and record_padding
 * never were; each keeps what it accepted. */
static int set_word(int *out, const struct word *w, size_t n, int nocase,
		    const char *k, const char *v, const char *what, char *err,
		    size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int differs = nocase ? strcasecmp(v, w[i].name)
				     : strcmp(v, w[i].name);
		if (!differs) {
			*out = w[i].value;
			return 0;
		}
	}
	return expected(k, what, v, err, errlen);
}

static int set_ebpf_load(struct ktls_config *c, const char *k,
			 const char *v, char *err, size_t errlen)
{
	static const struct word w[] = { { "auto", KTLS_EBPF_LOAD_AUTO },
					 { "never", KTLS_EBPF_LOAD_NEVER } };
	return set_word(&c->ebpf_load, w, 2, 1, k, v, "auto or never", err,
			errlen);
}

static int set_engine(struct ktls_config *c, const char *k, const char *v,
		      char *err, size_t errlen)
{
	static const struct word w[] = { { "auto", KTLS_ENGINE_AUTO },
					 { "openssl", KTLS_ENGINE_OPENSSL },
					 { "shim", KTLS_ENGINE_SHIM } };
	return set_word(&c->engine, w, 3, 0, k, v, "auto, openssl or shim",
			err, errlen);
}

static int set_key_update_bytes(struct ktls_config *c, const char *k,
				const char *v, char *err, size_t errlen)
{
	return parse_key_update_bytes(v, &c->key_update_bytes) == 0
		       ? 0
		       : expected(k,
				  "auto, never or a size such as 64G (at least "
				  "1M)",
				  v, err, errlen);
}

static int set_tls13_rx_without_rekey(struct ktls_config *c, const char *k,
				      const char *v, char *err, size_t errlen)
{
	return set_bool(&c->tls13_rx_without_rekey, k, v, err, errlen);
}

static int set_tx_zerocopy_ro(struct ktls_config *c, const char *k,
			      const char *v, char *err, size_t errlen)
{
	return set_bool(&c->tx_zerocopy_ro, k, v, err, errlen);
}

static int set_custom_transports(struct ktls_config *c, const char *k,
				 const char *v, char *err, size_t errlen)
{
	return set_bool(&c->custom_transports, k, v, err, errlen);
}

static int set_record_padding(struct ktls_config *c, const char *k,
			      const char *v, char *err, size_t errlen)
{
	static const struct word w[] = { { "keep", KTLS_PADDING_KEEP },
					 { "drop", KTLS_PADDING_DROP } };
	return set_word(&c->record_padding, w, 2, 0, k, v, "keep or drop", err,
			errlen);
}

static int set_patlist(struct ktls_config *c, const char *k, const char *v,
		       char *err, size_t errlen)
{
	char why[128];
	struct ktls_patlist *l = k[0] == 'a' ? &c->allow : &c->deny;
	if (ktls_patlist_parse(l, v, why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", k, why);
	return -1;
}

static const struct {
	const char *name;
	int (*set)(struct ktls_config *, const char *, const char *, char *,
		   size_t);
} keys[] = {
	{ "enabled", set_enabled },
	{ "directions", set_directions },
	{ "ciphers", set_ciphers },
	{ "versions", set_versions },
	{ "log_level", set_log_level },
	{ "log", set_log },
	{ "ebpf_load", set_ebpf_load },
	{ "engine", set_engine },
	{ "key_update_bytes", set_key_update_bytes },
	{ "tls13_rx_without_rekey", set_tls13_rx_without_rekey },
	{ "tx_zerocopy_ro", set_tx_zerocopy_ro },
	{ "custom_transports", set_custom_transports },
	{ "record_padding", set_record_padding },
	{ "allow", set_patlist },
	{ "deny", set_patlist },
};

const char *ktls_config_key_name(size_t i)
{
	return i < sizeof(keys) / sizeof(keys[0]) ? keys[i].name : NULL;
}

/* The key and value are echoed in error messages: a stray byte in either
 * must not put terminal control codes on the user's stderr. */
static int printable(const char *key, const char *value, char *err,
		     size_t errlen)
{
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
	return 0;
}

int ktls_config_set(struct ktls_config *c, const char *key, const char *value,
		    char *err, size_t errlen)
{
	if (printable(key, value, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i].name) == 0)
			return keys[i].set(c, key, value, err, errlen);
	snprintf(err, errlen, "unknown key '%.40s'", key);
	return -1;
}
