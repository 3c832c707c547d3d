/*
 * ktls_bench: one measurement of TLS over loopback TCP, with the sender and
 * the receiver in separate processes (fork), each measuring itself.
 *
 *   ktls_bench probe
 *       exit 0 if this kernel accepts TCP_ULP "tls" on a connected loopback
 *       socket (kTLS is there), 1 if not; one line "ktls=1|0 ..." on stdout.
 *   ktls_bench bulk --mode M --tls 1.2|1.3 --cipher C --size W --bytes N
 *                   [--warmup N] [--file PATH] [--file-size N] [--verify]
 *       the sender (TLS server) sends N bytes of a cached file in W-byte
 *       calls; the receiver (TLS client) reads them in W-byte calls. Both
 *       measure only after the warm-up bytes (default N/4, at most 4 MiB),
 *       which go the same way first, in --segments S (default 4) parts of
 *       N/S bytes each, and report the part with the least CPU per byte
 *       (plus the totals, the spread and the fastest part's wall time).
 *       --mark: the sender starts the payload only once the receiver has
 *       read the whole warm-up (a pipe between them), then executes the
 *       TCG window marker (bench/tcg/tcg_mark.h); the receiver executes it
 *       again when it has read everything: the window of the guest
 *       instruction counts (bench/tcg/insn_count.c) holds the payload's
 *       work on both sides and nothing of the warm-up.
 *   ktls_bench conn --mode M --tls 1.2|1.3 --cipher C --conns K [--resp N]
 *                   [--warm-conns J]
 *       K sequential connections: handshake, N bytes of response, close;
 *       timed after J untimed ones (default K/10, at least 1), in
 *       segments as for bulk (the s_bytes/r_bytes are connections then).
 *       --mark: TCG window markers around the timed connections, the
 *       sides synchronised at both edges (mark_sync_wait).
 *
 * Modes: a = userspace OpenSSL (SSL_OP_ENABLE_KTLS cleared; refuses to run
 * with the shim preloaded); b = SSL_write, options untouched: run it with
 * LD_PRELOAD=libktls-shim.so (refuses to run without); c = like b, but the
 * sender uses SSL_sendfile() whenever BIO_get_ktls_send() says the kernel
 * encrypts (else it falls back to b's read+SSL_write and says so);
 * d = OpenSSL's own kTLS (the program sets SSL_OP_ENABLE_KTLS; no shim);
 * e = plain TCP, no TLS (no shim).
 * Ciphers: aes-128-gcm, aes-256-gcm, chacha20-poly1305 (ECDHE-ECDSA P-256
 * for TLS 1.2).
 *
 * Output: one line of key=value pairs on stdout (s_* sender/server, r_*
 * receiver/client). What the kernel did comes from getsockopt(SOL_TLS)
 * (s_kernel_tx, r_kernel_rx, ...), never from the mode's name.
 *
 * Counting: this executable defines read/write/recvmsg/sendmsg/sendfile/...
 * itself, counts each call and its bytes, and forwards to the next
 * definition (the shim's, if preloaded, else libc's). libssl's calls land
 * here first (the executable comes first in symbol lookup), so the counts
 * are the I/O system calls the program and OpenSSL make, deterministic for
 * the sender. Calls the shim makes internally are not seen here (the
 * driver counts those with strace for the per-connection figures).
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
/* x86_64 has 64-bit off_t anyway; meson's -D_FILE_OFFSET_BITS=64 would
 * turn the sendfile() defined below into a second sendfile64(). */
#undef _FILE_OFFSET_BITS
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/prctl.h>

#include "tcg_mark.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/* ---- counting interposition ------------------------------------------- */

struct counters {
	unsigned long long read, write, readv, writev, recv, send, recvmsg,
		sendmsg, sendfile, poll, setsockopt, getsockopt, file_read;
	/* bytes copied kernel -> user (in) and user -> kernel (out) by the
	 * calls above; sendfile bytes never pass through userspace. */
	unsigned long long in_bytes, out_bytes, file_bytes, sendfile_bytes;
};
static struct counters C;

static unsigned long long calls_total(const struct counters *c)
{
	return c->read + c->write + c->readv + c->writev + c->recv + c->send +
	       c->recvmsg + c->sendmsg + c->sendfile + c->poll +
	       c->setsockopt + c->getsockopt + c->file_read;
}

static void counters_sub(struct counters *d, const struct counters *a,
			 const struct counters *b)
{
	const unsigned long long *pa = (const void *)a, *pb = (const void *)b;
	unsigned long long *pd = (void *)d;
	for (size_t i = 0; i < sizeof(*d) / sizeof(*pd); i++)
		pd[i] = pa[i] - pb[i];
}

#define NEXT(name)                                                            \
	static __typeof__(name) *next_;                                       \
	if (!next_)                                                           \
		next_ = (__typeof__(name) *)dlsym(RTLD_NEXT, #name);          \
	if (!next_) {                                                         \
		errno = ENOSYS;                                               \
		return -1;                                                    \
	}

#define ADD(bytes_field, r)                                                   \
	do {                                                                  \
		if ((r) > 0)                                                  \
			C.bytes_field += (unsigned long long)(r);             \
	} while (0)

ssize_t read(int fd, void *b, size_t n)
{
	NEXT(read);
	C.read++;
	ssize_t r = next_(fd, b, n);
	ADD(in_bytes, r);
	return r;
}

ssize_t write(int fd, const void *b, size_t n)
{
	NEXT(write);
	C.write++;
	ssize_t r = next_(fd, b, n);
	ADD(out_bytes, r);
	return r;
}

ssize_t readv(int fd, const struct iovec *v, int n)
{
	NEXT(readv);
	C.readv++;
	ssize_t r = next_(fd, v, n);
	ADD(in_bytes, r);
	return r;
}

ssize_t writev(int fd, const struct iovec *v, int n)
{
	NEXT(writev);
	C.writev++;
	ssize_t r = next_(fd, v, n);
	ADD(out_bytes, r);
	return r;
}

ssize_t recv(int fd, void *b, size_t n, int fl)
{
	NEXT(recv);
	C.recv++;
	ssize_t r = next_(fd, b, n, fl);
	ADD(in_bytes, r);
	return r;
}

ssize_t send(int fd, const void *b, size_t n, int fl)
{
	NEXT(send);
	C.send++;
	ssize_t r = next_(fd, b, n, fl);
	ADD(out_bytes, r);
	return r;
}

ssize_t recvmsg(int fd, struct msghdr *m, int fl)
{
	NEXT(recvmsg);
	C.recvmsg++;
	ssize_t r = next_(fd, m, fl);
	ADD(in_bytes, r);
	return r;
}

ssize_t sendmsg(int fd, const struct msghdr *m, int fl)
{
	NEXT(sendmsg);
	C.sendmsg++;
	ssize_t r = next_(fd, m, fl);
	ADD(out_bytes, r);
	return r;
}

ssize_t sendfile(int o, int i, off_t *off, size_t n)
{
	NEXT(sendfile);
	C.sendfile++;
	ssize_t r = next_(o, i, off, n);
	ADD(sendfile_bytes, r);
	return r;
}

ssize_t sendfile64(int o, int i, off64_t *off, size_t n)
{
	NEXT(sendfile64);
	C.sendfile++;
	ssize_t r = next_(o, i, off, n);
	ADD(sendfile_bytes, r);
	return r;
}

int poll(struct pollfd *p, nfds_t n, int t)
{
	NEXT(poll);
	C.poll++;
	return next_(p, n, t);
}

int setsockopt(int fd, int l, int o, const void *v, socklen_t len)
{
	NEXT(setsockopt);
	C.setsockopt++;
	return next_(fd, l, o, v, len);
}

int getsockopt(int fd, int l, int o, void *v, socklen_t *len)
{
	NEXT(getsockopt);
	C.getsockopt++;
	return next_(fd, l, o, v, len);
}

/* ---- options and helpers ---------------------------------------------- */

struct opts {
	char mode;
	const char *tls, *cipher, *file;
	size_t size;
	unsigned long long bytes, file_size, resp, warmup;
	int conns, warm_conns, verify, timeout, segments, mark;
};

/* --mark: the receiver writes one byte here when it has the warm-up. */
static int g_sync[2] = { -1, -1 };

/* Executes the TCG window marker at a fixed phase of the kernel's timer
 * tick: sleeps (the other side is blocked, so the guest idles; under
 * -icount sleep=off that costs no time) until 0.5 ms past the next
 * multiple of 20 ms of CLOCK_MONOTONIC, a grid that holds the tick of
 * HZ 100, 250 and 1000, so that ticks fall at the same points of every
 * repetition. Measured (4 MiB, 6.1 guest, -icount): repeats differed by up
 * to 4.3% (mode a, 256 B: kernel 447 M vs 421 M instructions) before this
 * and the uncounted first run (bench/insnlib.py measure) came in; with
 * both, repeats 2 and 3 agreed to 0.02% where run 1 was 3.7% off: most of
 * the gain is the uncounted run, this one's share was not measured apart.
 * Some small-write cases stay bimodal in the kernel count (README). */
static void mark_aligned(void)
{
	struct timespec t;
	prctl(PR_SET_TIMERSLACK, 1UL);
	clock_gettime(CLOCK_MONOTONIC, &t);
	long long ns = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
	ns = (ns / 20000000LL + 2) * 20000000LL + 500000LL;
	t.tv_sec = (time_t)(ns / 1000000000LL);
	t.tv_nsec = (long)(ns % 1000000000LL);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) ==
	       EINTR)
		;
	tcg_mark();
}

static const struct cipher_map {
	const char *name, *tls12, *tls13;
} CIPHERS[] = {
	{ "aes-128-gcm", "ECDHE-ECDSA-AES128-GCM-SHA256",
	  "TLS_AES_128_GCM_SHA256" },
	{ "aes-256-gcm", "ECDHE-ECDSA-AES256-GCM-SHA384",
	  "TLS_AES_256_GCM_SHA384" },
	{ "chacha20-poly1305", "ECDHE-ECDSA-CHACHA20-POLY1305",
	  "TLS_CHACHA20_POLY1305_SHA256" },
};

/* What one process measured, sent to the parent through a pipe. */
struct side {
	int ok;
	int pid;
	long long t0_ns, t1_ns; /* data phase (bulk) or whole loop (conn) */
	double user_s, sys_s;
	unsigned long long bytes;
	struct counters c;
	int lib_tx, lib_rx, kernel_tx, kernel_rx, sendfile_used;
	unsigned long long verified;
	double hs_s; /* conn: sum of SSL_accept/SSL_connect durations */
	int conns;
	/* bulk: the timed payload goes in segments; the fields above hold the
	 * one with the least CPU per byte (the least disturbed by whatever
	 * else ran), these the rest. */
	int segs;
	double spread;			/* worst / best CPU per byte */
	double all_cpu_s, all_wall_s;	/* all segments together */
	unsigned long long all_bytes;
	double fast_wall_s;		/* the fastest segment (wall per byte) */
	unsigned long long fast_bytes;
	char version[16], suite[64], err[400];
};

static struct side *g_me; /* this process's result, for fail() */
static int g_pipe = -1;

static void report_and_exit(int code)
{
	if (g_me && g_pipe >= 0) {
		const char *p = (const char *)g_me;
		size_t left = sizeof(*g_me);
		while (left) {
			ssize_t w = write(g_pipe, p, left);
			if (w <= 0)
				break;
			p += w;
			left -= (size_t)w;
		}
	}
	_exit(code);
}

static void fail(const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unsigned long e = ERR_peek_last_error();
	char es[120] = "";
	if (e)
		ERR_error_string_n(e, es, sizeof(es));
	if (g_me) {
		snprintf(g_me->err, sizeof(g_me->err), "%s%s%s", msg,
			 e ? " / " : "", es);
		g_me->ok = 0;
		report_and_exit(3);
	}
	fprintf(stderr, "ktls_bench: %s%s%s\n", msg, e ? " / " : "", es);
	exit(2);
}

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double g_hs_s; /* time spent in SSL_accept/SSL_connect so far */

struct snap {
	long long ns;
	struct rusage ru;
	struct counters c;
	double hs_s;
};

static void snap(struct snap *s)
{
	s->c = C;
	s->hs_s = g_hs_s;
	getrusage(RUSAGE_SELF, &s->ru);
	s->ns = now_ns();
}

static double tv_s(struct timeval a, struct timeval b)
{
	return (double)(a.tv_sec - b.tv_sec) +
	       (double)(a.tv_usec - b.tv_usec) / 1e6;
}

static void snap_delta(struct side *me, const struct snap *a,
		       const struct snap *b)
{
	me->t0_ns = a->ns;
	me->t1_ns = b->ns;
	me->user_s = tv_s(b->ru.ru_utime, a->ru.ru_utime);
	me->sys_s = tv_s(b->ru.ru_stime, a->ru.ru_stime);
	me->hs_s = b->hs_s - a->hs_s;
	counters_sub(&me->c, &b->c, &a->c);
}

/* Segments of the timed part: each closes at a byte position, measured
 * from the previous snapshot. */
struct segs {
	struct snap prev;
	unsigned long long prev_pos;
	double best_cpb, worst_cpb;
	int open;
};

static void seg_start(struct segs *g, unsigned long long pos)
{
	snap(&g->prev);
	g->prev_pos = pos;
	g->open = 1;
}

static void seg_close(struct segs *g, struct side *me, unsigned long long pos,
		      int reopen)
{
	struct snap cur;
	snap(&cur);
	unsigned long long n = pos - g->prev_pos;
	if (g->open && n > 0) {
		struct side d = { 0 };
		snap_delta(&d, &g->prev, &cur);
		double cpu = d.user_s + d.sys_s;
		double cpb = cpu / (double)n, wall = (double)(d.t1_ns - d.t0_ns) / 1e9;
		if (!me->segs || cpb < g->best_cpb) {
			g->best_cpb = cpb;
			me->t0_ns = d.t0_ns;
			me->t1_ns = d.t1_ns;
			me->user_s = d.user_s;
			me->sys_s = d.sys_s;
			me->c = d.c;
			me->hs_s = d.hs_s;
			me->bytes = n;
		}
		if (!me->segs || cpb > g->worst_cpb)
			g->worst_cpb = cpb;
		if (!me->segs ||
		    wall / (double)n < me->fast_wall_s / (double)me->fast_bytes) {
			me->fast_wall_s = wall;
			me->fast_bytes = n;
		}
		me->segs++;
		me->all_cpu_s += cpu;
		me->all_wall_s += wall;
		me->all_bytes += n;
		me->spread = g->best_cpb > 0 ? g->worst_cpb / g->best_cpb : 1;
	}
	g->prev = cur;
	g->prev_pos = pos;
	g->open = reopen;
}

/* Header only: the kernel answers with the cipher, never the key. */
static int kernel_has(int fd, int dir)
{
	struct tls_crypto_info h = { 0 };
	socklen_t len = sizeof(h);
	struct counters keep = C; /* not part of what is measured */
	int r = getsockopt(fd, SOL_TLS, dir, &h, &len) == 0 &&
		h.cipher_type != 0;
	C = keep;
	return r;
}

static int shim_loaded(void)
{
	return dlsym(RTLD_DEFAULT, "ktls_shim_fd_info") != NULL;
}

static const struct cipher_map *find_cipher(const char *name)
{
	for (size_t i = 0; i < sizeof(CIPHERS) / sizeof(CIPHERS[0]); i++)
		if (!strcmp(CIPHERS[i].name, name))
			return &CIPHERS[i];
	return NULL;
}

/* ---- TLS setup ---------------------------------------------------------- */

static EVP_PKEY *g_key;
static X509 *g_cert;

static void make_cert(void)
{
	g_key = EVP_EC_gen("P-256");
	g_cert = X509_new();
	if (!g_key || !g_cert)
		fail("key generation");
	X509_set_version(g_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(g_cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(g_cert), 7 * 86400);
	X509_set_pubkey(g_cert, g_key);
	X509_NAME *n = X509_get_subject_name(g_cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1,
				   0);
	X509_set_issuer_name(g_cert, n);
	if (!X509_sign(g_cert, g_key, EVP_sha256()))
		fail("X509_sign");
}

static SSL_CTX *make_ctx(const struct opts *o, int server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
					  : TLS_client_method());
	if (!ctx)
		fail("SSL_CTX_new");
	int v = !strcmp(o->tls, "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, v);
	const struct cipher_map *cm = find_cipher(o->cipher);
	if (v == TLS1_3_VERSION ? !SSL_CTX_set_ciphersuites(ctx, cm->tls13)
				: !SSL_CTX_set_cipher_list(ctx, cm->tls12))
		fail("cipher %s", o->cipher);
	/* a: userspace for sure, whatever openssl.cnf says; d: OpenSSL's own
	 * kTLS; b/c: options untouched: the shim (preloaded) does it. */
	if (o->mode == 'a')
		SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
	if (o->mode == 'd')
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	if (server && (SSL_CTX_use_certificate(ctx, g_cert) != 1 ||
		       SSL_CTX_use_PrivateKey(ctx, g_key) != 1))
		fail("certificate");
	return ctx;
}

static void note_session(struct side *me, SSL *s, int fd)
{
	snprintf(me->version, sizeof(me->version), "%s", SSL_get_version(s));
	snprintf(me->suite, sizeof(me->suite), "%s",
		 SSL_CIPHER_get_name(SSL_get_current_cipher(s)));
	me->lib_tx = (int)BIO_get_ktls_send(SSL_get_wbio(s));
	me->lib_rx = (int)BIO_get_ktls_recv(SSL_get_rbio(s));
	me->kernel_tx = kernel_has(fd, TLS_TX);
	me->kernel_rx = kernel_has(fd, TLS_RX);
}

/* As servers do: without it, TLS 1.3's small handshake flights and the
 * close_notify wait out delayed ACKs (40 ms) behind Nagle. */
static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int connect_to(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof(*a)))
		fail("connect: %s", strerror(errno));
	nodelay(fd);
	return fd;
}

static int accept_one(int ls)
{
	int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		fail("accept: %s", strerror(errno));
	nodelay(fd);
	return fd;
}

static SSL *tls_start(SSL_CTX *ctx, int fd, int server)
{
	SSL *s = SSL_new(ctx);
	if (!s || !SSL_set_fd(s, fd))
		fail("SSL_new");
	long long t = now_ns();
	int r = server ? SSL_accept(s) : SSL_connect(s);
	if (r != 1)
		fail("%s: SSL_get_error=%d errno=%s",
		     server ? "SSL_accept" : "SSL_connect",
		     SSL_get_error(s, r), strerror(errno));
	g_hs_s += (double)(now_ns() - t) / 1e9;
	return s;
}

/* The whole close_notify exchange; errors after it are of no interest. */
static void tls_finish(SSL *s)
{
	char b[256];
	int r = SSL_shutdown(s);
	while (r == 0) {
		int n = SSL_read(s, b, sizeof(b));
		if (n <= 0)
			break;
	}
}

/* ---- bulk ---------------------------------------------------------------- */

static void write_all_fd(int fd, const unsigned char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail("write: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* pread is not interposed: counted here as the source-file reads. */
static void file_chunk(int ffd, unsigned char *b, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(ffd, b + got, n - got, off + (off_t)got);
		C.file_read++;
		if (r <= 0)
			fail("pread: %s", r ? strerror(errno) : "short file");
		C.file_bytes += (unsigned long long)r;
		got += (size_t)r;
	}
}

static void bulk_sender(const struct opts *o, int ls, struct side *me)
{
	int fd = accept_one(ls), ffd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (ffd < 0)
		fail("open %s: %s", o->file, strerror(errno));
	unsigned char *buf = malloc(o->size);
	if (!buf)
		fail("malloc");
	SSL_CTX *ctx = NULL;
	SSL *s = NULL;
	if (o->mode != 'e') {
		ctx = make_ctx(o, 1);
		s = tls_start(ctx, fd, 1);
		note_session(me, s, fd);
	}
	int use_sendfile = o->mode == 'c' && me->lib_tx;
	struct segs g = { 0 };
	unsigned long long sent = 0, total = o->warmup + o->bytes;
	unsigned long long seg = o->bytes / (unsigned long long)o->segments;
	/* The warm-up (same calls, untimed) fills TCG's translation cache,
	 * opens the TCP window and faults the buffers in. Then segments of
	 * seg bytes (the last one takes the rest and the close_notify). */
	while (sent < total) {
		unsigned long long stop = total;
		if (sent < o->warmup) {
			stop = o->warmup;
		} else {
			unsigned long long k = (sent - o->warmup) / seg;
			if (sent == o->warmup + k * seg &&
			    k < (unsigned long long)o->segments) {
				if (k == 0 && o->mark) {
					char x;
					if (read(g_sync[0], &x, 1) != 1)
						fail("warm-up sync: %s",
						     strerror(errno));
					mark_aligned();
				}
				if (k == 0)
					seg_start(&g, sent);
				else
					seg_close(&g, me, sent, 1);
			}
			if (k + 1 < (unsigned long long)o->segments)
				stop = o->warmup + (k + 1) * seg;
		}
		off_t off = (off_t)(sent % o->file_size);
		size_t n = o->size;
		if ((unsigned long long)n > stop - sent)
			n = (size_t)(stop - sent);
		if ((unsigned long long)off + n > o->file_size)
			n = (size_t)(o->file_size - (unsigned long long)off);
		if (use_sendfile) {
			ossl_ssize_t w = SSL_sendfile(s, ffd, off, n, 0);
			if (w <= 0)
				fail("SSL_sendfile: %s", strerror(errno));
			sent += (unsigned long long)w;
			continue;
		}
		file_chunk(ffd, buf, n, off);
		if (!s) {
			write_all_fd(fd, buf, n);
		} else {
			size_t w = 0;
			if (!SSL_write_ex(s, buf, n, &w) || w != n)
				fail("SSL_write_ex: SSL_get_error=%d errno=%s",
				     SSL_get_error(s, 0), strerror(errno));
		}
		sent += n;
	}
	if (s) {
		if (SSL_shutdown(s) < 0)
			fail("SSL_shutdown");
	} else {
		shutdown(fd, SHUT_WR);
	}
	seg_close(&g, me, sent, 0);
	me->sendfile_used = use_sendfile;
	/* Wait for the receiver's goodbye: it has everything then. */
	if (s) {
		tls_finish(s);
		SSL_free(s);
		SSL_CTX_free(ctx);
	} else {
		char x[64];
		while (read(fd, x, sizeof(x)) > 0)
			;
	}
	close(fd);
	close(ffd);
	free(buf);
	me->ok = 1;
}

/* Checks received bytes against the file: every 4 KiB one 8-byte sample,
 * or everything with --verify. */
static void check_bytes(const struct opts *o, const unsigned char *map,
			const unsigned char *b, size_t n,
			unsigned long long pos, struct side *me)
{
	while (n) {
		unsigned long long off = pos % o->file_size;
		size_t k = n;
		if (off + k > o->file_size)
			k = (size_t)(o->file_size - off);
		if (o->verify) {
			if (memcmp(map + off, b, k))
				fail("received data differ near byte %llu", pos);
			me->verified += k;
		} else {
			for (size_t i = (size_t)((4096 - off % 4096) % 4096);
			     i < k; i += 4096) {
				size_t m = k - i < 8 ? k - i : 8;
				if (memcmp(map + off + i, b + i, m))
					fail("received data differ at byte %llu",
					     pos + i);
				me->verified += m;
			}
		}
		b += k;
		n -= k;
		pos += k;
	}
}

static void bulk_receiver(const struct opts *o, const struct sockaddr_in *sa,
			  struct side *me)
{
	int ffd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (ffd < 0)
		fail("open %s: %s", o->file, strerror(errno));
	const unsigned char *map = mmap(NULL, o->file_size, PROT_READ,
					MAP_SHARED, ffd, 0);
	if (map == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	unsigned char *buf = malloc(o->size);
	if (!buf)
		fail("malloc");
	int fd = connect_to(sa);
	SSL_CTX *ctx = NULL;
	SSL *s = NULL;
	if (o->mode != 'e') {
		ctx = make_ctx(o, 0);
		s = tls_start(ctx, fd, 0);
	}
	struct segs g = { 0 };
	unsigned long long got = 0, next = o->warmup;
	unsigned long long seg = o->bytes / (unsigned long long)o->segments;
	int k = 0;
	for (;;) {
		size_t n = 0;
		/* A segment starts with the first read at or after its first
		 * byte (a read straddling the boundary counts before it). */
		if (k < o->segments && got >= next) {
			if (k == 0 && o->mark && write(g_sync[1], "", 1) != 1)
				fail("warm-up sync: %s", strerror(errno));
			if (k == 0)
				seg_start(&g, got);
			else
				seg_close(&g, me, got, 1);
			k++;
			next = o->warmup + (unsigned long long)k * seg;
		}
		if (s) {
			if (!SSL_read_ex(s, buf, o->size, &n)) {
				int e = SSL_get_error(s, 0);
				if (e == SSL_ERROR_ZERO_RETURN)
					break;
				fail("SSL_read_ex: SSL_get_error=%d errno=%s",
				     e, strerror(errno));
			}
		} else {
			ssize_t r = read(fd, buf, o->size);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				fail("read: %s", strerror(errno));
			if (r == 0)
				break;
			n = (size_t)r;
		}
		check_bytes(o, map, buf, n, got, me);
		got += n;
	}
	if (o->mark)
		tcg_mark();
	seg_close(&g, me, got, 0);
	if (s) {
		/* Session state read after the transfer: TLS 1.3 sessions
		 * only settle once the tickets are in. */
		note_session(me, s, fd);
		SSL_shutdown(s);
		SSL_free(s);
		SSL_CTX_free(ctx);
	}
	close(fd);
	munmap((void *)map, o->file_size);
	close(ffd);
	free(buf);
	if (got != o->warmup + o->bytes)
		fail("received %llu of %llu bytes", got, o->warmup + o->bytes);
	me->ok = 1;
}

/* ---- connections ------------------------------------------------------- */

/* Connection i (counted from the first timed one) in segments of
 * conns/segments: a new segment starts at each multiple. */
static void conn_seg(const struct opts *o, struct segs *g, struct side *me,
		     int i)
{
	int per = o->conns / o->segments > 0 ? o->conns / o->segments : 1;
	if (i < 0 || i % per || i / per >= o->segments)
		return;
	if (i == 0)
		seg_start(g, 0);
	else
		seg_close(g, me, (unsigned long long)i, 1);
}

/* --mark for conn: the server tells the client when it is done with the
 * untimed connections and again with the timed ones (it has closed its
 * side); the client executes the marker each time it hears so: the window
 * holds the timed connections' work on both sides, and both sides are
 * idle at its edges. Outside the segments: no counted call. */
static void mark_sync_tell(const struct opts *o)
{
	if (o->mark && write(g_sync[1], "", 1) != 1)
		fail("conn sync: %s", strerror(errno));
}

static void mark_sync_wait(const struct opts *o, int start)
{
	char x;
	if (!o->mark)
		return;
	if (read(g_sync[0], &x, 1) != 1)
		fail("conn sync: %s", strerror(errno));
	if (start)
		mark_aligned();
	else
		tcg_mark();
}

static void conn_server(const struct opts *o, int ls, struct side *me)
{
	unsigned char *resp = calloc(1, o->resp ? o->resp : 1);
	SSL_CTX *ctx = o->mode != 'e' ? make_ctx(o, 1) : NULL;
	struct segs g = { 0 };
	for (int i = 0; i < o->warm_conns + o->conns; i++) {
		if (i == o->warm_conns)
			mark_sync_tell(o);
		conn_seg(o, &g, me, i - o->warm_conns);
		int fd = accept_one(ls);
		if (!ctx) {
			write_all_fd(fd, resp, o->resp);
			shutdown(fd, SHUT_WR);
			char x[64];
			while (read(fd, x, sizeof(x)) > 0)
				;
			close(fd);
			continue;
		}
		SSL *s = tls_start(ctx, fd, 1);
		if (i == o->warm_conns)
			note_session(me, s, fd);
		size_t w = 0;
		if (o->resp && (!SSL_write_ex(s, resp, o->resp, &w) ||
				w != o->resp))
			fail("SSL_write_ex (conn %d)", i);
		tls_finish(s);
		SSL_free(s);
		close(fd);
	}
	seg_close(&g, me, (unsigned long long)o->conns, 0);
	mark_sync_tell(o);
	me->conns = o->conns;
	SSL_CTX_free(ctx);
	free(resp);
	me->ok = 1;
}

static void conn_client(const struct opts *o, const struct sockaddr_in *sa,
			struct side *me)
{
	unsigned char buf[16384];
	SSL_CTX *ctx = o->mode != 'e' ? make_ctx(o, 0) : NULL;
	struct segs g = { 0 };
	for (int i = 0; i < o->warm_conns + o->conns; i++) {
		if (i == o->warm_conns)
			mark_sync_wait(o, 1);
		conn_seg(o, &g, me, i - o->warm_conns);
		int fd = connect_to(sa);
		unsigned long long got = 0;
		if (!ctx) {
			ssize_t r;
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				got += (unsigned long long)r;
			close(fd);
		} else {
			SSL *s = tls_start(ctx, fd, 0);
			size_t n;
			while (SSL_read_ex(s, buf, sizeof(buf), &n))
				got += n;
			if (SSL_get_error(s, 0) != SSL_ERROR_ZERO_RETURN)
				fail("SSL_read_ex (conn %d): %d", i,
				     SSL_get_error(s, 0));
			if (i == o->warm_conns)
				note_session(me, s, fd);
			SSL_shutdown(s);
			SSL_free(s);
			close(fd);
		}
		if (got != o->resp)
			fail("conn %d: received %llu of %llu bytes", i, got,
			     o->resp);
	}
	seg_close(&g, me, (unsigned long long)o->conns, 0);
	mark_sync_wait(o, 0);
	me->conns = o->conns;
	SSL_CTX_free(ctx);
	me->ok = 1;
}

/* ---- the two processes ------------------------------------------------- */

struct child {
	pid_t pid;
	int rfd;
	struct side res;
};

static void spawn(struct child *ch, const struct opts *o, int ls,
		  const struct sockaddr_in *sa, int sender, int bulk)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		fail("pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		static struct side me;
		memset(&me, 0, sizeof(me));
		me.pid = (int)getpid();
		g_me = &me;
		g_pipe = p[1];
		close(p[0]);
		if (o->timeout)
			alarm((unsigned)o->timeout);
		if (sender) {
			if (bulk)
				bulk_sender(o, ls, &me);
			else
				conn_server(o, ls, &me);
		} else {
			close(ls);
			if (bulk)
				bulk_receiver(o, sa, &me);
			else
				conn_client(o, sa, &me);
		}
		report_and_exit(0);
	}
	close(p[1]);
	ch->pid = pid;
	ch->rfd = p[0];
}

static int collect(struct child *ch, const char *who)
{
	size_t got = 0;
	char *p = (char *)&ch->res;
	while (got < sizeof(ch->res)) {
		ssize_t r = read(ch->rfd, p + got, sizeof(ch->res) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(ch->rfd);
	int st = 0;
	waitpid(ch->pid, &st, 0);
	if (got != sizeof(ch->res) || !ch->res.ok) {
		fprintf(stderr, "ktls_bench: %s failed: %s (status %d%s)\n",
			who, got == sizeof(ch->res) ? ch->res.err : "no result",
			WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			WIFSIGNALED(st) ? ", killed by a signal" : "");
		return -1;
	}
	return 0;
}

static void print_side(const char *p, const struct side *s)
{
	const struct counters *c = &s->c;
	printf(" %s_pid=%d %s_wall_s=%.6f %s_user_s=%.6f %s_sys_s=%.6f"
	       " %s_bytes=%llu %s_calls=%llu"
	       " %s_read=%llu %s_write=%llu %s_recvmsg=%llu %s_sendmsg=%llu"
	       " %s_sendfile=%llu %s_file_read=%llu %s_other_calls=%llu"
	       " %s_copy_in_bytes=%llu %s_copy_out_bytes=%llu"
	       " %s_file_bytes=%llu %s_sendfile_bytes=%llu"
	       " %s_lib_tx=%d %s_lib_rx=%d %s_kernel_tx=%d %s_kernel_rx=%d"
	       " %s_hs_s=%.6f %s_verified=%llu %s_segs=%d %s_spread=%.4f"
	       " %s_all_cpu_s=%.6f %s_all_wall_s=%.6f %s_all_bytes=%llu"
	       " %s_fast_wall_s=%.6f %s_fast_bytes=%llu",
	       p, s->pid, p, (double)(s->t1_ns - s->t0_ns) / 1e9, p,
	       s->user_s, p, s->sys_s, p, s->bytes, p, calls_total(c), p,
	       c->read, p, c->write, p, c->recvmsg, p, c->sendmsg, p,
	       c->sendfile, p, c->file_read, p,
	       c->readv + c->writev + c->recv + c->send + c->poll +
		       c->setsockopt + c->getsockopt,
	       p, c->in_bytes, p, c->out_bytes, p, c->file_bytes, p,
	       c->sendfile_bytes, p, s->lib_tx, p, s->lib_rx, p,
	       s->kernel_tx, p, s->kernel_rx, p, s->hs_s, p, s->verified, p,
	       s->segs, p, s->spread, p, s->all_cpu_s, p, s->all_wall_s, p,
	       s->all_bytes, p, s->fast_wall_s, p, s->fast_bytes);
}

/* 8 MiB (or --file-size) of pseudo-random bytes, read once so that the
 * page cache holds them: "a cached file". */
static char g_tmpfile[4096];

static void make_file(struct opts *o)
{
	if (o->file) {
		struct stat st;
		if (stat(o->file, &st) || st.st_size <= 0)
			fail("--file %s: missing or empty", o->file);
		o->file_size = (unsigned long long)st.st_size;
		return;
	}
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(g_tmpfile, sizeof(g_tmpfile), "%s/ktls_bench.XXXXXX", dir);
	int fd = mkstemp(g_tmpfile);
	if (fd < 0)
		fail("mkstemp %s: %s", g_tmpfile, strerror(errno));
	unsigned char *b = malloc(1 << 16);
	uint64_t st = 0x9e3779b97f4a7c15ULL;
	for (unsigned long long done = 0; done < o->file_size;) {
		size_t n = 1 << 16;
		if (n > o->file_size - done)
			n = (size_t)(o->file_size - done);
		for (size_t i = 0; i < n; i += 8) {
			st ^= st >> 12;
			st ^= st << 25;
			st ^= st >> 27;
			uint64_t v = st * 0x2545F4914F6CDD1DULL;
			memcpy(b + i, &v, n - i < 8 ? n - i : 8);
		}
		write_all_fd(fd, b, n);
		done += n;
	}
	free(b);
	close(fd);
	o->file = g_tmpfile;
}

static int probe(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &al)) {
		printf("ktls=0 error=socket:%s\n", strerror(errno));
		return 2;
	}
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a))) {
		printf("ktls=0 error=connect:%s\n", strerror(errno));
		return 2;
	}
	int s = accept(ls, NULL, NULL);
	int ulp = setsockopt(c, SOL_TCP, TCP_ULP, "tls", 4) == 0;
	int e = errno;
	int tx = 0;
	if (ulp) { /* can the kernel also take a key (crypto modules)? */
		struct tls12_crypto_info_aes_gcm_128 ci = { 0 };
		ci.info.version = TLS_1_2_VERSION;
		ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		tx = setsockopt(c, SOL_TLS, TLS_TX, &ci, sizeof(ci)) == 0;
	}
	printf("ktls=%d tx_aes_128_gcm=%d%s%s\n", ulp, tx,
	       ulp ? "" : " error=TCP_ULP:", ulp ? "" : strerror(e));
	close(s);
	close(c);
	close(ls);
	return ulp ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ktls_bench probe\n"
		"       ktls_bench bulk --mode a|b|c|d|e --tls 1.2|1.3 "
		"--cipher C --size W --bytes N [--warmup N] [--segments S] "
		"[--file F] [--file-size N] [--verify] [--mark]\n"
		"       ktls_bench conn --mode a|b|d|e --tls 1.2|1.3 "
		"--cipher C --conns K [--resp N] [--warm-conns J] [--mark]\n"
		"ciphers: aes-128-gcm aes-256-gcm chacha20-poly1305\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *cmd = argv[1];
	if (!strcmp(cmd, "probe"))
		return probe();
	int bulk = !strcmp(cmd, "bulk");
	if (!bulk && strcmp(cmd, "conn"))
		usage();
	struct opts o = { .mode = 'a', .tls = "1.3", .cipher = "aes-128-gcm",
			  .size = 16384, .bytes = 64ULL << 20,
			  .file_size = 8ULL << 20, .conns = 100, .resp = 1024,
			  .segments = 4,
			  .timeout = 1200 };
	static const struct option lo[] = {
		{ "mode", 1, 0, 'm' },	    { "tls", 1, 0, 't' },
		{ "cipher", 1, 0, 'C' },    { "size", 1, 0, 'w' },
		{ "bytes", 1, 0, 'n' },	    { "file", 1, 0, 'f' },
		{ "file-size", 1, 0, 'F' }, { "verify", 0, 0, 'V' },
		{ "conns", 1, 0, 'k' },	    { "resp", 1, 0, 'r' },
		{ "timeout", 1, 0, 'T' },   { "warmup", 1, 0, 'W' },
		{ "warm-conns", 1, 0, 'K' }, { "segments", 1, 0, 'G' },
		{ "mark", 0, 0, 'M' },
		{ 0, 0, 0, 0 },
	};
	int c, warm_set = 0, warmc_set = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o.mode = optarg[0]; break;
		case 't': o.tls = optarg; break;
		case 'C': o.cipher = optarg; break;
		case 'w': o.size = strtoull(optarg, NULL, 0); break;
		case 'n': o.bytes = strtoull(optarg, NULL, 0); break;
		case 'f': o.file = optarg; break;
		case 'F': o.file_size = strtoull(optarg, NULL, 0); break;
		case 'V': o.verify = 1; break;
		case 'M': o.mark = 1; break;
		case 'k': o.conns = atoi(optarg); break;
		case 'r': o.resp = strtoull(optarg, NULL, 0); break;
		case 'T': o.timeout = atoi(optarg); break;
		case 'K': o.warm_conns = atoi(optarg); warmc_set = 1; break;
		case 'G': o.segments = atoi(optarg); break;
		case 'W': o.warmup = strtoull(optarg, NULL, 0); warm_set = 1;
			  break;
		default: usage();
		}
	}
	if (!strchr("abcde", o.mode) || !o.mode || (!bulk && o.mode == 'c') ||
	    (strcmp(o.tls, "1.2") && strcmp(o.tls, "1.3")) ||
	    !find_cipher(o.cipher) || o.size == 0 || o.bytes == 0 ||
	    o.file_size == 0 || o.conns < 1 || o.segments < 1)
		usage();
	/* Whole writes per segment, at least one. */
	if (bulk) {
		unsigned long long seg = o.bytes / (unsigned long long)o.segments;
		seg -= seg % o.size;
		if (seg < o.size)
			seg = o.size;
		o.bytes = seg * (unsigned long long)o.segments;
	}
	/* The mode says who turns kTLS on; make sure nobody else does. */
	int shim = shim_loaded();
	if ((o.mode == 'b' || o.mode == 'c') && !shim)
		fail("mode %c needs LD_PRELOAD=libktls-shim.so", o.mode);
	if (strchr("ade", o.mode) && shim)
		fail("mode %c must run without the shim preloaded", o.mode);
	signal(SIGPIPE, SIG_IGN);

	/* Default warm-up: a quarter of the payload, at most 4 MiB, in whole
	 * writes. */
	if (!warm_set) {
		o.warmup = o.bytes / 4 < (4ULL << 20) ? o.bytes / 4 : 4ULL << 20;
		o.warmup -= o.warmup % o.size;
	}
	if (!bulk)
		o.warmup = 0;
	if (!warmc_set) /* untimed first connections, as the bulk warm-up */
		o.warm_conns = o.conns / 10 > 1 ? o.conns / 10 : 1;
	if (bulk || o.warm_conns < 0)
		o.warm_conns = 0;
	if (bulk && o.file_size > o.bytes + o.warmup && !o.file)
		o.file_size = o.bytes + o.warmup;
	if (bulk)
		make_file(&o);
	if (o.mode != 'e')
		make_cert();

	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(sa);
	int one = 1;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(ls, 128) || getsockname(ls, (struct sockaddr *)&sa, &al))
		fail("listen: %s", strerror(errno));

	if (o.mark && pipe2(g_sync, O_CLOEXEC))
		fail("pipe: %s", strerror(errno));
	struct child snd, rcv;
	spawn(&snd, &o, ls, &sa, 1, bulk);
	spawn(&rcv, &o, ls, &sa, 0, bulk);
	close(ls);
	int bad = collect(&rcv, bulk ? "receiver" : "client");
	if (bad) /* a dead receiver would leave the sender blocked */
		kill(snd.pid, SIGTERM);
	bad |= collect(&snd, bulk ? "sender" : "server");
	if (g_tmpfile[0])
		unlink(g_tmpfile);
	if (bad)
		return 1;

	const struct side *S = &snd.res, *R = &rcv.res;
	/* wall_s: the receiver's (client's) fastest segment, which moved
	 * thr_bytes bytes (conn: made thr_bytes connections). The per-side
	 * figures are each side's least-CPU segment, of s_bytes / r_bytes
	 * bytes (conn: connections). */
	printf("kind=%s mode=%c tls=%s cipher=%s size=%zu bytes=%llu "
	       "warmup=%llu conns=%d shim=%d version=%s suite=%s "
	       "sendfile_used=%d segments=%d wall_s=%.6f thr_bytes=%llu",
	       bulk ? "bulk" : "conn", o.mode, o.tls, o.cipher,
	       bulk ? o.size : (size_t)o.resp,
	       bulk ? o.bytes : o.resp * (unsigned long long)o.conns,
	       o.warmup, bulk ? 1 : o.conns, shim,
	       o.mode == 'e' ? "TCP" : S->version,
	       o.mode == 'e' ? "-" : S->suite, S->sendfile_used,
	       o.segments, R->fast_wall_s, R->fast_bytes);
	print_side("s", S);
	print_side("r", R);
	printf("\n");
	return 0;
}
