#define _GNU_SOURCE
/*
 * Unit tests of shim/bpf/ulp_diag.c: sock_diag replies built by hand the
 * way the kernel lays them out (tcp_diag_put_ulp + tls_get_info), for
 * software, NIC offload (HW, HW_RECORD), no ULP and broken input; and one
 * real query against this machine's kernel (a loopback TCP pair).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf/ktls_stats.h"
#include "bpf/ulp_diag.h"

#ifndef INET_DIAG_ULP_INFO
#define INET_DIAG_ULP_INFO 19
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define COOKIE 0x1122334455667788ull

/* ---- a tiny netlink writer ---------------------------------------------- */

struct buf {
	unsigned char b[1024];
	size_t n;
};

static size_t put(struct buf *w, const void *p, size_t len)
{
	size_t at = w->n;
	cr_assert_leq(w->n + len + 3, sizeof(w->b));
	memcpy(w->b + w->n, p, len);
	w->n += len;
	while (w->n % 4)
		w->b[w->n++] = 0;
	return at;
}

static size_t attr(struct buf *w, uint16_t type, const void *v, uint16_t len)
{
	uint16_t h[2] = { (uint16_t)(4 + len), type };
	size_t at = put(w, h, 4);
	if (len) {
		w->n = at + 4; /* no padding between header and value */
		put(w, v, len);
	}
	return at;
}

static void u16(struct buf *w, uint16_t type, uint16_t v)
{
	attr(w, type, &v, 2);
}

static size_t nest_start(struct buf *w, uint16_t type)
{
	return attr(w, type, NULL, 0);
}

static void nest_end(struct buf *w, size_t at)
{
	uint16_t len = (uint16_t)(w->n - at);
	memcpy(w->b + at, &len, 2);
}

struct tls_desc {
	const char *ulp; /* NULL: no INET_DIAG_ULP_INFO at all */
	uint16_t version, cipher, txconf, rxconf;
	int zc_ro_tx, rx_no_pad;
};

/* nlmsghdr + inet_diag_msg + (INET_DIAG_SHUTDOWN, as the kernel always
 * puts one first) + INET_DIAG_ULP_INFO { NAME, TLS { ... } }. */
static void reply(struct buf *w, const struct tls_desc *d)
{
	memset(w, 0, sizeof(*w));
	struct nlmsghdr h = { .nlmsg_type = SOCK_DIAG_BY_FAMILY };
	put(w, &h, sizeof(h));
	struct inet_diag_msg m;
	memset(&m, 0, sizeof(m));
	m.idiag_family = AF_INET;
	m.idiag_state = 1; /* TCP_ESTABLISHED */
	m.id.idiag_cookie[0] = (uint32_t)COOKIE;
	m.id.idiag_cookie[1] = (uint32_t)(COOKIE >> 32);
	put(w, &m, sizeof(m));
	uint8_t shut = 0;
	attr(w, INET_DIAG_SHUTDOWN, &shut, 1);
	if (d && d->ulp) {
		size_t ulp = nest_start(w, INET_DIAG_ULP_INFO);
		attr(w, INET_ULP_INFO_NAME, d->ulp, (uint16_t)(strlen(d->ulp) + 1));
		if (!strcmp(d->ulp, "tls")) {
			size_t t = nest_start(w, INET_ULP_INFO_TLS);
			if (d->version)
				u16(w, TLS_INFO_VERSION, d->version);
			if (d->cipher)
				u16(w, TLS_INFO_CIPHER, d->cipher);
			u16(w, TLS_INFO_TXCONF, d->txconf);
			u16(w, TLS_INFO_RXCONF, d->rxconf);
			if (d->zc_ro_tx)
				attr(w, TLS_INFO_ZC_RO_TX, NULL, 0);
			if (d->rx_no_pad)
				attr(w, TLS_INFO_RX_NO_PAD, NULL, 0);
			nest_end(w, t);
		}
		nest_end(w, ulp);
	}
	uint32_t len = (uint32_t)w->n;
	memcpy(w->b, &len, 4);
}

static struct ktls_ulp_info parse_ok(const struct buf *w)
{
	struct ktls_ulp_info i;
	cr_assert_eq(ktls_ulp_parse_reply(w->b, w->n, &i), 0);
	cr_assert_eq(i.cookie, COOKIE);
	return i;
}

static void modes(const struct ktls_ulp_info *i, int tx, int rx, int want_tx,
		  int want_rx)
{
	uint8_t t = 99, r = 99;
	ktls_ulp_modes(i, tx, rx, &t, &r);
	cr_assert_eq(t, want_tx, "tx mode %u, want %d", t, want_tx);
	cr_assert_eq(r, want_rx, "rx mode %u, want %d", r, want_rx);
}

/* ---- what the kernel sends ---------------------------------------------- */

Test(ulp_diag, software_tls12_both_directions)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128, TLS_CONF_SW,
				      TLS_CONF_SW, 0, 0 });
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.ulp, KTLS_ULP_TLS);
	cr_assert_eq(i.version, TLS_1_2_VERSION);
	cr_assert_eq(i.cipher, TLS_CIPHER_AES_GCM_128);
	cr_assert_eq(i.txconf, TLS_CONF_SW);
	cr_assert_eq(i.rxconf, TLS_CONF_SW);
	cr_assert_eq(i.zc_ro_tx + i.rx_no_pad, 0);
	modes(&i, 1, 1, KTLS_MODE_SW, KTLS_MODE_SW);
}

Test(ulp_diag, software_tls13_tx_only)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_3_VERSION,
				      TLS_CIPHER_CHACHA20_POLY1305,
				      TLS_CONF_SW, TLS_CONF_BASE, 0, 1 });
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.version, TLS_1_3_VERSION);
	cr_assert_eq(i.cipher, TLS_CIPHER_CHACHA20_POLY1305);
	cr_assert_eq(i.rx_no_pad, 1);
	modes(&i, 1, 0, KTLS_MODE_SW, KTLS_MODE_NONE);
}

Test(ulp_diag, device_offload_both_directions)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_256, TLS_CONF_HW,
				      TLS_CONF_HW, 1, 0 });
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.txconf, TLS_CONF_HW);
	cr_assert_eq(i.zc_ro_tx, 1);
	modes(&i, 1, 1, KTLS_MODE_DEVICE, KTLS_MODE_DEVICE);
}

Test(ulp_diag, device_tx_software_rx)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128, TLS_CONF_HW,
				      TLS_CONF_SW, 0, 0 });
	modes((struct ktls_ulp_info[]){ parse_ok(&w) }, 1, 1,
	      KTLS_MODE_DEVICE, KTLS_MODE_SW);
}

Test(ulp_diag, hw_record_is_device)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128,
				      TLS_CONF_HW_RECORD, TLS_CONF_BASE, 0,
				      0 });
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.txconf, TLS_CONF_HW_RECORD);
	modes(&i, 1, 0, KTLS_MODE_DEVICE, KTLS_MODE_NONE);
}

Test(ulp_diag, ulp_set_but_no_keys_yet)
{
	/* TCP_ULP "tls" before TLS_TX: no version/cipher, both BASE. */
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", 0, 0, TLS_CONF_BASE,
				      TLS_CONF_BASE, 0, 0 });
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.ulp, KTLS_ULP_TLS);
	cr_assert_eq(i.version + i.cipher, 0);
	modes(&i, 0, 0, KTLS_MODE_NONE, KTLS_MODE_NONE);
}

Test(ulp_diag, no_ulp_falls_back_to_the_shims_view)
{
	struct buf w;
	reply(&w, NULL);
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.ulp, KTLS_ULP_NONE);
	modes(&i, 1, 0, KTLS_MODE_KERNEL, KTLS_MODE_NONE);
	modes(NULL, 1, 1, KTLS_MODE_KERNEL, KTLS_MODE_KERNEL);
	modes(NULL, 0, 0, KTLS_MODE_NONE, KTLS_MODE_NONE);
}

Test(ulp_diag, another_ulp_is_not_tls)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "mptcp", 0, 0, 0, 0, 0, 0 });
	struct ktls_ulp_info i = parse_ok(&w);
	cr_assert_eq(i.ulp, KTLS_ULP_OTHER);
	modes(&i, 1, 1, KTLS_MODE_KERNEL, KTLS_MODE_KERNEL);
	/* "tlsx" and "tl" are not "tls". */
	reply(&w, &(struct tls_desc){ "tlsx", 0, 0, 0, 0, 0, 0 });
	cr_assert_eq(parse_ok(&w).ulp, KTLS_ULP_OTHER);
	reply(&w, &(struct tls_desc){ "tl", 0, 0, 0, 0, 0, 0 });
	cr_assert_eq(parse_ok(&w).ulp, KTLS_ULP_OTHER);
}

Test(ulp_diag, conf_values)
{
	cr_assert_eq(ktls_ulp_conf_mode(TLS_CONF_BASE), KTLS_MODE_NONE);
	cr_assert_eq(ktls_ulp_conf_mode(TLS_CONF_SW), KTLS_MODE_SW);
	cr_assert_eq(ktls_ulp_conf_mode(TLS_CONF_HW), KTLS_MODE_DEVICE);
	cr_assert_eq(ktls_ulp_conf_mode(TLS_CONF_HW_RECORD), KTLS_MODE_DEVICE);
	/* Absent, or a value from a newer kernel: in the kernel, somehow. */
	cr_assert_eq(ktls_ulp_conf_mode(0), KTLS_MODE_KERNEL);
	cr_assert_eq(ktls_ulp_conf_mode(5), KTLS_MODE_KERNEL);
	cr_assert_eq(ktls_ulp_conf_mode(0xffff), KTLS_MODE_KERNEL);
}

Test(ulp_diag, unknown_attributes_are_skipped)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128, TLS_CONF_SW,
				      TLS_CONF_HW, 0, 0 });
	/* A newer kernel's extra top-level attribute after everything. */
	uint32_t x = 7;
	attr(&w, 200, &x, 3);
	uint32_t len = (uint32_t)w.n;
	memcpy(w.b, &len, 4);
	modes((struct ktls_ulp_info[]){ parse_ok(&w) }, 1, 1, KTLS_MODE_SW,
	      KTLS_MODE_DEVICE);
}

Test(ulp_diag, unaligned_buffer)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128, TLS_CONF_HW,
				      TLS_CONF_SW, 0, 0 });
	unsigned char shifted[sizeof(w.b) + 1];
	memcpy(shifted + 1, w.b, w.n);
	struct ktls_ulp_info i;
	cr_assert_eq(ktls_ulp_parse_reply(shifted + 1, w.n, &i), 0);
	cr_assert_eq(i.txconf, TLS_CONF_HW);
}

/* ---- errors and hostile input ------------------------------------------- */

Test(ulp_diag, kernel_errors)
{
	struct {
		struct nlmsghdr h;
		int32_t error;
	} e = { { sizeof(e), NLMSG_ERROR, 0, 1, 0 }, -ESTALE };
	struct ktls_ulp_info i;
	cr_assert_eq(ktls_ulp_parse_reply(&e, sizeof(e), &i), ESTALE);
	e.error = -ENOENT;
	cr_assert_eq(ktls_ulp_parse_reply(&e, sizeof(e), &i), ENOENT);
	e.error = 0; /* an ACK carries no socket */
	cr_assert_eq(ktls_ulp_parse_reply(&e, sizeof(e), &i), ENOENT);
	struct nlmsghdr done = { sizeof(done), NLMSG_DONE, 0, 1, 0 };
	cr_assert_eq(ktls_ulp_parse_reply(&done, sizeof(done), &i), ENOENT);
	cr_assert_eq(ktls_ulp_parse_reply(NULL, 0, &i), EBADMSG);
	cr_assert_eq(ktls_ulp_parse_reply(&done, 0, &i), ENOENT);
	e.h.nlmsg_len = 17; /* too short for the error code */
	cr_assert_eq(ktls_ulp_parse_reply(&e, 17, &i), EBADMSG);
}

/* Every prefix of a real-looking reply: never a read past the end, never a
 * TLS answer from a cut-off message. */
Test(ulp_diag, truncated_anywhere)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128, TLS_CONF_HW,
				      TLS_CONF_HW, 1, 1 });
	const size_t hdr = sizeof(struct nlmsghdr);
	for (size_t n = 0; n < w.n; n++) {
		struct ktls_ulp_info i;
		unsigned char *cut = malloc(n ? n : 1); /* ASan sees overreads */
		memcpy(cut, w.b, n);
		int rc = ktls_ulp_parse_reply(cut, n, &i);
		cr_assert(rc == EBADMSG || rc == ENOENT, "len %zu: rc %d", n,
			  rc);
		/* The message body alone, cut short. */
		if (n >= hdr) {
			rc = ktls_ulp_parse_msg(cut + hdr, n - hdr, &i);
			cr_assert(rc == EBADMSG ||
					  (rc == 0 && i.ulp == KTLS_ULP_NONE),
				  "body len %zu: rc %d ulp %u", n - hdr, rc,
				  i.ulp);
		}
		free(cut);
	}
}

/* The byte offset of the first TLS_INFO_TXCONF attribute in w. */
static size_t find_txconf(const struct buf *w)
{
	for (size_t o = 0; o + 6 <= w->n; o += 4) {
		uint16_t l, t, v;
		memcpy(&l, w->b + o, 2);
		memcpy(&t, w->b + o + 2, 2);
		memcpy(&v, w->b + o + 4, 2);
		if (l == 6 && t == TLS_INFO_TXCONF && v == TLS_CONF_HW)
			return o;
	}
	cr_assert_fail("no TXCONF");
	return 0;
}

Test(ulp_diag, broken_attributes)
{
	struct buf w, bad;
	struct ktls_ulp_info i;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_2_VERSION,
				      TLS_CIPHER_AES_GCM_128, TLS_CONF_HW,
				      TLS_CONF_SW, 0, 0 });
	size_t tx = find_txconf(&w);
	uint16_t v;

	/* Attribute length below its own header. */
	bad = w;
	v = 2;
	memcpy(bad.b + tx, &v, 2);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);
	cr_assert_eq(i.ulp, 0, "a failed parse leaves nothing to trust");

	/* Length running past the enclosing nest. */
	bad = w;
	v = 200;
	memcpy(bad.b + tx, &v, 2);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);

	/* TXCONF of the wrong size (a u32 where a u16 belongs). */
	bad = w;
	v = 8;
	memcpy(bad.b + tx, &v, 2);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);

	/* nlmsg_len longer than what was received, and below its header. */
	bad = w;
	uint32_t l = (uint32_t)w.n + 4;
	memcpy(bad.b, &l, 4);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);
	l = 4;
	memcpy(bad.b, &l, 4);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);

	/* A ULP name without its NUL. */
	reply(&bad, NULL);
	size_t ulp = nest_start(&bad, INET_DIAG_ULP_INFO);
	attr(&bad, INET_ULP_INFO_NAME, "tls", 3);
	nest_end(&bad, ulp);
	l = (uint32_t)bad.n;
	memcpy(bad.b, &l, 4);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);

	/* TLS details under another ULP's name. */
	reply(&bad, NULL);
	ulp = nest_start(&bad, INET_DIAG_ULP_INFO);
	attr(&bad, INET_ULP_INFO_NAME, "mptcp", 6);
	size_t t = nest_start(&bad, INET_ULP_INFO_TLS);
	u16(&bad, TLS_INFO_TXCONF, TLS_CONF_HW);
	nest_end(&bad, t);
	nest_end(&bad, ulp);
	l = (uint32_t)bad.n;
	memcpy(bad.b, &l, 4);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);

	/* Stray bytes after the last attribute that cannot be one. */
	bad = w;
	bad.n += 2;
	l = (uint32_t)bad.n;
	memcpy(bad.b, &l, 4);
	cr_assert_eq(ktls_ulp_parse_reply(bad.b, bad.n, &i), EBADMSG);
}

/* Deterministic garbage over every byte of a good reply: each parse ends,
 * with a result or EBADMSG, and ASan (sanitizer builds) sees no overread. */
Test(ulp_diag, garbage_does_not_crash)
{
	struct buf w;
	reply(&w, &(struct tls_desc){ "tls", TLS_1_3_VERSION,
				      TLS_CIPHER_AES_GCM_256, TLS_CONF_SW,
				      TLS_CONF_SW, 1, 1 });
	uint32_t x = 12345;
	int ok = 0, bad = 0;
	for (int round = 0; round < 20000; round++) {
		unsigned char *g = malloc(w.n);
		memcpy(g, w.b, w.n);
		for (int k = 0; k < 1 + round % 4; k++) {
			x = x * 1103515245u + 12345u;
			g[(x >> 8) % w.n] = (unsigned char)(x >> 20);
		}
		struct ktls_ulp_info i;
		int rc = ktls_ulp_parse_reply(g, w.n, &i);
		cr_assert(rc == 0 || rc == EBADMSG || rc == ENOENT || rc > 0);
		if (rc == 0)
			ok++;
		else
			bad++;
		free(g);
	}
	cr_assert_gt(ok, 0);
	cr_assert_gt(bad, 0);
}

/* ---- the real kernel ---------------------------------------------------- */

static void tcp_pair(int *c, int *s, int *l)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	*l = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(*l, 0);
	cr_assert_eq(bind(*l, (void *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(*l, 1), 0);
	cr_assert_eq(getsockname(*l, (void *)&a, &al), 0);
	*c = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(*c, (void *)&a, sizeof(a)), 0);
	*s = accept(*l, NULL, NULL);
	cr_assert_geq(*s, 0);
}

/* A plain TCP socket: the kernel finds it by 4-tuple and cookie and reports
 * no ULP; with a wrong cookie it finds nothing. Needs only the inet_diag
 * and tcp_diag modules, which the kernels here have (modular or built in). */
Test(ulp_diag, real_socket_without_ulp)
{
	int c, s, l;
	tcp_pair(&c, &s, &l);
	uint64_t cookie = 0;
	socklen_t cl = sizeof(cookie);
	cr_assert_eq(getsockopt(c, SOL_SOCKET, SO_COOKIE, &cookie, &cl), 0);
	struct ktls_ulp_info i;
	int rc = ktls_ulp_query(c, cookie, &i);
	cr_assert_eq(rc, 0, "query: %s", strerror(rc));
	cr_assert_eq(i.cookie, cookie);
	cr_assert_eq(i.ulp, KTLS_ULP_NONE);
	/* 6.1 says ESTALE, 6.18 ENOENT: never a socket that is not ours. */
	rc = ktls_ulp_query(c, cookie ^ 1, &i);
	cr_assert(rc == ESTALE || rc == ENOENT, "wrong cookie: %s",
		  strerror(rc));
	cr_assert_eq(ktls_ulp_query(l, cookie, &i), ENOTCONN);
	close(c);
	close(s);
	close(l);
}
