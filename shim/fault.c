/* See fault.h. Only in libktls-shim-fault.so: meson builds this file into
 * that library alone, with -DKTLS_FAULT. */
#define _GNU_SOURCE
#include "fault.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdtab.h"
#include "gnutls_bind.h"
#include "log.h"
#include "ossl.h"
#include "real.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TLS_TX_ZEROCOPY_RO
#define TLS_TX_ZEROCOPY_RO 3
#endif
/* engine.c's: OpenSSL 3.0/3.1's internal BIO_CTRL_SET_KTLS. */
#define OSSL_BIO_CTRL_SET_KTLS 72

#define POINTS(X)                                                             \
	X(SETSOCKOPT_ULP, "setsockopt_ulp",                                   \
	  "setsockopt(TCP_ULP \"tls\"): OpenSSL's, or the engine's own")      \
	X(SETSOCKOPT_TLS_TX, "setsockopt_tls_tx",                             \
	  "setsockopt(SOL_TLS, TLS_TX): OpenSSL's first key, then the "       \
	  "engine's after each KeyUpdate")                                    \
	X(SETSOCKOPT_TLS_RX, "setsockopt_tls_rx",                             \
	  "setsockopt(SOL_TLS, TLS_RX): OpenSSL's (TLS 1.3: with the "        \
	  "engine's key), then the engine's after each KeyUpdate")            \
	X(SETSOCKOPT_ZEROCOPY_RO, "setsockopt_zerocopy_ro",                   \
	  "setsockopt(SOL_TLS, TLS_TX_ZEROCOPY_RO), with tx_zerocopy_ro")     \
	X(GETSOCKOPT_TLS, "getsockopt_tls",                                   \
	  "getsockopt(SOL_TLS): does the kernel hold what OpenSSL believes")  \
	X(GETSOCKOPT_SOCKET, "getsockopt_socket",                             \
	  "getsockopt(SO_PROTOCOL, TCP_INFO, TCP_ULP): a connected TCP "      \
	  "socket, with the ULP?")                                            \
	X(READ, "read", "read() on a TLS socket")                             \
	X(WRITE, "write", "write() on a TLS socket")                          \
	X(RECVMSG, "recvmsg", "recvmsg() on a TLS socket (kernel RX)")        \
	X(SENDMSG, "sendmsg",                                                 \
	  "sendmsg() on a TLS socket (kernel TX: control records, the "       \
	  "GnuTLS engine's data)")                                            \
	X(SENDFILE, "sendfile", "sendfile() to a TLS socket")                 \
	X(KDF_FETCH, "kdf_fetch", "EVP_KDF_fetch(HKDF)")                      \
	X(KDF_CTX_NEW, "kdf_ctx_new", "EVP_KDF_CTX_new")                      \
	X(KDF_DERIVE, "kdf_derive",                                           \
	  "EVP_KDF_derive: TLS 1.3 key, iv, next secret")                     \
	X(BIO_SET_KTLS, "bio_set_ktls",                                       \
	  "BIO_ctrl(BIO_CTRL_SET_KTLS): the engine hands OpenSSL the TLS "    \
	  "1.3 RX key")                                                       \
	X(EX_HIDDEN, "ssl_ex_data_hidden",                                    \
	  "SSL_set_ex_data: SSL_OP_ENABLE_KTLS is the shim's, hide it")       \
	X(EX_KEYS, "ssl_ex_data_keys",                                        \
	  "SSL_set_ex_data: the engine's secrets")                            \
	X(EX_NOTE, "ssl_ex_data_note",                                        \
	  "SSL_set_ex_data: the session was settled (or has no socket BIO)")  \
	X(EX_FD, "ssl_ex_data_fd",                                            \
	  "SSL_set_ex_data: the fd whose entry points at this SSL "           \
	  "(sendfile emulation)")                                             \
	X(EX_CB, "ssl_ex_data_cb",                                            \
	  "SSL_set_ex_data: the program's info callback")                     \
	X(CTX_EX_HIDDEN, "ctx_ex_data_hidden",                                \
	  "SSL_CTX_set_ex_data: SSL_OP_ENABLE_KTLS is the shim's")            \
	X(CTX_EX_CB, "ctx_ex_data_cb",                                        \
	  "SSL_CTX_set_ex_data: the program's info callback")                 \
	X(CTX_EX_KEYLOG, "ctx_ex_data_keylog",                                \
	  "SSL_CTX_set_ex_data: the program's keylog callback")               \
	X(EX_MSGCB, "ssl_ex_data_msgcb",                                      \
	  "SSL_set_ex_data: the program's message callback (engine=shim)")    \
	X(CTX_EX_MSGCB, "ctx_ex_data_msgcb",                                  \
	  "SSL_CTX_set_ex_data: the program's message callback")              \
	X(GT_RECORD_GET_STATE, "gnutls_record_get_state",                     \
	  "gnutls_record_get_state: the GnuTLS engine reads the key, IV and " \
	  "sequence number")                                                  \
	X(GT_HKDF_EXPAND, "gnutls_hkdf_expand",                               \
	  "gnutls_hkdf_expand: TLS 1.3 key and IV from GnuTLS's traffic "     \
	  "secret (checked at the move), the next secret (KeyUpdate)")        \
	X(ALLOC, "alloc",                                                     \
	  "malloc/calloc by the shim's own code (engine secrets, GnuTLS "    \
	  "engine, config file)")                                             \
	X(BPF_OBJ_GET, "bpf_obj_get",                                         \
	  "bpf(BPF_OBJ_GET): opening the pinned owners map")                  \
	X(BPF_MAP_UPDATE, "bpf_map_update",                                   \
	  "bpf(BPF_MAP_UPDATE_ELEM): registering a socket, marking it "      \
	  "closed")                                                           \
	X(BPF_MAP_LOOKUP, "bpf_map_lookup",                                   \
	  "bpf(BPF_MAP_LOOKUP_ELEM): a socket's row, at close")

#define ENUM(id, name, what) FP_##id,
enum fault_point { POINTS(ENUM) FP_COUNT };
#define NAME(id, name, what) name,
static const char *const point_name[] = { POINTS(NAME) };
#define WHAT(id, name, what) what,
static const char *const point_what[] = { POINTS(WHAT) };

static const struct {
	const char *name;
	int err;
} errnos[] = {
	{ "EPERM", EPERM },	      { "ENOENT", ENOENT },
	{ "EINTR", EINTR },	      { "EIO", EIO },
	{ "EBADF", EBADF },	      { "EAGAIN", EAGAIN },
	{ "ENOMEM", ENOMEM },	      { "EACCES", EACCES },
	{ "EBUSY", EBUSY },	      { "EINVAL", EINVAL },
	{ "ENOSPC", ENOSPC },	      { "EPIPE", EPIPE },
	{ "ENOPROTOOPT", ENOPROTOOPT }, { "EOPNOTSUPP", EOPNOTSUPP },
	{ "ECONNRESET", ECONNRESET }, { "ENOBUFS", ENOBUFS },
	{ "ETIMEDOUT", ETIMEDOUT },   { "EKEYEXPIRED", EKEYEXPIRED },
};

static struct {
	int point; /* -1: none */
	unsigned long nth;
	int sticky; /* NTH+: that call and every later one */
	int err;
} want = { -1, 0, 0, 0 };
static _Atomic unsigned long calls[FP_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *errno_name(int e)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].err == e)
			return errnos[i].name;
	return "?";
}

static void parse(void)
{
	const char *v = getenv("KTLS_SHIM_FAULT");
	char buf[128], *nth, *err = NULL;
	if (!v || !*v || strcmp(v, "list") == 0)
		return;
	snprintf(buf, sizeof(buf), "%s", v);
	if ((nth = strchr(buf, ':'))) {
		*nth++ = 0;
		if ((err = strchr(nth, ':')))
			*err++ = 0;
	}
	for (int i = 0; i < FP_COUNT; i++)
		if (strcmp(buf, point_name[i]) == 0)
			want.point = i;
	want.nth = 1;
	if (nth && *nth) {
		char *end;
		want.nth = strtoul(nth, &end, 10);
		want.sticky = *end == '+';
		if (!want.nth || (*end && strcmp(end, "+") != 0))
			want.point = -1;
	}
	want.err = ENOMEM;
	if (err && *err) {
		want.err = 0;
		for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
			if (strcmp(err, errnos[i].name) == 0)
				want.err = errnos[i].err;
		if (!want.err)
			want.point = -1;
	}
	if (want.point < 0) {
		fprintf(stderr, "ktls-shim fault: bad KTLS_SHIM_FAULT '%s' "
				"(KTLS_SHIM_FAULT=list names the points)\n", v);
		_exit(99);
	}
}

static _Thread_local int quiet;

void ktls_fault_quiet(int on)
{
	quiet = on;
}

static int hit(enum fault_point p)
{
	if (quiet)
		return 0;
	pthread_once(&once, parse);
	unsigned long n = atomic_fetch_add(&calls[p], 1) + 1;
	if ((int)p != want.point ||
	    (want.sticky ? n < want.nth : n != want.nth))
		return 0;
	ktls_warn("fault: %s call %lu fails with %s (KTLS_SHIM_FAULT)",
		  point_name[p], n, errno_name(want.err));
	return want.err;
}

/* The list comes from the library under test itself, so a test cannot
 * miss a point added later. A bad setting stops the program here, before
 * it could pass for a fault that changed nothing. */
__attribute__((constructor)) static void list_points(void)
{
	const char *v = getenv("KTLS_SHIM_FAULT");
	if (!v || strcmp(v, "list") != 0) {
		pthread_once(&once, parse);
		return;
	}
	for (int i = 0; i < FP_COUNT; i++)
		printf("%s\t%s\n", point_name[i], point_what[i]);
	fflush(stdout);
}

/* How often each point was reached: a test picks its NTH from these. */
__attribute__((destructor)) static void report(void)
{
	char line[1024];
	size_t off = 0;
	for (int i = 0; i < FP_COUNT && off < sizeof(line); i++) {
		unsigned long n = atomic_load(&calls[i]);
		if (n)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
						" %s=%lu", point_name[i], n);
	}
	ktls_info("fault calls:%s", off ? line : " none");
}

int ktls_fault_sockopt(int set, int level, int name)
{
	enum fault_point p;
	if (set && level == IPPROTO_TCP && name == TCP_ULP)
		p = FP_SETSOCKOPT_ULP;
	else if (set && level == SOL_TLS && name == TLS_TX)
		p = FP_SETSOCKOPT_TLS_TX;
	else if (set && level == SOL_TLS && name == TLS_RX)
		p = FP_SETSOCKOPT_TLS_RX;
	else if (set && level == SOL_TLS && name == TLS_TX_ZEROCOPY_RO)
		p = FP_SETSOCKOPT_ZEROCOPY_RO;
	else if (!set && level == SOL_TLS)
		p = FP_GETSOCKOPT_TLS;
	else if (!set && ((level == SOL_SOCKET && name == SO_PROTOCOL) ||
			  (level == IPPROTO_TCP &&
			   (name == TCP_INFO || name == TCP_ULP))))
		p = FP_GETSOCKOPT_SOCKET;
	else
		return 0;
	return hit(p);
}

int ktls_fault_bpf(int cmd)
{
	switch (cmd) {
	case BPF_OBJ_GET:
		return hit(FP_BPF_OBJ_GET);
	case BPF_MAP_UPDATE_ELEM:
		return hit(FP_BPF_MAP_UPDATE);
	case BPF_MAP_LOOKUP_ELEM:
		return hit(FP_BPF_MAP_LOOKUP);
	default:
		return 0;
	}
}

/* ---- libc: the real table ---- */

static struct ktls_real next;

#define FAIL_IF(cond, point)                                                  \
	do {                                                                  \
		int e_;                                                       \
		if ((cond) && (e_ = hit(point))) {                            \
			errno = e_;                                           \
			return -1;                                            \
		}                                                             \
	} while (0)

static int tracked(int fd)
{
	return ktls_fd_tracked(fd) != NULL;
}

static ssize_t f_read(int fd, void *b, size_t n)
{
	FAIL_IF(tracked(fd), FP_READ);
	return next.read(fd, b, n);
}
static ssize_t f_read_chk(int fd, void *b, size_t n, size_t bl)
{
	FAIL_IF(tracked(fd), FP_READ);
	return next.read_chk(fd, b, n, bl);
}
static ssize_t f_write(int fd, const void *b, size_t n)
{
	FAIL_IF(tracked(fd), FP_WRITE);
	return next.write(fd, b, n);
}
static ssize_t f_recvmsg(int fd, struct msghdr *m, int fl)
{
	FAIL_IF(tracked(fd), FP_RECVMSG);
	return next.recvmsg(fd, m, fl);
}
static ssize_t f_sendmsg(int fd, const struct msghdr *m, int fl)
{
	FAIL_IF(tracked(fd), FP_SENDMSG);
	return next.sendmsg(fd, m, fl);
}
static ssize_t f_sendfile(int o, int i, off_t *off, size_t n)
{
	FAIL_IF(tracked(o), FP_SENDFILE);
	return next.sendfile(o, i, off, n);
}
static ssize_t f_sendfile64(int o, int i, off_t *off, size_t n)
{
	FAIL_IF(tracked(o), FP_SENDFILE);
	return next.sendfile64(o, i, off, n);
}
static int f_setsockopt(int fd, int l, int n, const void *v, socklen_t len)
{
	int e = ktls_fault_sockopt(1, l, n);
	if (e) {
		errno = e;
		return -1;
	}
	return next.setsockopt(fd, l, n, v, len);
}

/* close() is left alone: the shim only forwards the program's own. A new
 * member of struct ktls_real must be wrapped here or exempted here. */
_Static_assert(sizeof(struct ktls_real) == 9 * sizeof(void *),
	       "struct ktls_real changed: wrap the new call in fault.c");

void ktls_fault_wrap_real(struct ktls_real *r)
{
	next = *r;
	r->read = f_read;
	r->read_chk = f_read_chk;
	r->write = f_write;
	r->recvmsg = f_recvmsg;
	r->sendmsg = f_sendmsg;
	r->sendfile = f_sendfile;
	r->sendfile64 = f_sendfile64;
	r->setsockopt = f_setsockopt;
}

/* ---- libssl/libcrypto: the ossl table ---- */

static struct ktls_ossl onext;

static EVP_KDF *f_kdf_fetch(OSSL_LIB_CTX *l, const char *a, const char *p)
{
	return hit(FP_KDF_FETCH) ? NULL : onext.EVP_KDF_fetch(l, a, p);
}
static EVP_KDF_CTX *f_kdf_ctx_new(EVP_KDF *k)
{
	return hit(FP_KDF_CTX_NEW) ? NULL : onext.EVP_KDF_CTX_new(k);
}
static int f_kdf_derive(EVP_KDF_CTX *c, unsigned char *k, size_t n,
			const OSSL_PARAM p[])
{
	return hit(FP_KDF_DERIVE) ? 0 : onext.EVP_KDF_derive(c, k, n, p);
}
static long f_bio_ctrl(BIO *b, int cmd, long larg, void *parg)
{
	if (cmd == OSSL_BIO_CTRL_SET_KTLS && hit(FP_BIO_SET_KTLS))
		return 0;
	return onext.BIO_ctrl(b, cmd, larg, parg);
}
static int f_ssl_set_ex_data(SSL *s, int idx, void *v)
{
	int p = idx == ktls_ossl.ex_hidden ? FP_EX_HIDDEN
		: idx == ktls_ossl.ex_keys ? FP_EX_KEYS
		: idx == ktls_ossl.ex_note ? FP_EX_NOTE
		: idx == ktls_ossl.ex_fd   ? FP_EX_FD
		: idx == ktls_ossl.ex_cb   ? FP_EX_CB
		: idx == ktls_ossl.ex_msgcb ? FP_EX_MSGCB
					   : -1;
	if (p >= 0 && hit((enum fault_point)p))
		return 0;
	return onext.SSL_set_ex_data(s, idx, v);
}
static int f_ctx_set_ex_data(SSL_CTX *c, int idx, void *v)
{
	int p = idx == ktls_ossl.ctx_ex_hidden ? FP_CTX_EX_HIDDEN
		: idx == ktls_ossl.ctx_ex_cb   ? FP_CTX_EX_CB
		: idx == ktls_ossl.ctx_ex_keylog ? FP_CTX_EX_KEYLOG
		: idx == ktls_ossl.ctx_ex_msgcb ? FP_CTX_EX_MSGCB
						 : -1;
	if (p >= 0 && hit((enum fault_point)p))
		return 0;
	return onext.SSL_CTX_set_ex_data(c, idx, v);
}

void ktls_fault_wrap_ossl(struct ktls_ossl *o)
{
	onext = *o;
	o->EVP_KDF_fetch = f_kdf_fetch;
	o->EVP_KDF_CTX_new = f_kdf_ctx_new;
	o->EVP_KDF_derive = f_kdf_derive;
	o->BIO_ctrl = f_bio_ctrl;
	o->SSL_set_ex_data = f_ssl_set_ex_data;
	o->SSL_CTX_set_ex_data = f_ctx_set_ex_data;
}

/* ---- libgnutls: the ktls_gt table ---- */

static struct ktls_gt gnext;

static int f_record_get_state(gnutls_session_t s, unsigned rd,
			      gnutls_datum_t *mac, gnutls_datum_t *iv,
			      gnutls_datum_t *key, unsigned char *seq)
{
	if (hit(FP_GT_RECORD_GET_STATE))
		return GNUTLS_E_INVALID_REQUEST;
	return gnext.record_get_state(s, rd, mac, iv, key, seq);
}
static int f_hkdf_expand(gnutls_mac_algorithm_t m, const gnutls_datum_t *k,
			 const gnutls_datum_t *info, void *out, size_t n)
{
	if (hit(FP_GT_HKDF_EXPAND))
		return GNUTLS_E_MEMORY_ERROR;
	return gnext.hkdf_expand(m, k, info, out, n);
}

void ktls_fault_wrap_gt(struct ktls_gt *g)
{
	gnext = *g;
	g->record_get_state = f_record_get_state;
	if (g->hkdf_expand)
		g->hkdf_expand = f_hkdf_expand;
}

/* ---- the shim's own allocations (-Wl,--wrap=malloc,--wrap=calloc) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

void *__wrap_malloc(size_t n)
{
	int e = hit(FP_ALLOC);
	if (e) {
		errno = e;
		return NULL;
	}
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	int e = hit(FP_ALLOC);
	if (e) {
		errno = e;
		return NULL;
	}
	return __real_calloc(n, size);
}
