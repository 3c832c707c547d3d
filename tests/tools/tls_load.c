/*
 * tls_load: many concurrent OpenSSL connections on non-blocking sockets,
 * driven either by one thread per connection (poll) or by one epoll loop.
 * The load, soak and fork tests run it with the shim preloaded on one side
 * and without it on the other, so the peer is a real, unshimmed OpenSSL.
 *
 * Each side sends a byte count drawn from [--min, --max] by a PRNG seeded
 * with --seed, the client's port and the side, reads until the peer's
 * close_notify, and reports sha256 of what it sent and received, keyed by
 * the client's port, so a test can match both ends' lines.
 *
 *   tls_load --role server --cert C --key K [--conns N] [options]
 *       N connections, then exit; 0: until EOF on stdin, then finish the
 *       open ones and exit.
 *   tls_load --role client --port P [--conns N] [--parallel K]
 *            [--duration S] [--mix all|1.2|1.3] [options]
 *       N connections, at most K open at once; with --duration, keep
 *       opening new ones until S seconds have passed (a soak). Without
 *       --duration, each connection waits after its handshake until all N
 *       have done theirs, so all N are open and moving data at once.
 * Options: --mode threads|epoll  --min BYTES  --max BYTES  --seed N
 *          --host ADDR  --quiet (no per-connection lines)
 * The client's connections take, in turn, TLS 1.2 with AES-128-GCM,
 * AES-256-GCM, ChaCha20-Poly1305, AES-128-CCM and TLS 1.3 with the three
 * suites the kernel takes (--mix narrows that to one version).
 *
 * One line per connection on stdout:
 *   conn=I port=P version=V cipher=C sent=N sent_sha256=H recv=M
 *   recv_sha256=H kernel_tx=0|1 kernel_rx=0|1
 * and one at the end:
 *   total role=R mode=M conns=N failed=F peak=P sent=B recv=B seconds=S
 *   fds_distinct=D fds_new=WHAT,... fds_start=A fds_end=B
 * (peak: most connections open at once; fds_new: what the fds open at the
 * end but not at the start refer to, e.g. anon_inode:bpf-map, "-": none).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define CHUNK 16384
#define STALL_MS 300000 /* no progress on one connection for this long */
#define SLICE 64	/* steps per turn, so one busy connection cannot starve */

struct opts {
	int server, epoll, conns, parallel, quiet, port;
	double duration;
	const char *host, *cert, *key, *mix;
	unsigned long long min, max;
	uint64_t seed;
};

static const struct suite {
	int version;
	const char *cipher;
} suites[] = {
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256" },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384" },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256" },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-CCM" },
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

enum { CONNECTING, HANDSHAKE, PARKED, XFER };

struct conn {
	int fd, idx, state, port, shut_sent, recv_done, want_write;
	short events; /* what step() waits for */
	SSL *ssl;
	EVP_MD_CTX *hs, *hr;
	uint64_t st;
	unsigned long long total, sent, recvd;
	size_t pending;
	uint8_t out[CHUNK], in[CHUNK];
};

static struct opts o;
static SSL_CTX *ctxs[NSUITES + 1];
static pthread_mutex_t tot_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long tot_sent, tot_recv;
static int tot_done, tot_failed, fd_seen_max;
static unsigned char fd_seen[65536];
static atomic_int live, peak, handshaken, park_target;
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;

static void die(const char *what)
{
	fprintf(stderr, "tls_load: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(2);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* xorshift64*, as tls_xfer: content only has to differ per connection. */
static void fill(uint8_t *b, size_t n, uint64_t *st)
{
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			*st ^= *st >> 12;
			*st ^= *st << 25;
			*st ^= *st >> 27;
		}
		b[i] = (uint8_t)((*st * 0x2545F4914F6CDD1DULL) >> (8 * (i & 7)));
	}
}

/* Counts the open fds; with `before`, prints (comma-separated) what each
 * fd that was not open in `before` refers to, "-" if none; without, marks
 * the open ones there. */
static int fd_census(unsigned char *mark, const unsigned char *before)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0, listed = 0;
	struct dirent *e;
	if (!d)
		die("/proc/self/fd");
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		n++;
		if (fd >= 65536)
			continue;
		if (mark)
			mark[fd] = 1;
		if (before && !before[fd]) {
			char path[64], target[256];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			ssize_t l = readlink(path, target, sizeof(target) - 1);
			target[l > 0 ? l : 0] = 0;
			printf("%s%s", listed++ ? "," : "", target);
		}
	}
	if (before && !listed)
		printf("-");
	closedir(d);
	return n;
}

static int kernel_has(int fd, int dir)
{
	struct tls_crypto_info hdr = { 0 };
	socklen_t len = sizeof(hdr); /* header only: no key comes back */
	return getsockopt(fd, SOL_TLS, dir, &hdr, &len) == 0 &&
	       hdr.cipher_type != 0;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static SSL_CTX *make_ctx(const struct suite *s)
{
	SSL_CTX *c = SSL_CTX_new(s ? TLS_client_method() : TLS_server_method());
	if (!c)
		die("SSL_CTX_new");
	if (s) {
		SSL_CTX_set_min_proto_version(c, s->version);
		SSL_CTX_set_max_proto_version(c, s->version);
		if (!(s->version == TLS1_3_VERSION
			      ? SSL_CTX_set_ciphersuites(c, s->cipher)
			      : SSL_CTX_set_cipher_list(c, s->cipher)))
			die("cipher");
	} else {
		SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
		if (!SSL_CTX_set_cipher_list(
			    c, "ECDHE-ECDSA-AES128-GCM-SHA256:"
			       "ECDHE-ECDSA-AES256-GCM-SHA384:"
			       "ECDHE-ECDSA-CHACHA20-POLY1305:"
			       "ECDHE-ECDSA-AES128-CCM") ||
		    SSL_CTX_use_certificate_chain_file(c, o.cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(c, o.key, SSL_FILETYPE_PEM) != 1)
			die("server certificate/ciphers");
	}
	/* The peer is this binary without the shim: OpenSSL's defaults, no
	 * SSL_OP_ENABLE_KTLS, ever. */
	SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return c;
}

static struct conn *conn_new(int fd, int idx, int connecting)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		die("calloc");
	c->fd = fd;
	c->idx = idx;
	c->hs = EVP_MD_CTX_new();
	c->hr = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c->hs, EVP_sha256(), NULL);
	EVP_DigestInit_ex(c->hr, EVP_sha256(), NULL);
	c->state = connecting ? CONNECTING : HANDSHAKE;
	c->events = POLLOUT;
	int l = atomic_fetch_add(&live, 1) + 1;
	pthread_mutex_lock(&tot_lock);
	if (l > peak)
		peak = l;
	if (fd < (int)sizeof(fd_seen))
		fd_seen[fd] = 1;
	if (fd > fd_seen_max)
		fd_seen_max = fd;
	pthread_mutex_unlock(&tot_lock);
	return c;
}

/* After connect: the socket is established, which OpenSSL's kTLS (and so
 * the shim) needs at SSL_set_fd time for TCP_ULP. */
static void conn_start_tls(struct conn *c)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	if ((o.server ? getpeername(c->fd, (struct sockaddr *)&a, &al)
		      : getsockname(c->fd, (struct sockaddr *)&a, &al)) != 0)
		die("getsockname");
	c->port = ntohs(a.sin_port);
	uint64_t key = mix64(o.seed ^ ((uint64_t)c->port << 1 | (unsigned)o.server));
	c->st = key | 1;
	c->total = o.min + (o.max > o.min ? mix64(key) % (o.max - o.min + 1) : 0);
	c->ssl = SSL_new(o.server ? ctxs[NSUITES]
				  : ctxs[o.mix[0] == 'a'
						 ? (size_t)c->idx % NSUITES
						 : 0]);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		die("SSL_new");
	if (o.server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	c->state = HANDSHAKE;
}

static int fail(struct conn *c, const char *what, int r)
{
	fprintf(stderr, "tls_load: conn %d port %d: %s failed: "
		"SSL_get_error=%d errno=%d (%s)\n", c->idx, c->port, what,
		SSL_get_error(c->ssl, r), errno, strerror(errno));
	ERR_print_errors_fp(stderr);
	return -1;
}

/* Counts a handshake done (or a connection that failed before it, so the
 * others are not parked forever) and wakes the parked threads with the
 * last one. */
static void handshake_done(void)
{
	if (atomic_fetch_add(&handshaken, 1) + 1 == atomic_load(&park_target)) {
		pthread_mutex_lock(&park_lock);
		pthread_cond_broadcast(&park_cond);
		pthread_mutex_unlock(&park_lock);
	}
}

/* Sorts an SSL call's failure: 0 to wait (want_write says for what), -1
 * for a real error. */
static int soft(struct conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_WRITE)
		c->want_write = 1;
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Does what can be done without blocking: 1 finished, 0 wait for
 * c->events, 2 more to do at once (a slice used up), 3 parked until every
 * connection has done its handshake, -1 failed. */
static int step(struct conn *c)
{
	for (int i = 0; i < SLICE; i++) {
		int progress = 0;
		c->want_write = 0;
		if (c->state == CONNECTING) {
			int err = 0;
			socklen_t el = sizeof(err);
			struct pollfd p = { c->fd, POLLOUT, 0 };
			if (poll(&p, 1, 0) == 0) {
				c->events = POLLOUT;
				return 0;
			}
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				errno = err;
				fprintf(stderr, "tls_load: connect: %s\n",
					strerror(err));
				return -1;
			}
			conn_start_tls(c);
		}
		if (c->state == HANDSHAKE) {
			int r = SSL_do_handshake(c->ssl);
			if (r != 1) {
				if (soft(c, r) < 0)
					return fail(c, "handshake", r);
				c->events = c->want_write ? POLLOUT : POLLIN;
				return 0;
			}
			c->state = PARKED;
			handshake_done();
		}
		if (c->state == PARKED) {
			if (atomic_load(&handshaken) < atomic_load(&park_target))
				return 3;
			c->state = XFER;
		}
		if (c->sent < c->total || c->pending) {
			if (!c->pending) {
				unsigned long long left = c->total - c->sent;
				c->pending = left < CHUNK ? (size_t)left : CHUNK;
				fill(c->out, c->pending, &c->st);
			}
			size_t w = 0;
			int r = SSL_write_ex(c->ssl, c->out, c->pending, &w);
			if (r > 0) {
				EVP_DigestUpdate(c->hs, c->out, w);
				c->sent += w;
				c->pending = 0;
				progress = 1;
			} else if (soft(c, r) < 0) {
				return fail(c, "SSL_write_ex", r);
			}
		} else if (!c->shut_sent) {
			int r = SSL_shutdown(c->ssl);
			if (r >= 0)
				c->shut_sent = progress = 1;
			else if (soft(c, r) < 0)
				return fail(c, "SSL_shutdown", r);
		}
		if (!c->recv_done) {
			size_t n = 0;
			int r = SSL_read_ex(c->ssl, c->in, sizeof(c->in), &n);
			if (r > 0) {
				EVP_DigestUpdate(c->hr, c->in, n);
				c->recvd += n;
				progress = 1;
			} else if (SSL_get_error(c->ssl, r) ==
				   SSL_ERROR_ZERO_RETURN) {
				c->recv_done = progress = 1;
			} else if (soft(c, r) < 0) {
				return fail(c, "SSL_read_ex", r);
			}
		}
		if (c->shut_sent && c->recv_done)
			return 1;
		if (!progress) {
			c->events = (short)((c->recv_done ? 0 : POLLIN) |
					    (c->want_write ? POLLOUT : 0));
			return 0;
		}
	}
	return 2;
}

/* Reports and frees a connection; ok 0 counts it as failed. */
static void conn_end(struct conn *c, int ok)
{
	if (!ok && c->state < PARKED)
		handshake_done();
	if (ok) {
		unsigned char d[32];
		unsigned dl;
		char sh[65], rh[65];
		EVP_DigestFinal_ex(c->hs, d, &dl);
		hex(d, dl, sh);
		EVP_DigestFinal_ex(c->hr, d, &dl);
		hex(d, dl, rh);
		if (!o.quiet)
			printf("conn=%d port=%d version=%s cipher=%s sent=%llu "
			       "sent_sha256=%s recv=%llu recv_sha256=%s "
			       "kernel_tx=%d kernel_rx=%d\n",
			       c->idx, c->port, SSL_get_version(c->ssl),
			       SSL_CIPHER_get_name(
				       SSL_get_current_cipher(c->ssl)),
			       c->sent, sh, c->recvd, rh,
			       kernel_has(c->fd, TLS_TX),
			       kernel_has(c->fd, TLS_RX));
	}
	pthread_mutex_lock(&tot_lock);
	tot_sent += c->sent;
	tot_recv += c->recvd;
	tot_done++;
	tot_failed += !ok;
	pthread_mutex_unlock(&tot_lock);
	SSL_free(c->ssl);
	close(c->fd);
	EVP_MD_CTX_free(c->hs);
	EVP_MD_CTX_free(c->hr);
	free(c);
	atomic_fetch_sub(&live, 1);
}

static int client_socket(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o.port) };
	if (inet_pton(AF_INET, o.host, &a.sin_addr) != 1)
		die("--host");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS)
		die("connect");
	return fd;
}

/* --- one thread per connection ------------------------------------------ */

static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t *ended;           /* threads past conn_end(), not joined */
static size_t nended, ended_cap;
static size_t spawned, joined;     /* main thread only */

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	int r;
	while ((r = step(c)) == 0 || r == 2 || r == 3) {
		if (r == 2)
			continue;
		if (r == 3) {
			pthread_mutex_lock(&park_lock);
			if (atomic_load(&handshaken) < atomic_load(&park_target))
				pthread_cond_wait(&park_cond, &park_lock);
			pthread_mutex_unlock(&park_lock);
			continue;
		}
		struct pollfd p = { c->fd, c->events, 0 };
		if (poll(&p, 1, STALL_MS) == 0) {
			fprintf(stderr, "tls_load: conn %d: no progress\n",
				c->idx);
			r = -1;
			break;
		}
	}
	conn_end(c, r == 1);
	pthread_mutex_lock(&reap_lock);
	if (nended == ended_cap) {
		ended_cap = ended_cap ? 2 * ended_cap : 256;
		ended = realloc(ended, ended_cap * sizeof(*ended));
		if (!ended)
			die("realloc");
	}
	ended[nended++] = pthread_self();
	pthread_mutex_unlock(&reap_lock);
	return NULL;
}

/* Joins the threads whose connection has ended. Every thread is joined
 * before main() returns: a thread still in its exit path runs OpenSSL's
 * thread-local destructors, and those racing the OPENSSL_cleanup() that
 * exit() runs corrupted the heap ("corrupted double-linked list", once in
 * CI). Joining as they end also gives back each one's stack in a soak. */
static void reap(void)
{
	pthread_mutex_lock(&reap_lock);
	pthread_t *ids = ended;
	size_t n = nended;
	ended = NULL;
	nended = ended_cap = 0;
	pthread_mutex_unlock(&reap_lock);
	for (size_t i = 0; i < n; i++)
		if ((errno = pthread_join(ids[i], NULL)) != 0)
			die("pthread_join");
	free(ids);
	joined += n;
}

static void spawn(struct conn *c)
{
	pthread_attr_t at;
	pthread_t t;
	reap();
	pthread_attr_init(&at);
	/* 1,000 threads: small stacks keep the address space modest. */
	pthread_attr_setstacksize(&at, 512 * 1024);
	if ((errno = pthread_create(&t, &at, conn_thread, c)) != 0)
		die("pthread_create");
	pthread_attr_destroy(&at);
	spawned++;
}

/* --- one epoll loop -------------------------------------------------------- */

static int ep;
static struct conn **parked;
static int nparked;

static void ep_watch(struct conn *c, int op)
{
	struct epoll_event e = {
		.events = (c->events & POLLIN ? EPOLLIN : 0) |
			  (c->events & POLLOUT ? EPOLLOUT : 0),
		.data.ptr = c,
	};
	if (epoll_ctl(ep, op, c->fd, &e))
		die("epoll_ctl");
}

/* Runs a connection as far as it goes; 1 when it is gone. */
static int ep_run(struct conn *c, int added)
{
	int r;
	while ((r = step(c)) == 2)
		;
	if (r == 3) {
		if (added)
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		parked[nparked++] = c;
		return 0;
	}
	if (r != 0) {
		if (added)
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		conn_end(c, r == 1);
		return 1;
	}
	ep_watch(c, added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
	return 0;
}

/* --- the two roles --------------------------------------------------------- */

static int listen_socket(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, o.host, &a.sin_addr) != 1)
		die("--host");
	a.sin_port = htons((uint16_t)o.port);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096))
		die("bind/listen");
	socklen_t al = sizeof(a);
	getsockname(ls, (struct sockaddr *)&a, &al);
	printf("PORT %d\n", ntohs(a.sin_port));
	fflush(stdout);
	return ls;
}

static void server(void)
{
	int ls = listen_socket(), accepted = 0, stdin_open = o.conns == 0;
	if (o.epoll) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
		epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
		if (stdin_open) {
			e.data.ptr = &ep; /* marks stdin */
			epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
		}
	}
	while (stdin_open || accepted < o.conns || atomic_load(&live)) {
		int accept_now = 0, stdin_now = 0;
		if (o.epoll) {
			struct epoll_event ev[64];
			int n = epoll_wait(ep, ev, 64, STALL_MS);
			if (n == 0) {
				fprintf(stderr, "tls_load: server stalled\n");
				exit(4);
			}
			for (int i = 0; i < n; i++) {
				if (!ev[i].data.ptr)
					accept_now = 1;
				else if (ev[i].data.ptr == &ep)
					stdin_now = 1;
				else
					ep_run(ev[i].data.ptr, 1);
			}
		} else {
			struct pollfd p[2] = { { ls, POLLIN, 0 },
					       { 0, POLLIN, 0 } };
			poll(p, stdin_open ? 2 : 1, 50);
			accept_now = p[0].revents != 0;
			stdin_now = stdin_open && p[1].revents != 0;
		}
		if (stdin_now) {
			char b[64];
			if (read(0, b, sizeof(b)) <= 0) {
				stdin_open = 0;
				o.conns = accepted; /* no more after these */
				if (o.epoll)
					epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
			}
		}
		while (accept_now && (stdin_open || accepted < o.conns)) {
			int fd = accept4(ls, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd < 0) {
				if (errno == EAGAIN)
					break;
				die("accept");
			}
			struct conn *c = conn_new(fd, accepted++, 0);
			conn_start_tls(c);
			if (o.epoll)
				ep_run(c, 0);
			else
				spawn(c);
		}
	}
	close(ls);
	if (o.epoll)
		close(ep);
}

static void client(void)
{
	double end = now() + o.duration;
	int opened = 0;
	if (o.duration <= 0)
		atomic_store(&park_target, o.conns);
	if (o.epoll) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		parked = calloc((size_t)o.conns, sizeof(*parked));
	}
	for (;;) {
		int more = o.duration > 0 ? now() < end : opened < o.conns;
		while (more && atomic_load(&live) < o.parallel) {
			struct conn *c = conn_new(client_socket(), opened++, 1);
			if (o.epoll)
				ep_run(c, 0);
			else
				spawn(c);
			more = o.duration > 0 ? now() < end : opened < o.conns;
		}
		if (o.epoll && nparked &&
		    atomic_load(&handshaken) >= atomic_load(&park_target)) {
			/* The last handshake is done: all go on at once. */
			int n = nparked;
			nparked = 0;
			for (int i = 0; i < n; i++)
				ep_run(parked[i], 0);
		}
		if (!more && atomic_load(&live) == 0)
			break;
		if (o.epoll) {
			struct epoll_event ev[64];
			int n = epoll_wait(ep, ev, 64, STALL_MS);
			if (n == 0) {
				fprintf(stderr, "tls_load: client stalled\n");
				exit(4);
			}
			for (int i = 0; i < n; i++)
				ep_run(ev[i].data.ptr, 1);
		} else {
			usleep(2000);
		}
	}
	if (o.epoll) {
		close(ep);
		free(parked);
	}
}

/* Each connection needs an fd on each side; a default soft limit of 1024
 * would not hold 1,000 of them plus the program's own. */
static void raise_nofile(int need)
{
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	if (r.rlim_cur >= (rlim_t)need)
		return;
	r.rlim_cur = r.rlim_max >= (rlim_t)need ? r.rlim_max : (rlim_t)need;
	if (r.rlim_max < r.rlim_cur)
		r.rlim_max = r.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &r))
		die("setrlimit(RLIMIT_NOFILE)");
}

int main(int argc, char **argv)
{
	o = (struct opts){ .host = "127.0.0.1", .conns = 1, .mix = "all",
			   .min = 1 << 20, .max = 16 << 20, .seed = 1,
			   .epoll = 1 };
	static const struct option lo[] = {
		{ "role", 1, 0, 'r' },	   { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' },	   { "cert", 1, 0, 'c' },
		{ "key", 1, 0, 'k' },	   { "conns", 1, 0, 'n' },
		{ "parallel", 1, 0, 'P' }, { "duration", 1, 0, 'd' },
		{ "mix", 1, 0, 'x' },	   { "mode", 1, 0, 'm' },
		{ "min", 1, 0, 'a' },	   { "max", 1, 0, 'b' },
		{ "seed", 1, 0, 'S' },	   { "quiet", 0, 0, 'q' },
		{ 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'r': o.server = strcmp(optarg, "server") == 0; break;
		case 'h': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'c': o.cert = optarg; break;
		case 'k': o.key = optarg; break;
		case 'n': o.conns = atoi(optarg); break;
		case 'P': o.parallel = atoi(optarg); break;
		case 'd': o.duration = atof(optarg); break;
		case 'x': o.mix = optarg; break;
		case 'm': o.epoll = strcmp(optarg, "threads") != 0; break;
		case 'a': o.min = strtoull(optarg, NULL, 0); break;
		case 'b': o.max = strtoull(optarg, NULL, 0); break;
		case 'S': o.seed = strtoull(optarg, NULL, 0); break;
		case 'q': o.quiet = 1; break;
		default: fprintf(stderr, "tls_load: bad option\n"); return 2;
		}
	}
	if (o.conns < 0 || o.max < o.min || (!o.server && o.conns < 1) ||
	    (o.server && (!o.cert || !o.key))) {
		fprintf(stderr, "tls_load: bad arguments\n");
		return 2;
	}
	if (o.parallel <= 0)
		o.parallel = o.conns > 0 ? o.conns : 1;
	raise_nofile((o.server ? (o.conns ? o.conns : 4096) : o.parallel) + 64);

	static unsigned char fds_at_start[65536];
	int fds_start = fd_census(fds_at_start, NULL);
	double t0 = now();
	if (o.server) {
		ctxs[NSUITES] = make_ctx(NULL);
	} else {
		/* --mix 1.2 / 1.3: that version's first suite only. */
		size_t first = strcmp(o.mix, "1.3") == 0;
		for (size_t i = 0; i < NSUITES; i++)
			ctxs[i] = make_ctx(&suites[o.mix[0] == 'a' ? i : first]);
	}
	if (o.server)
		server();
	else
		client();
	while (atomic_load(&live))
		usleep(1000);
	while (joined < spawned) {
		reap();
		usleep(1000);
	}
	double secs = now() - t0;
	for (size_t i = 0; i <= NSUITES; i++)
		SSL_CTX_free(ctxs[i]);
	int distinct = 0;
	for (int i = 0; i <= fd_seen_max && i < (int)sizeof(fd_seen); i++)
		distinct += fd_seen[i];
	printf("total role=%s mode=%s conns=%d failed=%d peak=%d sent=%llu "
	       "recv=%llu seconds=%.1f fds_distinct=%d fds_new=",
	       o.server ? "server" : "client", o.epoll ? "epoll" : "threads",
	       tot_done, tot_failed, atomic_load(&peak), tot_sent, tot_recv,
	       secs, distinct);
	int fds_end = fd_census(NULL, fds_at_start);
	printf(" fds_start=%d fds_end=%d\n", fds_start, fds_end);
	return tot_failed ? 1 : 0;
}
