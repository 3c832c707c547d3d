#define _GNU_SOURCE
/*
 * Unit tests of shim/tls/hello_ext.c: the peer's record_size_limit (RFC
 * 8449) read from the hello messages GnuTLS's handshake hook hands the
 * shim, bodies without the 4-byte header. Built by hand here, with the
 * fields every hello has before its extensions.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "tls/hello_ext.h"
#include "tls/record.h"

struct msg {
	uint8_t b[256];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t k)
{
	memcpy(m->b + m->n, p, k);
	m->n += k;
}

static void put16(struct msg *m, unsigned v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(m, x, 2);
}

/* The fields before the extensions: version, random, a 3-byte session
 * id, and for a ClientHello two suites and null compression. */
static void hello_head(struct msg *m, uint8_t type)
{
	static const uint8_t rnd[32], sid[4] = { 3, 1, 2, 3 };
	m->n = 0;
	put16(m, 0x0303);
	put(m, rnd, sizeof(rnd));
	put(m, sid, sizeof(sid));
	if (type == KTLS_HS_CLIENT_HELLO) {
		static const uint8_t cs[] = { 0, 4, 0x13, 0x01, 0xc0, 0x2b,
					      1, 0 };
		put(m, cs, sizeof(cs));
	} else {
		static const uint8_t cs[] = { 0x13, 0x01, 0 };
		put(m, cs, sizeof(cs));
	}
}

/* Extensions: supported_versions (dummy bytes), then record_size_limit
 * when rsl > 0, then a last empty one. */
static void exts(struct msg *m, long rsl, unsigned rsl_len)
{
	size_t at = m->n;
	put16(m, 0);
	put16(m, 43), put16(m, 3), put(m, "\x02\x03\x04", 3);
	if (rsl >= 0) {
		put16(m, KTLS_EXT_RECORD_SIZE_LIMIT), put16(m, rsl_len);
		if (rsl_len == 2)
			put16(m, (unsigned)rsl);
		else
			put(m, "\x01\x02\x03", rsl_len);
	}
	put16(m, 0xff01), put16(m, 0);
	size_t len = m->n - at - 2;
	m->b[at] = (uint8_t)(len >> 8), m->b[at + 1] = (uint8_t)len;
}

Test(hello_ext, client_hello_with_and_without_the_limit)
{
	struct msg m;
	hello_head(&m, KTLS_HS_CLIENT_HELLO);
	exts(&m, 512, 2);
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_CLIENT_HELLO, m.b,
						  m.n), 512);
	hello_head(&m, KTLS_HS_CLIENT_HELLO);
	exts(&m, -1, 0);
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_CLIENT_HELLO, m.b,
						  m.n), 0);
	/* An old hello without any extensions block. */
	hello_head(&m, KTLS_HS_CLIENT_HELLO);
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_CLIENT_HELLO, m.b,
						  m.n), 0);
}

Test(hello_ext, server_hello_and_encrypted_extensions)
{
	struct msg m;
	hello_head(&m, KTLS_HS_SERVER_HELLO);
	exts(&m, 16385, 2);
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_SERVER_HELLO, m.b,
						  m.n), 16385);
	m.n = 0;
	exts(&m, 1024, 2);
	cr_assert_eq(ktls_hello_record_size_limit(
			     KTLS_HS_ENCRYPTED_EXTENSIONS, m.b, m.n), 1024);
	/* Other messages carry no limit the record layer must keep. */
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_NEW_SESSION_TICKET,
						  m.b, m.n), 0);
}

Test(hello_ext, malformed)
{
	struct msg m;
	hello_head(&m, KTLS_HS_CLIENT_HELLO);
	exts(&m, 63, 2); /* below RFC 8449's minimum */
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_CLIENT_HELLO, m.b,
						  m.n), -1);
	hello_head(&m, KTLS_HS_CLIENT_HELLO);
	exts(&m, 0, 3); /* not one uint16 */
	cr_assert_eq(ktls_hello_record_size_limit(KTLS_HS_CLIENT_HELLO, m.b,
						  m.n), -1);
	hello_head(&m, KTLS_HS_CLIENT_HELLO);
	exts(&m, 512, 2);
	/* Cut anywhere: never read past the end, never a limit. */
	for (size_t cut = 1; cut < m.n; cut++) {
		int v = ktls_hello_record_size_limit(KTLS_HS_CLIENT_HELLO,
						     m.b, m.n - cut);
		cr_assert(v == -1 || v == 0, "cut %zu: %d", cut, v);
	}
	m.n = 0;
	exts(&m, 512, 2);
	m.b[1] += 1; /* the block's length says more than there is */
	cr_assert_eq(ktls_hello_record_size_limit(
			     KTLS_HS_ENCRYPTED_EXTENSIONS, m.b, m.n), -1);
}
