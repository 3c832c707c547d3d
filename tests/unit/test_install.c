#define _GNU_SOURCE
/*
 * Unit tests of shim/kernel/install.c and record_limit.c through the struct ktls_sockops seam: a
 * fake kernel records every call and answers as programmed. One test uses
 * the real kernel on a loopback TCP connection.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/crypto_info.h"
#include "kernel/install.h"
#include "kernel/record_limit.h"
#include "core/reason.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* ---- the fake kernel ----------------------------------------------------- */

struct call {
	int set; /* 1 setsockopt, 0 getsockopt */
	int fd, level, name;
	socklen_t len; /* setsockopt: optlen; getsockopt: *optlen on entry */
	uint8_t val[128];
};

/* How the fake answers a (level, name). */
struct answer {
	int set; /* answers setsockopt (1) or getsockopt (0) */
	int level, name;
	int rc, err;
	uint8_t out[64]; /* getsockopt: what the "kernel" would copy out */
	socklen_t outlen;
};

static struct call calls[16];
static int ncalls;
static struct answer answers[8];
static int nanswers;

static void reset_fake(void)
{
	memset(calls, 0, sizeof(calls));
	ncalls = 0;
	memset(answers, 0, sizeof(answers));
	nanswers = 0;
}

TestSuite(install, .init = reset_fake);

static struct answer *program_call(int set, int level, int name, int rc,
				   int err)
{
	cr_assert_lt(nanswers, 8);
	struct answer *a = &answers[nanswers++];
	a->set = set;
	a->level = level;
	a->name = name;
	a->rc = rc;
	a->err = err;
	return a;
}

/* setsockopt(level, name) fails with err. */
static void program_set_err(int level, int name, int err)
{
	program_call(1, level, name, -1, err);
}

/* getsockopt(level, name) fails with err. */
static void program_get_err(int level, int name, int err)
{
	program_call(0, level, name, -1, err);
}

/* getsockopt(level, name) returns these bytes. */
static void program_out(int level, int name, const void *out, socklen_t n)
{
	struct answer *a = program_call(0, level, name, 0, 0);
	cr_assert_leq(n, sizeof(a->out));
	memcpy(a->out, out, n);
	a->outlen = n;
}

static const struct answer *find(int set, int level, int name)
{
	/* The latest programmed answer wins. */
	for (int i = nanswers - 1; i >= 0; i--)
		if (answers[i].set == set && answers[i].level == level &&
		    answers[i].name == name)
			return &answers[i];
	return NULL;
}

static struct call *record(int set, int fd, int level, int name, socklen_t len)
{
	cr_assert_lt(ncalls, 16, "too many socket calls");
	struct call *c = &calls[ncalls++];
	c->set = set;
	c->fd = fd;
	c->level = level;
	c->name = name;
	c->len = len;
	return c;
}

static int fake_setsockopt(int fd, int level, int name, const void *val,
			   socklen_t len)
{
	struct call *c = record(1, fd, level, name, len);
	memcpy(c->val, val, len < sizeof(c->val) ? len : sizeof(c->val));
	const struct answer *a = find(1, level, name);
	if (!a)
		return 0; /* unprogrammed set: success */
	if (a->rc != 0)
		errno = a->err;
	return a->rc;
}

static int fake_getsockopt(int fd, int level, int name, void *val,
			   socklen_t *len)
{
	record(0, fd, level, name, *len);
	const struct answer *a = find(0, level, name);
	if (!a) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (a->rc != 0) {
		errno = a->err;
		return a->rc;
	}
	/* Like the kernel: copy at most what was asked for. */
	socklen_t n = a->outlen < *len ? a->outlen : *len;
	memcpy(val, a->out, n);
	*len = n;
	return 0;
}

static const struct ktls_sockops fake = { fake_setsockopt, fake_getsockopt };

/* ---- ktls_attach_ulp ----------------------------------------------------- */

Test(install, attach_ulp_success)
{
	int err = -1;
	cr_assert_eq(ktls_attach_ulp(&fake, 7, &err), KTLS_R_MOVED);
	cr_assert_eq(err, 0);
	cr_assert_eq(ncalls, 1);
	cr_assert_eq(calls[0].set, 1);
	cr_assert_eq(calls[0].fd, 7);
	cr_assert_eq(calls[0].level, IPPROTO_TCP);
	cr_assert_eq(calls[0].name, TCP_ULP);
	cr_assert_eq(calls[0].len, 4);
	cr_assert_arr_eq(calls[0].val, "tls", 4);
}

Test(install, attach_ulp_no_kernel_tls)
{
	/* The "kernel lacks tls" fallback: no module, none loadable. */
	int err = 0;
	program_set_err(IPPROTO_TCP, TCP_ULP, ENOENT);
	cr_assert_eq(ktls_attach_ulp(&fake, 3, &err), KTLS_R_NO_KERNEL_TLS);
	cr_assert_eq(err, ENOENT);
	cr_assert_eq(ncalls, 1, "no getsockopt probe after ENOENT");
}

Test(install, attach_ulp_eexist_ours)
{
	int err = 0;
	program_set_err(IPPROTO_TCP, TCP_ULP, EEXIST);
	program_out(IPPROTO_TCP, TCP_ULP, "tls", 4);
	cr_assert_eq(ktls_attach_ulp(&fake, 3, &err), KTLS_R_MOVED);
	cr_assert_eq(ncalls, 2);
	cr_assert_eq(calls[1].set, 0);
	cr_assert_eq(calls[1].level, IPPROTO_TCP);
	cr_assert_eq(calls[1].name, TCP_ULP);
}

Test(install, attach_ulp_eexist_other_ulp)
{
	int err = 0;
	program_set_err(IPPROTO_TCP, TCP_ULP, EEXIST);
	program_out(IPPROTO_TCP, TCP_ULP, "espintcp", 9);
	cr_assert_neq(ktls_attach_ulp(&fake, 3, &err), KTLS_R_MOVED);
	cr_assert_eq(err, EEXIST);
}

Test(install, attach_ulp_eexist_query_fails)
{
	int err = 0;
	program_set_err(IPPROTO_TCP, TCP_ULP, EEXIST);
	program_get_err(IPPROTO_TCP, TCP_ULP, EBADF);
	cr_assert_eq(ktls_attach_ulp(&fake, 3, &err), KTLS_R_ULP_FAILED);
	cr_assert_eq(err, EEXIST);
}

Test(install, attach_ulp_other_errors)
{
	static const struct {
		int err;
		enum ktls_reason r;
	} t[] = {
		{ ENOTCONN, KTLS_R_NOT_CONNECTED },
		{ EOPNOTSUPP, KTLS_R_NOT_TCP },
		{ ENOPROTOOPT, KTLS_R_NOT_TCP },
		{ ENOMEM, KTLS_R_ULP_FAILED },
		{ EPERM, KTLS_R_ULP_FAILED },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int err = 0;
		reset_fake();
		program_set_err(IPPROTO_TCP, TCP_ULP, t[i].err);
		cr_assert_eq(ktls_attach_ulp(&fake, 3, &err), t[i].r,
			     "errno %d", t[i].err);
		cr_assert_eq(err, t[i].err);
		cr_assert_eq(ktls_reason_from_ulp_errno(t[i].err), t[i].r);
	}
	cr_assert_eq(ktls_reason_from_ulp_errno(ENOENT), KTLS_R_NO_KERNEL_TLS);
}

Test(install, has_ulp)
{
	program_out(IPPROTO_TCP, TCP_ULP, "tls", 4);
	cr_assert_eq(ktls_has_ulp(&fake, 3), 1);
	cr_assert_geq(calls[0].len, 4, "room for \"tls\\0\"");
	reset_fake();
	program_out(IPPROTO_TCP, TCP_ULP, "tlsx", 5);
	cr_assert_eq(ktls_has_ulp(&fake, 3), 0);
	reset_fake();
	program_out(IPPROTO_TCP, TCP_ULP, "", 1); /* no ULP attached */
	cr_assert_eq(ktls_has_ulp(&fake, 3), 0);
	reset_fake();
	program_get_err(IPPROTO_TCP, TCP_ULP, EBADF);
	cr_assert_eq(ktls_has_ulp(&fake, 3), -1);
}

/* ---- ktls_install_dir ---------------------------------------------------- */

static void make_ci(struct ktls_crypto_info *ci, uint16_t version,
		    enum ktls_cipher c)
{
	uint8_t key[32], iv[12];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x40 + i);
	for (int i = 0; i < 12; i++)
		iv[i] = (uint8_t)(0x90 + i);
	const struct ktls_cipher_desc *d = ktls_cipher_desc(c);
	cr_assert_not_null(d);
	size_t iv_len = version == KTLS_TLS13 || !d->salt_len ? 12 : 4;
	cr_assert_eq(ktls_crypto_info_build(ci, version, c, key, d->key_len, iv,
					    iv_len, NULL, 5),
		     0);
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static void install_and_check(uint16_t version, enum ktls_cipher c, int dir)
{
	struct ktls_crypto_info ci, copy;
	int err = -1;
	reset_fake();
	make_ci(&ci, version, c);
	copy = ci;
	cr_assert_eq(ktls_install_dir(&fake, 9, dir, &ci, &err), KTLS_R_MOVED);
	cr_assert_eq(err, 0);
	cr_assert_eq(ncalls, 1);
	cr_assert_eq(calls[0].set, 1);
	cr_assert_eq(calls[0].fd, 9);
	cr_assert_eq(calls[0].level, SOL_TLS);
	cr_assert_eq(calls[0].level, 282);
	cr_assert_eq(calls[0].name, dir);
	cr_assert_eq(calls[0].len, copy.len, "exactly ci->len bytes");
	cr_assert_arr_eq(calls[0].val, &copy.u, copy.len);
	cr_assert(all_zero(&ci, sizeof(ci)), "key not wiped after success");
}

Test(install, install_dir_passes_exact_struct)
{
	static const enum ktls_cipher cs[] = {
		KTLS_CIPHER_AES_128_GCM, KTLS_CIPHER_AES_256_GCM,
		KTLS_CIPHER_CHACHA20_POLY1305,
	};
	for (size_t i = 0; i < 3; i++) {
		install_and_check(KTLS_TLS13, cs[i], TLS_TX);
		install_and_check(KTLS_TLS13, cs[i], TLS_RX);
		install_and_check(KTLS_TLS12, cs[i], TLS_TX);
	}
	install_and_check(KTLS_TLS12, KTLS_CIPHER_AES_128_CCM, TLS_RX);
}

Test(install, install_dir_failure_wipes_and_maps_errno)
{
	static const struct {
		int err;
		enum ktls_reason r;
	} t[] = {
		{ ENOENT, KTLS_R_KERNEL_CIPHER },
		{ EINVAL, KTLS_R_KERNEL_CIPHER },
		{ ENOPROTOOPT, KTLS_R_NO_KERNEL_TLS },
		{ EBUSY, KTLS_R_SETSOCKOPT_FAILED },
		{ ENOMEM, KTLS_R_SETSOCKOPT_FAILED },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct ktls_crypto_info ci;
		int err = 0;
		reset_fake();
		make_ci(&ci, KTLS_TLS13, KTLS_CIPHER_AES_256_GCM);
		program_set_err(SOL_TLS, TLS_RX, t[i].err);
		cr_assert_eq(ktls_install_dir(&fake, 4, TLS_RX, &ci, &err),
			     t[i].r, "errno %d", t[i].err);
		cr_assert_eq(err, t[i].err);
		cr_assert(all_zero(&ci, sizeof(ci)),
			  "key not wiped after failure (errno %d)", t[i].err);
		cr_assert_eq(ktls_reason_from_install_errno(t[i].err), t[i].r);
	}
}

/* ---- ktls_query_dir ------------------------------------------------------ */

Test(install, query_dir_active)
{
	/* The kernel would copy the whole struct, key included, if asked. */
	struct tls12_crypto_info_aes_gcm_256 full;
	memset(&full, 0x77, sizeof(full));
	full.info.version = TLS_1_3_VERSION;
	full.info.cipher_type = TLS_CIPHER_AES_GCM_256;
	program_out(SOL_TLS, TLS_TX, &full, sizeof(full));
	uint16_t v = 0, ct = 0;
	cr_assert_eq(ktls_query_dir(&fake, 6, TLS_TX, &v, &ct), 1);
	cr_assert_eq(v, TLS_1_3_VERSION);
	cr_assert_eq(ct, TLS_CIPHER_AES_GCM_256);
	cr_assert_eq(ncalls, 1);
	cr_assert_eq(calls[0].set, 0);
	cr_assert_eq(calls[0].fd, 6);
	cr_assert_eq(calls[0].level, SOL_TLS);
	cr_assert_eq(calls[0].name, TLS_TX);
	cr_assert_eq(calls[0].len, sizeof(struct tls_crypto_info),
		     "asked for %u bytes: the kernel would return key material",
		     (unsigned)calls[0].len);
	cr_assert_eq(calls[0].len, 4);
	/* NULL outputs are allowed. */
	cr_assert_eq(ktls_query_dir(&fake, 6, TLS_TX, NULL, NULL), 1);
}

Test(install, query_dir_rx)
{
	struct tls_crypto_info h = { TLS_1_2_VERSION,
				     TLS_CIPHER_CHACHA20_POLY1305 };
	program_out(SOL_TLS, TLS_RX, &h, sizeof(h));
	uint16_t v = 0, ct = 0;
	cr_assert_eq(ktls_query_dir(&fake, 6, TLS_RX, &v, &ct), 1);
	cr_assert_eq(calls[0].name, TLS_RX);
	cr_assert_eq(v, TLS_1_2_VERSION);
	cr_assert_eq(ct, TLS_CIPHER_CHACHA20_POLY1305);
}

Test(install, query_dir_not_configured)
{
	struct tls_crypto_info h = { TLS_1_3_VERSION, 0 };
	program_out(SOL_TLS, TLS_TX, &h, sizeof(h));
	uint16_t v = 0xdead, ct = 0xbeef;
	cr_assert_eq(ktls_query_dir(&fake, 6, TLS_TX, &v, &ct), 0);
	cr_assert_eq(v, 0xdead, "outputs untouched when inactive");
	cr_assert_eq(ct, 0xbeef);
}

Test(install, query_dir_errors)
{
	static const struct {
		int err, rc;
	} t[] = {
		{ EBUSY, 0 },	   { ENOPROTOOPT, 0 }, { ENOTCONN, 0 },
		{ EOPNOTSUPP, 0 }, { EBADF, -1 },      { ENOTSOCK, -1 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		reset_fake();
		program_get_err(SOL_TLS, TLS_TX, t[i].err);
		uint16_t v = 1, ct = 2;
		cr_assert_eq(ktls_query_dir(&fake, 6, TLS_TX, &v, &ct), t[i].rc,
			     "errno %d", t[i].err);
		cr_assert_eq(v, 1);
		cr_assert_eq(ct, 2);
	}
}

/* ---- ktls_check_socket --------------------------------------------------- */

static void program_int(int level, int name, int value)
{
	program_out(level, name, &value, sizeof(value));
}

static void program_tcp_state(uint8_t state)
{
	struct tcp_info ti;
	memset(&ti, 0, sizeof(ti));
	ti.tcpi_state = state;
	/* struct tcp_info does not fit the fake's 64 bytes; the state is
	 * its first byte. */
	program_out(IPPROTO_TCP, TCP_INFO, &ti, 64);
}

Test(install, check_socket_established)
{
	program_int(SOL_SOCKET, SO_PROTOCOL, IPPROTO_TCP);
	program_tcp_state(TCP_ESTABLISHED);
	cr_assert_eq(ktls_check_socket(&fake, 5), KTLS_R_MOVED);
	cr_assert_eq(calls[0].level, SOL_SOCKET);
	cr_assert_eq(calls[0].name, SO_PROTOCOL);
	cr_assert_eq(calls[1].level, IPPROTO_TCP);
	cr_assert_eq(calls[1].name, TCP_INFO);
}

Test(install, check_socket_not_tcp)
{
	program_int(SOL_SOCKET, SO_PROTOCOL, IPPROTO_UDP);
	program_tcp_state(TCP_ESTABLISHED);
	cr_assert_eq(ktls_check_socket(&fake, 5), KTLS_R_NOT_TCP);
	reset_fake();
	program_int(SOL_SOCKET, SO_PROTOCOL, IPPROTO_SCTP);
	cr_assert_eq(ktls_check_socket(&fake, 5), KTLS_R_NOT_TCP);
	reset_fake();
	program_get_err(SOL_SOCKET, SO_PROTOCOL, ENOTSOCK);
	cr_assert_eq(ktls_check_socket(&fake, 5), KTLS_R_NOT_TCP);
}

Test(install, check_socket_not_established)
{
	static const uint8_t states[] = { TCP_SYN_SENT, TCP_SYN_RECV,
					  TCP_CLOSE_WAIT, TCP_CLOSE,
					  TCP_LISTEN, TCP_FIN_WAIT1 };
	for (size_t i = 0; i < sizeof(states); i++) {
		reset_fake();
		program_int(SOL_SOCKET, SO_PROTOCOL, IPPROTO_TCP);
		program_tcp_state(states[i]);
		cr_assert_eq(ktls_check_socket(&fake, 5), KTLS_R_NOT_CONNECTED,
			     "state %u", states[i]);
	}
	reset_fake();
	program_int(SOL_SOCKET, SO_PROTOCOL, IPPROTO_TCP);
	program_get_err(IPPROTO_TCP, TCP_INFO, EINVAL);
	cr_assert_eq(ktls_check_socket(&fake, 5), KTLS_R_NOT_CONNECTED);
}

/* ---- the real kernel ----------------------------------------------------- */

static int listen_lo(struct sockaddr_in *addr)
{
	socklen_t alen = sizeof(*addr);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(l, 0, "socket: %s", strerror(errno));
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(l, (struct sockaddr *)addr, sizeof(*addr)), 0,
		     "bind: %s", strerror(errno));
	cr_assert_eq(listen(l, 4), 0, "listen: %s", strerror(errno));
	cr_assert_eq(getsockname(l, (struct sockaddr *)addr, &alen), 0);
	return l;
}

static void tcp_pair(int *cli, int *srv)
{
	struct sockaddr_in addr;
	int l = listen_lo(&addr);
	*cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*cli, 0);
	cr_assert_eq(connect(*cli, (struct sockaddr *)&addr, sizeof(addr)), 0,
		     "connect: %s", strerror(errno));
	*srv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*srv, 0, "accept: %s", strerror(errno));
	close(l);
}

Test(install, real_kernel_loopback, .timeout = 20)
{
	int c1, s1, c2, s2, err = -1;

	/* What this kernel really does, asked directly on another
	 * connection: ENOENT without kTLS, success with it. */
	tcp_pair(&c2, &s2);
	errno = 0;
	int raw = setsockopt(c2, IPPROTO_TCP, TCP_ULP, "tls", 4);
	int raw_err = raw == 0 ? 0 : errno;
	close(c2);
	close(s2);
	cr_log_info("raw TCP_ULP \"tls\": %s", raw == 0 ? "attached"
							: strerror(raw_err));
	cr_assert(raw == 0 || raw_err == ENOENT,
		  "unexpected TCP_ULP result: %s", strerror(raw_err));
	enum ktls_reason want = raw == 0 ? KTLS_R_MOVED : KTLS_R_NO_KERNEL_TLS;

	tcp_pair(&c1, &s1);
	cr_assert_eq(ktls_check_socket(&ktls_sockops_sys, c1), KTLS_R_MOVED);
	cr_assert_eq(ktls_check_socket(&ktls_sockops_sys, s1), KTLS_R_MOVED);
	cr_assert_eq(ktls_has_ulp(&ktls_sockops_sys, c1), 0);
	enum ktls_reason got = ktls_attach_ulp(&ktls_sockops_sys, c1, &err);
	cr_assert_eq(got, want, "attach: %s, kernel says %s",
		     ktls_reason_name(got), ktls_reason_name(want));
	cr_assert_eq(err, raw_err);
	if (got == KTLS_R_MOVED) {
		cr_assert_eq(ktls_has_ulp(&ktls_sockops_sys, c1), 1);
		/* ULP attached, no direction configured yet. */
		cr_assert_eq(ktls_query_dir(&ktls_sockops_sys, c1, TLS_TX, NULL,
					    NULL),
			     0);
		/* Attaching again: EEXIST, and it is ours. */
		cr_assert_eq(ktls_attach_ulp(&ktls_sockops_sys, c1, &err),
			     KTLS_R_MOVED);
	} else {
		cr_assert_eq(ktls_has_ulp(&ktls_sockops_sys, c1), 0);
		cr_assert_eq(ktls_query_dir(&ktls_sockops_sys, c1, TLS_TX, NULL,
					    NULL),
			     0);
	}
	close(c1);
	close(s1);
}

Test(install, real_kernel_udp_and_unconnected)
{
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(u, 0);
	cr_assert_eq(ktls_check_socket(&ktls_sockops_sys, u), KTLS_R_NOT_TCP);
	close(u);

	int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(t, 0);
	cr_assert_eq(ktls_check_socket(&ktls_sockops_sys, t),
		     KTLS_R_NOT_CONNECTED);
	close(t);

	struct sockaddr_in addr;
	int l = listen_lo(&addr);
	cr_assert_eq(ktls_check_socket(&ktls_sockops_sys, l),
		     KTLS_R_NOT_CONNECTED);
	close(l);

	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(ktls_check_socket(&ktls_sockops_sys, p[0]),
		     KTLS_R_NOT_TCP);
	close(p[0]);
	close(p[1]);
}

/* ---- the peer's record size limit (kernel/record_limit.c) -------------- */

#define TX_MAX_PAYLOAD 5 /* TLS_TX_MAX_PAYLOAD_LEN, newer kernels */

Test(install, tx_limit_none_asks_nothing)
{
	cr_assert_eq(ktls_tx_limit_set(&fake, 7, 16384), KTLS_R_MOVED);
	cr_assert_eq(ncalls, 0);
	cr_assert_eq(ktls_tx_limit_holds(&fake, 7, 0x0304, 16384), 1);
	cr_assert_eq(ncalls, 0);
}

Test(install, tx_limit_set_passes_u16)
{
	cr_assert_eq(ktls_tx_limit_set(&fake, 7, 512), KTLS_R_MOVED);
	cr_assert_eq(ncalls, 1);
	cr_assert_eq(calls[0].level, SOL_TLS);
	cr_assert_eq(calls[0].name, TX_MAX_PAYLOAD);
	cr_assert_eq(calls[0].len, 2);
	uint16_t v;
	memcpy(&v, calls[0].val, 2);
	cr_assert_eq(v, 512);
}

Test(install, tx_limit_kernel_without_option)
{
	program_set_err(SOL_TLS, TX_MAX_PAYLOAD, ENOPROTOOPT);
	cr_assert_eq(ktls_tx_limit_set(&fake, 7, 512),
		     KTLS_R_RECORD_SIZE_LIMITED);
	program_set_err(SOL_TLS, TX_MAX_PAYLOAD, EINVAL);
	cr_assert_eq(ktls_tx_limit_set(&fake, 7, 63),
		     KTLS_R_RECORD_SIZE_LIMITED);
}

Test(install, tx_limit_holds_reads_back)
{
	uint16_t v = 512;
	program_out(SOL_TLS, TX_MAX_PAYLOAD, &v, 2);
	cr_assert_eq(ktls_tx_limit_holds(&fake, 7, 0x0303, 512), 1);
	cr_assert_eq(ktls_tx_limit_holds(&fake, 7, 0x0303, 1024), 0);
	/* TLS 1.3, reported with the content type byte counted in. */
	v = 1024;
	program_out(SOL_TLS, TX_MAX_PAYLOAD, &v, 2);
	cr_assert_eq(ktls_tx_limit_holds(&fake, 7, 0x0304, 1023), 1);
	cr_assert_eq(ktls_tx_limit_holds(&fake, 7, 0x0303, 1023), 0);
	program_get_err(SOL_TLS, TX_MAX_PAYLOAD, ENOPROTOOPT);
	cr_assert_eq(ktls_tx_limit_holds(&fake, 7, 0x0303, 512), -1);
}
