/*
 * gnutls_xfer: tls_xfer's GnuTLS twin. A plain GnuTLS client or server that
 * moves a known amount of data each way over one connection and reports
 * what it sent and received (sha256), what GnuTLS believes
 * (gnutls_transport_is_ktls_enabled) and what the kernel says (getsockopt
 * SOL_TLS). The fault tests run it with the shim preloaded against an
 * unshimmed tls_xfer, so its payload, output line and exit codes are
 * tls_xfer's: the same seed gives the same byte stream.
 *
 *   gnutls_xfer --role server --port 0 --cert C --key K [options]
 *   gnutls_xfer --role client --port P [options]
 * Options: --tls 1.2|1.3 (only that version; default: what GnuTLS's
 *          NORMAL priority negotiates)  --cipher NAME (a GnuTLS cipher
 *          name: AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305)
 *          --send BYTES  --seed N  --chunk BYTES  --blocking
 *          --key-update  --key-updates N (N TLS 1.3 KeyUpdates spread over
 *          the data sent, every other one asking the peer to update too;
 *          none on TLS 1.2)  --host ADDR
 *          --recv-file PATH (every byte gnutls_record_recv returns,
 *          written as it comes)
 *          --transport MODE (how GnuTLS reaches the socket; default int:
 *          gnutls_transport_set_int, GnuTLS's own push/pull, which is what
 *          the shim hooks; push, vec, readahead, queue, dupfd, send, sendto:
 *          the program's own push/pull functions, as qemu has, each a
 *          shape the shim must prove or refuse: gnutls_transport.c)
 *          --record-size-limit N (RFC 8449: accept records of at most N
 *          bytes of plaintext, advertised to the peer)
 *          --pad N (send with gnutls_record_send2 and N bytes of TLS
 *          1.3 padding per record)
 *          --record-sizes (count every record header read, below GnuTLS,
 *          over --transport send: "records_in=N max_record_in=BYTES" at
 *          the end of the line, BYTES a record's body as sent)
 * The client does not verify the server's certificate. One line on
 * stdout:
 *   conn=0 version=TLSv1.3 cipher=AES-256-GCM sent=N sent_sha256=H recv=M
 *   recv_sha256=H lib_tx=0 lib_rx=0 kernel_tx=1 kernel_rx=0 shim=...
 * Exit status: 0 done, 2 setup or system error, 3 a GnuTLS call failed
 * ("gnutls_xfer: CALL failed: MESSAGE (CODE) errno=N (TEXT)" on stderr),
 * 4 no progress for 60 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gnutls_transport.h"
#include "ktls_shim.h"
#include "xfer_common.h"

const char *xfer_prog = "gnutls_xfer";

struct opts {
	int server, blocking, key_update, record_sizes;
	unsigned rsl; /* --record-size-limit: what we accept, 0 default */
	size_t pad;   /* --pad: gnutls_record_send2's padding, TLS 1.3 */
	const char *host, *cert, *key, *cipher, *tls, *recv_file, *transport;
	int port;
	unsigned long long send;
	uint64_t seed;
	size_t chunk;
};

static void die(const char *what)
{
	fprintf(stderr, "gnutls_xfer: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* errno as the failing call left it: the tests read it. */
static void die_gt(const char *what, int rc)
{
	int e = errno;
	fprintf(stderr, "gnutls_xfer: %s failed: %s (%d) errno=%d (%s)\n",
		what, gnutls_strerror(rc), rc, e, strerror(e));
	exit(3);
}

static int again(int rc)
{
	return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED;
}

/* t: a queue transport may still hold bytes when GnuTLS waits to read. */
static void handshake(gnutls_session_t s, int fd, struct gx_transport *t)
{
	for (;;) {
		int rc = gnutls_handshake(s);
		if (rc == 0)
			return;
		int w = gnutls_record_get_direction(s) == 1;
		if (again(rc))
			xfer_wait_io(fd, w || gx_transport_pending(t), !w);
		else if (gnutls_error_is_fatal(rc))
			die_gt("gnutls_handshake", rc);
		/* else a warning alert: go on */
	}
}

static const char *version_name(gnutls_session_t s)
{
	switch (gnutls_protocol_get_version(s)) {
	case GNUTLS_TLS1_2: return "TLSv1.2";
	case GNUTLS_TLS1_3: return "TLSv1.3";
	default: {
		const char *n = gnutls_protocol_get_name(
			gnutls_protocol_get_version(s));
		return n ? n : "unknown";
	}
	}
}

/* One connection's transfer, as the loop below drives it. */
struct xf {
	const struct opts *o;
	gnutls_session_t s;
	struct gx_transport *t;
	gnutls_hash_hd_t hs, hr;
	uint8_t *out, *in;
	uint64_t st;
	unsigned long long sent, recvd;
	size_t pending, off; /* out[off, pending) awaits a send */
	int shut_sent, recv_done, updated, key_updates;
	int ku_check, ku_active;
	unsigned ku_flags;
	int rfd; /* --recv-file */
};

/* The i-th of N KeyUpdates at i/(N+1) of the data, checked after each
 * whole chunk as tls_xfer does; odd ones ask the peer to update too. */
static void ku_schedule(struct xf *x)
{
	if (!x->ku_check || x->ku_active)
		return;
	if (x->updated < x->key_updates &&
	    x->sent >= x->o->send * (unsigned long long)(x->updated + 1) /
			       (unsigned long long)(x->key_updates + 1)) {
		x->ku_flags = x->updated % 2 == 0 ? GNUTLS_KU_PEER : 0;
		x->updated++;
		x->ku_active = 1;
	} else {
		x->ku_check = 0;
	}
}

/* GnuTLS sends the KeyUpdate in the call, so one that would block is
 * finished here, between reads. Returns progress. */
static int ku_step(struct xf *x, int *want_write)
{
	int r = gnutls_session_key_update(x->s, x->ku_flags);
	if (r == 0) {
		x->ku_active = 0;
		return 1;
	}
	if (again(r)) {
		*want_write = gnutls_record_get_direction(x->s) == 1;
		return 0;
	}
	if (r != GNUTLS_E_INVALID_REQUEST &&
	    r != GNUTLS_E_UNIMPLEMENTED_FEATURE)
		die_gt("gnutls_session_key_update", r);
	/* As tls_xfer goes on after a refused SSL_key_update: the shim
	 * refuses one the kernel could not follow. */
	fprintf(stderr, "gnutls_xfer: gnutls_session_key_update refused: "
			"%s (%d)\n",
		gnutls_strerror(r), r);
	x->ku_active = 0;
	return 1;
}

/* The next chunk (or what is left of it), then close_notify. Returns
 * progress. */
static int send_step(struct xf *x, int *want_write)
{
	if (x->sent < x->o->send || x->pending) {
		if (!x->pending) {
			unsigned long long left = x->o->send - x->sent;
			x->pending = left < x->o->chunk ? (size_t)left
							: x->o->chunk;
			x->off = 0;
			xfer_fill(x->out, x->pending, &x->st, 0);
		}
		/* Retried with the same arguments after GNUTLS_E_AGAIN, as
		 * GnuTLS requires. */
		ssize_t r = x->o->pad
				    ? gnutls_record_send2(x->s, x->out + x->off,
							  x->pending - x->off,
							  x->o->pad, 0)
				    : gnutls_record_send(x->s, x->out + x->off,
							 x->pending - x->off);
		if (r > 0) {
			gnutls_hash(x->hs, x->out + x->off, (size_t)r);
			x->sent += (unsigned long long)r;
			x->off += (size_t)r;
			if (x->off == x->pending) {
				x->pending = x->off = 0;
				x->ku_check = 1;
			}
			return 1;
		}
		if (!again((int)r))
			die_gt("gnutls_record_send", (int)r);
	} else if (!x->shut_sent) {
		int r = gnutls_bye(x->s, GNUTLS_SHUT_WR);
		if (r == 0)
			return x->shut_sent = 1;
		if (!again(r))
			die_gt("gnutls_bye", r);
	} else {
		return 0;
	}
	*want_write = gnutls_record_get_direction(x->s) == 1;
	return 0;
}

/* Returns progress. */
static int recv_step(struct xf *x, int *want_write)
{
	ssize_t r = gnutls_record_recv(x->s, x->in, 1 << 16);
	if (r > 0) {
		gnutls_hash(x->hr, x->in, (size_t)r);
		x->recvd += (unsigned long long)r;
		if (x->rfd >= 0 && write(x->rfd, x->in, (size_t)r) != r)
			die("--recv-file");
		return 1;
	}
	if (r == 0) /* the peer's close_notify */
		return x->recv_done = 1;
	if (again((int)r)) {
		if (gnutls_record_get_direction(x->s) == 1)
			*want_write = 1;
		return 0;
	}
	if (!gnutls_error_is_fatal((int)r))
		return 1; /* a warning alert */
	/* GNUTLS_E_PREMATURE_TERMINATION too: EOF without close_notify. */
	die_gt("gnutls_record_recv", (int)r);
	return 0;
}

static void report(struct xf *x, int fd)
{
	unsigned char d[32];
	char sh[65], rh[65], shim[160];
	xfer_shim_state(fd, shim, sizeof(shim));
	gnutls_hash_deinit(x->hs, d);
	xfer_hex(d, sizeof(d), sh);
	gnutls_hash_deinit(x->hr, d);
	xfer_hex(d, sizeof(d), rh);
	int lib = 0;
#if GNUTLS_VERSION_NUMBER >= 0x030703
	lib = (int)gnutls_transport_is_ktls_enabled(x->s);
#endif
	const char *cipher = gnutls_cipher_get_name(gnutls_cipher_get(x->s));
	char sizes[96] = "";
	if (x->o->record_sizes) {
		unsigned long long n, max;
		gx_transport_records(x->t, &n, &max);
		snprintf(sizes, sizeof(sizes),
			 " records_in=%llu max_record_in=%llu", n, max);
	}
	printf("conn=0 version=%s cipher=%s sent=%llu sent_sha256=%s "
	       "recv=%llu recv_sha256=%s lib_tx=%d lib_rx=%d kernel_tx=%d "
	       "kernel_rx=%d shim=%s%s\n",
	       version_name(x->s), cipher ? cipher : "unknown", x->sent, sh,
	       x->recvd, rh, (lib & 2) != 0 /* GNUTLS_KTLS_SEND */,
	       (lib & 1) != 0 /* GNUTLS_KTLS_RECV */,
	       xfer_kernel_has(fd, TLS_TX), xfer_kernel_has(fd, TLS_RX), shim,
	       sizes);
	fflush(stdout);
}

static int finished(const struct xf *x)
{
	return x->sent == x->o->send && !x->pending && !x->ku_active &&
	       x->shut_sent && x->recv_done && !gx_transport_pending(x->t);
}

static void transfer(const struct opts *o, gnutls_session_t s, int fd,
		     struct gx_transport *t)
{
	struct xf x = { .o = o, .s = s, .t = t, .rfd = -1 };
	if (gnutls_hash_init(&x.hs, GNUTLS_DIG_SHA256) < 0 ||
	    gnutls_hash_init(&x.hr, GNUTLS_DIG_SHA256) < 0)
		die("gnutls_hash_init");
	x.out = malloc(o->chunk), x.in = malloc(1 << 16);
	if (!x.out || !x.in)
		die("malloc");
	x.st = o->seed + (uint64_t)0 * 7919 + 1; /* conn 0 */
	if (o->recv_file &&
	    (x.rfd = open(o->recv_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600)) < 0)
		die("--recv-file");

	handshake(s, fd, t);
	/* KeyUpdates are TLS 1.3's: none on TLS 1.2. */
	x.key_updates = gnutls_protocol_get_version(s) == GNUTLS_TLS1_3
				? o->key_update
				: 0;
	while (!finished(&x)) {
		int progress = 0, want_write = 0;
		/* What a queue transport held back goes out here: after each
		 * gnutls_record_send, before gnutls_bye. */
		if (gx_transport_pending(t)) {
			int f = gx_transport_flush(t);
			if (f < 0)
				die("transport write");
			progress = f;
		}
		ku_schedule(&x);
		if (x.ku_active)
			progress |= ku_step(&x, &want_write);
		else
			progress |= send_step(&x, &want_write);
		/* In blocking mode, read only once our side is done sending,
		 * or gnutls_record_recv would block while the peer waits for
		 * us. */
		if (!x.recv_done && (!o->blocking || x.shut_sent))
			progress |= recv_step(&x, &want_write);
		if (!progress)
			xfer_wait_io(fd, want_write || gx_transport_pending(t),
				     !x.recv_done && !o->blocking);
	}
	report(&x, fd);
	if (x.rfd >= 0)
		close(x.rfd);
	free(x.out);
	free(x.in);
}

static void run_conn(const struct opts *o,
		     gnutls_certificate_credentials_t cred, int fd)
{
	if (!o->blocking)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	gnutls_session_t s;
	int rc = gnutls_init(&s, o->server ? GNUTLS_SERVER : GNUTLS_CLIENT);
	if (rc < 0)
		die_gt("gnutls_init", rc);
	char prio[256];
	snprintf(prio, sizeof(prio), "NORMAL%s%s%s%s",
		 o->tls ? ":-VERS-ALL:+VERS-TLS" : "", o->tls ? o->tls : "",
		 o->cipher ? ":-CIPHER-ALL:+" : "", o->cipher ? o->cipher : "");
	const char *err = NULL;
	rc = gnutls_priority_set_direct(s, prio, &err);
	if (rc < 0) {
		fprintf(stderr, "gnutls_xfer: priority \"%s\" rejected at \"%s\"\n",
			prio, err ? err : "?");
		die_gt("gnutls_priority_set_direct", rc);
	}
	rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	if (rc < 0)
		die_gt("gnutls_credentials_set", rc);
	/* RFC 8449: what we accept, advertised in our hello. */
	if (o->rsl && (rc = gnutls_record_set_max_recv_size(s, o->rsl)) < 0)
		die_gt("gnutls_record_set_max_recv_size", rc);
	struct gx_transport *t = gx_transport_set(s, fd, o->transport);
	if (!t)
		die("--transport");
	transfer(o, s, fd, t);
	gnutls_deinit(s);
	gx_transport_free(t);
	xfer_drain_to_eof(fd);
	close(fd);
}

/* 0, or 2 after saying what is wrong. */
static int parse_opts(int argc, char **argv, struct opts *p)
{
	struct opts o = { .host = "127.0.0.1", .chunk = 16384, .seed = 1,
			  .transport = "int" };
	static const struct option lo[] = {
		{ "role", 1, 0, 'r' },	    { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' },	    { "cert", 1, 0, 'c' },
		{ "key", 1, 0, 'k' },	    { "cipher", 1, 0, 'C' },
		{ "tls", 1, 0, 't' },	    { "send", 1, 0, 's' },
		{ "seed", 1, 0, 'S' },	    { "chunk", 1, 0, 'b' },
		{ "blocking", 0, 0, 'B' },  { "key-update", 0, 0, 'U' },
		{ "key-updates", 1, 0, 'u' }, { "recv-file", 1, 0, 'W' },
		{ "transport", 1, 0, 'T' },
		{ "record-size-limit", 1, 0, 'L' },
		{ "record-sizes", 0, 0, 'Z' },
		{ "pad", 1, 0, 'P' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'r': o.server = strcmp(optarg, "server") == 0; break;
		case 'h': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'c': o.cert = optarg; break;
		case 'k': o.key = optarg; break;
		case 'C': o.cipher = optarg; break;
		case 't': o.tls = optarg; break;
		case 's': o.send = strtoull(optarg, NULL, 0); break;
		case 'S': o.seed = strtoull(optarg, NULL, 0); break;
		case 'b': o.chunk = strtoull(optarg, NULL, 0); break;
		case 'B': o.blocking = 1; break;
		case 'U': o.key_update = 1; break;
		case 'u': o.key_update = atoi(optarg); break;
		case 'W': o.recv_file = optarg; break;
		case 'T': o.transport = optarg; break;
		case 'L': o.rsl = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'Z': o.record_sizes = 1; break;
		case 'P': o.pad = strtoull(optarg, NULL, 0); break;
		default: fprintf(stderr, "gnutls_xfer: bad option\n"); return 2;
		}
	}
	if (o.chunk == 0) {
		fprintf(stderr, "gnutls_xfer: --chunk must be > 0\n");
		return 2;
	}
	if (o.record_sizes && strcmp(o.transport, "int") != 0 &&
	    strcmp(o.transport, "send") != 0) {
		fprintf(stderr, "gnutls_xfer: --record-sizes counts over "
				"--transport send (int becomes send)\n");
		return 2;
	}
	if (o.record_sizes)
		o.transport = "send";
	if (!gx_transport_known(o.transport)) {
		fprintf(stderr, "gnutls_xfer: --transport must be int, push, "
				"vec, readahead, queue, dupfd, send or sendto\n");
		return 2;
	}
	if (o.tls && strcmp(o.tls, "1.2") != 0 && strcmp(o.tls, "1.3") != 0) {
		fprintf(stderr, "gnutls_xfer: --tls must be 1.2 or 1.3\n");
		return 2;
	}
	*p = o;
	return 0;
}

int main(int argc, char **argv)
{
	/* A peer that drops the connection is an error to report (EPIPE),
	 * not a death by signal: tests tell crashes apart by the signal. */
	signal(SIGPIPE, SIG_IGN);
	struct opts o;
	if (parse_opts(argc, argv, &o))
		return 2;
	gnutls_certificate_credentials_t cred;
	int rc = gnutls_certificate_allocate_credentials(&cred);
	if (rc < 0)
		die_gt("gnutls_certificate_allocate_credentials", rc);
	if (o.server) {
		if (!o.cert || !o.key) {
			fprintf(stderr, "gnutls_xfer: a server needs --cert "
					"and --key\n");
			return 2;
		}
		rc = gnutls_certificate_set_x509_key_file(
			cred, o.cert, o.key, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			fprintf(stderr, "gnutls_xfer: certificate: %s\n",
				gnutls_strerror(rc));
			return 2;
		}
	}
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o.port) };
	if (inet_pton(AF_INET, o.host, &a.sin_addr) != 1)
		die("--host");

	if (o.server) {
		int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 64))
			die("bind/listen");
		socklen_t al = sizeof(a);
		getsockname(ls, (struct sockaddr *)&a, &al);
		printf("PORT %d\n", ntohs(a.sin_port));
		fflush(stdout);
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept");
		run_conn(&o, cred, fd);
		close(ls);
	} else {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		run_conn(&o, cred, fd);
	}
	gnutls_certificate_free_credentials(cred);
	return 0;
}
