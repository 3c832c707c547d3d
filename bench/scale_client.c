/*
 * scale_client: the shimmed side of bench/scale-bench. Opens N concurrent
 * TLS connections to an unshimmed `tls_load --role server --mode epoll`
 * from one epoll loop, in stages (e.g. 10, 1000, 10000 open at once), and
 * holds every connection open. At each stage it
 *   - probes per-call cost on the stage's PROBE newest connections: W
 *     SSL_write_ex() of 1 KiB, then SSL_read_ex() in 1 KiB steps of the
 *     bytes the server sent on each; under callgrind each part is its own
 *     dump ("n=<open> write" / "read"), collection on only around it;
 *   - prints one line, then waits for a line on stdin, so the driver can
 *     read /proc/PID and the eBPF maps while all N are open:
 *       STAGE open=N pid=P resumed=R kernel_tx=T kernel_rx=X heap=B
 *             writes=W reads=K
 * After the last stage it reads every connection to the server's
 * close_notify, sends its own (line "DRAINED ...", wait again), closes
 * all, and prints one line per connection for the driver to check both
 * ends' hashes against the server's:
 *   conn=I port=P sent=N sent_sha256=H recv=M recv_sha256=H
 *
 * Handshakes are what TCG makes slow (public-key operations), so every
 * connection after a first full one resumes its session (TLS 1.2: an
 * abbreviated handshake, no ECDHE; TLS 1.3: PSK with ECDHE, X25519).
 *
 *   scale_client --port P --tls 1.2|1.3 --stages 10,1000,10000
 *                [--probe 10] [--writes 100] [--inflight 128]
 *                [--data 4096]   (what the server sends on each: one record)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else /* no valgrind headers: no callgrind figures, the rest works */
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TLS_TX
#define TLS_TX 1
#define TLS_RX 2
#endif

#define WSIZE 1024 /* bytes per probed SSL_write / SSL_read */
#define MAXPROBE 16

struct conn {
	int fd, idx, port, done;
	SSL *ssl;
	EVP_MD_CTX *hs, *hr;
	unsigned long long sent, recvd;
};

static struct {
	int port, version, probe, writes, inflight, nstages, data;
	int stages[16];
} o = { .probe = 10, .writes = 100, .inflight = 128, .data = 4096 };

static SSL_CTX *ctx;
static SSL_SESSION *resume;
static struct conn *conns;
static int ep, nopen, nshaken;

static void die(const char *what)
{
	fprintf(stderr, "scale_client: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(2);
}

static int new_session(SSL *s, SSL_SESSION *sess)
{
	(void)s;
	if (!resume) {
		resume = sess;
		return 1; /* we keep the reference */
	}
	return 0;
}

static void make_ctx(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, o.version);
	SSL_CTX_set_max_proto_version(ctx, o.version);
	if (!(o.version == TLS1_3_VERSION
		      ? SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256")
		      : SSL_CTX_set_cipher_list(
				ctx, "ECDHE-ECDSA-AES128-GCM-SHA256")))
		die("cipher");
	/* The sessions to resume come from the callback (TLS 1.3 sends
	 * them after the handshake). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
						    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
}

/* A connected, non-blocking socket (loopback connects at once, or after
 * one poll: the listener's backlog holds --inflight). */
static int dial(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o.port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket (raise the open-file limit?)");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		struct pollfd p = { fd, POLLOUT, 0 };
		int err = 0;
		socklen_t el = sizeof(err);
		if (errno != EINPROGRESS || poll(&p, 1, 60000) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			errno = err ? err : errno;
			die("connect");
		}
	}
	return fd;
}

static void conn_open(struct conn *c, int idx)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	c->idx = idx;
	c->fd = dial();
	if (getsockname(c->fd, (struct sockaddr *)&a, &al))
		die("getsockname");
	c->port = ntohs(a.sin_port);
	c->hs = EVP_MD_CTX_new();
	c->hr = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c->hs, EVP_sha256(), NULL);
	EVP_DigestInit_ex(c->hr, EVP_sha256(), NULL);
	/* After connect: OpenSSL's kTLS (and the shim) attach the ULP at
	 * SSL_set_fd, which needs an established socket. */
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		die("SSL_new");
	if (resume) {
		/* A copy each: a TLS 1.3 resumption marks the session it used
		 * as not resumable again (measured: only the first resumed). */
		SSL_SESSION *d = SSL_SESSION_dup(resume);
		if (!d || !SSL_set_session(c->ssl, d))
			die("SSL_set_session");
		SSL_SESSION_free(d);
	}
	SSL_set_connect_state(c->ssl);
}

static void watch(struct conn *c, int op, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(ep, op, c->fd, &e))
		die("epoll_ctl");
}

/* One handshake step; 1 when done. */
static int shake(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return 1;
	int e = SSL_get_error(c->ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
		fprintf(stderr, "scale_client: conn %d: handshake failed "
			"(SSL_get_error %d)\n", c->idx, e);
		ERR_print_errors_fp(stderr);
		exit(3);
	}
	watch(c, EPOLL_CTL_MOD, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
	return 0;
}

/* Opens connections up to `upto`, at most --inflight handshaking, and
 * returns when all have done their handshake (then out of epoll: an open
 * connection costs the loop nothing until it is probed or drained). */
static void open_upto(int upto)
{
	while (nshaken < upto) {
		while (nopen < upto && nopen - nshaken < o.inflight) {
			struct conn *c = &conns[nopen];
			conn_open(c, nopen++);
			watch(c, EPOLL_CTL_ADD, EPOLLOUT);
			if (shake(c)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				nshaken++;
			}
		}
		/* A handshake can finish in its first call (the server's
		 * answer already there: seen under valgrind). */
		if (nshaken >= upto)
			break;
		struct epoll_event ev[64];
		int n = epoll_wait(ep, ev, 64, 120000);
		if (n <= 0) {
			fprintf(stderr, "scale_client: %d open, %d handshakes "
				"done, %d wanted (n=%d errno=%d)\n", nopen,
				nshaken, upto, n, errno);
			for (int i = nshaken > 8 ? nshaken - 8 : 0; i < nopen;
			     i++)
				fprintf(stderr, "  conn %d: %s\n", i,
					SSL_state_string_long(conns[i].ssl));
			die("handshakes stalled");
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (shake(c)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				nshaken++;
			}
		}
	}
}

static void account(EVP_MD_CTX *h, unsigned long long *n, const void *b,
		    size_t len)
{
	EVP_DigestUpdate(h, b, len);
	*n += len;
}

/* A blocking-style read of one record's worth: waits for the fd. 0 at
 * close_notify. Hashes what it read unless told not to (the probe hashes
 * after its window, so sha256 is not in the per-call count). */
static size_t read_some(struct conn *c, void *buf, size_t len, int hash)
{
	for (;;) {
		size_t n = 0;
		int r = SSL_read_ex(c->ssl, buf, len, &n);
		if (r > 0) {
			if (hash)
				account(c->hr, &c->recvd, buf, n);
			return n;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		struct pollfd p = { c->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT
								     : POLLIN, 0 };
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    poll(&p, 1, 120000) != 1) {
			fprintf(stderr, "scale_client: conn %d: read failed "
				"(SSL_get_error %d)\n", c->idx, e);
			ERR_print_errors_fp(stderr);
			exit(3);
		}
	}
}

static void write_all(struct conn *c, const void *buf, size_t len, int hash)
{
	size_t w = 0;
	while (SSL_write_ex(c->ssl, buf, len, &w) != 1) {
		int e = SSL_get_error(c->ssl, 0);
		struct pollfd p = { c->fd, POLLOUT, 0 };
		if (e != SSL_ERROR_WANT_WRITE || poll(&p, 1, 120000) != 1)
			die("SSL_write_ex");
	}
	if (hash)
		account(c->hs, &c->sent, buf, len);
}

/* The first connection: a full handshake, then everything the server
 * sends (TLS 1.3's tickets come with it), so its session can be resumed. */
static void seed(void)
{
	static struct conn c0;
	uint8_t buf[16384];
	conn_open(&c0, -1);
	watch(&c0, EPOLL_CTL_ADD, EPOLLOUT);
	while (!shake(&c0)) {
		struct epoll_event ev;
		if (epoll_wait(ep, &ev, 1, 120000) != 1)
			die("first handshake");
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c0.fd, NULL);
	while (read_some(&c0, buf, sizeof(buf), 1))
		;
	if (!resume)
		die("no session to resume");
	SSL_shutdown(c0.ssl);
	SSL_free(c0.ssl);
	close(c0.fd);
	EVP_MD_CTX_free(c0.hs);
	EVP_MD_CTX_free(c0.hr);
}

static int in_kernel(int fd, int dir)
{
	unsigned char hdr[4] = { 0 }; /* version, cipher_type: no key */
	socklen_t len = sizeof(hdr);
	return getsockopt(fd, SOL_TLS, dir, hdr, &len) == 0 &&
	       (hdr[2] | hdr[3]) != 0;
}

/* Per-call cost on conns [from, to): writes, then the server's --data
 * bytes on each in WSIZE reads (one record: the first read of each takes
 * it from the kernel, the rest from OpenSSL's buffer). The callgrind
 * requests are no-ops outside valgrind. */
static void probe(int from, int to, int open, int *reads)
{
	static uint8_t in[MAXPROBE][16384];
	uint8_t out[WSIZE];
	char name[64];
	memset(out, 'p', sizeof(out));
	/* Every probed connection's bytes in first, so the count does not
	 * depend on timing: readable, then a pause for the rest of the
	 * record (the server is idle otherwise). */
	for (int i = from; i < to; i++) {
		struct pollfd p = { conns[i].fd, POLLIN, 0 };
		if (poll(&p, 1, 120000) != 1)
			die("probe: no data from the server");
	}
	usleep(500000);
	write_all(&conns[from], out, sizeof(out), 1); /* warm: lazy binding */
	CALLGRIND_START_INSTRUMENTATION;
	CALLGRIND_TOGGLE_COLLECT;
	for (int k = 0; k < o.writes; k++)
		write_all(&conns[from + k % (to - from)], out, sizeof(out), 0);
	CALLGRIND_TOGGLE_COLLECT;
	snprintf(name, sizeof(name), "n=%d write", open);
	CALLGRIND_DUMP_STATS_AT(name);
	*reads = 0;
	CALLGRIND_TOGGLE_COLLECT;
	for (int i = from; i < to; i++)
		for (int got = 0, n = 1; got < o.data && n; ++*reads)
			got += n = (int)read_some(&conns[i], in[i - from] + got,
						  o.data - got < WSIZE
							  ? (size_t)(o.data - got)
							  : WSIZE, 0);
	CALLGRIND_TOGGLE_COLLECT;
	snprintf(name, sizeof(name), "n=%d read", open);
	CALLGRIND_DUMP_STATS_AT(name);
	CALLGRIND_STOP_INSTRUMENTATION;
	for (int k = 0; k < o.writes; k++) {
		struct conn *c = &conns[from + k % (to - from)];
		account(c->hs, &c->sent, out, sizeof(out));
	}
	for (int i = from; i < to; i++)
		account(conns[i].hr, &conns[i].recvd, in[i - from],
			(size_t)o.data);
}

static void wait_go(void)
{
	char line[64];
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(5); /* the driver went away */
}

static void report_stage(const char *what, int reads)
{
	int tx = 0, rx = 0, reused = 0;
	for (int i = 0; i < nopen; i++) {
		tx += in_kernel(conns[i].fd, TLS_TX);
		rx += in_kernel(conns[i].fd, TLS_RX);
		reused += SSL_session_reused(conns[i].ssl);
	}
	struct mallinfo2 m = mallinfo2();
	printf("%s open=%d pid=%d resumed=%d kernel_tx=%d kernel_rx=%d "
	       "heap=%zu writes=%d reads=%d\n", what, nopen, (int)getpid(),
	       reused, tx, rx, m.uordblks + m.hblkhd, o.writes, reads);
	wait_go();
}

/* Reads every connection to close_notify (all at once, from epoll), then
 * sends its own close_notify on each. */
static void drain(void)
{
	uint8_t buf[16384];
	int left = 0;
	for (int i = 0; i < nopen; i++)
		if (!conns[i].done) {
			watch(&conns[i], EPOLL_CTL_ADD, EPOLLIN);
			left++;
		}
	while (left) {
		struct epoll_event ev[64];
		int n = epoll_wait(ep, ev, 64, 120000);
		if (n <= 0)
			die("drain stalled");
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			size_t got = 0;
			int r;
			while ((r = SSL_read_ex(c->ssl, buf, sizeof(buf), &got)) > 0) {
				EVP_DigestUpdate(c->hr, buf, got);
				c->recvd += got;
			}
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				c->done = 1;
				left--;
			} else if (e != SSL_ERROR_WANT_READ) {
				fprintf(stderr, "scale_client: conn %d: drain "
					"failed (SSL_get_error %d)\n", c->idx, e);
				exit(3);
			}
		}
	}
	for (int i = 0; i < nopen; i++)
		if (SSL_shutdown(conns[i].ssl) < 0)
			die("SSL_shutdown");
}

static void close_all(void)
{
	for (int i = 0; i < nopen; i++) {
		struct conn *c = &conns[i];
		unsigned char d[32];
		unsigned dl;
		char sh[65], rh[65];
		EVP_DigestFinal_ex(c->hs, d, &dl);
		for (unsigned k = 0; k < dl; k++)
			sprintf(sh + 2 * k, "%02x", d[k]);
		EVP_DigestFinal_ex(c->hr, d, &dl);
		for (unsigned k = 0; k < dl; k++)
			sprintf(rh + 2 * k, "%02x", d[k]);
		printf("conn=%d port=%d sent=%llu sent_sha256=%s recv=%llu "
		       "recv_sha256=%s\n", c->idx, c->port, c->sent, sh,
		       c->recvd, rh);
		SSL_free(c->ssl);
		close(c->fd);
		EVP_MD_CTX_free(c->hs);
		EVP_MD_CTX_free(c->hr);
	}
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", 1, 0, 'p' },	 { "tls", 1, 0, 't' },
		{ "stages", 1, 0, 's' }, { "probe", 1, 0, 'P' },
		{ "writes", 1, 0, 'w' }, { "inflight", 1, 0, 'i' },
		{ "data", 1, 0, 'd' },
		{ 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'p': o.port = atoi(optarg); break;
		case 't':
			o.version = strcmp(optarg, "1.3") == 0 ? TLS1_3_VERSION
			    : strcmp(optarg, "1.2") == 0 ? TLS1_2_VERSION : 0;
			break;
		case 's':
			for (char *t = strtok(optarg, ","); t && o.nstages < 16;
			     t = strtok(NULL, ","))
				o.stages[o.nstages++] = atoi(t);
			break;
		case 'P': o.probe = atoi(optarg); break;
		case 'w': o.writes = atoi(optarg); break;
		case 'i': o.inflight = atoi(optarg); break;
		case 'd': o.data = atoi(optarg); break;
		default: exit(2);
		}
	}
	for (int i = 0; i < o.nstages; i++)
		if (o.stages[i] < o.probe ||
		    (i && o.stages[i] <= o.stages[i - 1]))
			o.nstages = 0;
	if (!o.port || !o.version || !o.nstages || o.probe < 1 ||
	    o.writes < 1 || o.inflight < 1 || o.data < 1 || o.probe > MAXPROBE ||
	    o.data > 16384) {
		fprintf(stderr, "scale_client: bad arguments: --port, --tls "
			"1.2|1.3 and rising --stages (each >= --probe) needed\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	int n = o.stages[o.nstages - 1];
	/* The soft limit up to the hard one, as servers do; the hard one is
	 * the driver's (and the shim sizes its fd table from it at start). */
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = r.rlim_max;
	setrlimit(RLIMIT_NOFILE, &r);
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < (rlim_t)n + 64) {
		fprintf(stderr, "scale_client: open-file limit %llu < %d "
			"connections + 64: raise it (ulimit -Hn)\n",
			(unsigned long long)r.rlim_max, n);
		return 2;
	}
	conns = calloc((size_t)n, sizeof(*conns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0)
		die("start");
	make_ctx();
	seed();
	for (int s = 0; s < o.nstages; s++) {
		int reads;
		open_upto(o.stages[s]);
		probe(o.stages[s] - o.probe, o.stages[s], o.stages[s], &reads);
		report_stage("STAGE", reads);
	}
	drain();
	report_stage("DRAINED", 0);
	close_all();
	printf("total conns=%d\n", nopen);
	return 0;
}
