#include "tls/hello_ext.h"

#include "tls/record.h"

struct cur {
	const uint8_t *p;
	size_t n;
};

static int skip(struct cur *c, size_t k)
{
	if (c->n < k)
		return -1;
	c->p += k, c->n -= k;
	return 0;
}

static long u8(struct cur *c)
{
	if (c->n < 1)
		return -1;
	long v = c->p[0];
	skip(c, 1);
	return v;
}

static long u16(struct cur *c)
{
	if (c->n < 2)
		return -1;
	long v = (long)c->p[0] << 8 | c->p[1];
	skip(c, 2);
	return v;
}

/* Skips a vector with a 1- or 2-byte length prefix. */
static int skip_vec(struct cur *c, int prefix)
{
	long len = prefix == 1 ? u8(c) : u16(c);
	return len < 0 ? -1 : skip(c, (size_t)len);
}

/* Moves c to the extensions block's contents; 1 when there is none (a
 * hello may end before it), -1 when malformed. */
static int to_extensions(uint8_t type, struct cur *c)
{
	if (type == KTLS_HS_CLIENT_HELLO || type == KTLS_HS_SERVER_HELLO) {
		/* legacy_version, random, legacy_session_id */
		if (skip(c, 2 + 32) || skip_vec(c, 1))
			return -1;
		if (type == KTLS_HS_CLIENT_HELLO) {
			if (skip_vec(c, 2) || skip_vec(c, 1))
				return -1; /* cipher_suites, compression */
		} else if (skip(c, 2 + 1)) {
			return -1; /* cipher_suite, compression_method */
		}
		if (c->n == 0)
			return 1;
	}
	long len = u16(c);
	if (len < 0 || (size_t)len != c->n)
		return -1;
	return 0;
}

int ktls_hello_record_size_limit(uint8_t type, const uint8_t *body,
				 size_t len)
{
	if (type != KTLS_HS_CLIENT_HELLO && type != KTLS_HS_SERVER_HELLO &&
	    type != KTLS_HS_ENCRYPTED_EXTENSIONS)
		return 0;
	struct cur c = { body, len };
	int r = to_extensions(type, &c);
	if (r)
		return r > 0 ? 0 : -1;
	int found = 0;
	while (c.n) {
		long ext = u16(&c), elen = u16(&c);
		if (ext < 0 || elen < 0 || (size_t)elen > c.n)
			return -1;
		if (ext == KTLS_EXT_RECORD_SIZE_LIMIT) {
			/* A single uint16; at least 64 (RFC 8449 4). */
			if (elen != 2 || found)
				return -1;
			found = c.p[0] << 8 | c.p[1];
			if (found < 64)
				return -1;
		}
		skip(&c, (size_t)elen);
	}
	return found;
}
