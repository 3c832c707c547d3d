/*
 * tls_xfer: a plain OpenSSL client or server that moves a known amount of
 * data each way and reports what it sent and received (sha256), what OpenSSL
 * believes (BIO_get_ktls_send/recv) and what the kernel says (getsockopt
 * SOL_TLS). The integration tests run it with the shim preloaded on one side
 * and without on the other, so the peer is a real, unshimmed OpenSSL.
 *
 *   tls_xfer --role server --port 0 --cert C --key K [options]
 *   tls_xfer --role client --port P [options]
 * Options: --tls 1.2|1.3  --cipher NAME  --send BYTES  --seed N  --conns N
 *          --chunk BYTES  --blocking  --key-update  --key-updates N
 *          (N KeyUpdates spread over the data sent, every other one
 *          asking the peer to update too)  --host ADDR
 *          --recv-until BYTES (stop reading there: for echo peers that
 *          close without close_notify)  --text (printable lines only)
 *          --sendfile PATH [--sendfile-nooff] (payload sent with sendfile(2))
 *          --keylog PATH (NSS key log; for TLS 1.2 also "SERVER_RANDOM
 *          <client random> <server random>", which key derivation needs)
 *          --hold (at the end, after SSL_CTX_free: print "HOLD", then wait
 *          for EOF on stdin, so a test can scan this process's memory)
 *          --key-update-burst N (N KeyUpdates back to back right after
 *          the handshake, before any data)
 *          --info-cb ssl|ctx (an info callback on the SSL or its
 *          SSL_CTX that prints "info callback: handshake done" to stderr)
 *          --msg-cb ssl|ctx (likewise a message callback, which prints
 *          "message callback: peer's Finished")
 *          --maxfraglen 512|1024|2048|4096 (client: asks the server for
 *          RFC 6066 max_fragment_length)
 *          --record-sizes (counts the records read, as libssl's record
 *          layer sees them: "records_in=N max_record_in=BYTES" in the
 *          connection line, BYTES the largest record body)
 *          --block-padding N (SSL_CTX_set_block_padding: TLS 1.3 records
 *          sent padded to N; with --record-sizes also "unpadded_in=U":
 *          TLS 1.3 application data records read whose inner plaintext
 *          is shorter than 16 KiB and not a multiple of N, which a
 *          padding sender never sends; full records cannot be padded)
 *          --ssl-block-padding N (SSL_set_block_padding on each SSL, over
 *          what it took from its SSL_CTX; 0 or 1: none)
 *          --recv-file PATH (every byte SSL_read returns, written as it
 *          comes: what a connection that dies delivered before it died;
 *          PATH.I for connection I when --conns > 1)
 *          --fork (each connection in a child process, so one that dies
 *          does not end the others; after each, "tls_xfer: conn=I exit=N"
 *          or "signal=N" on stderr)
 *          --reuse-ssl (one SSL object for all --conns, SSL_clear()ed
 *          between connections)
 *          --own-bio send|readahead|queue (the program's own BIO over the
 *          socket instead of SSL_set_fd: ossl_transport.c)
 * One line per connection on stdout:
 *   conn=0 version=TLSv1.3 cipher=... sent=N sent_sha256=H recv=M
 *   recv_sha256=H lib_tx=1 lib_rx=0 kernel_tx=1 kernel_rx=0
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ktls_shim.h"
#include "ossl_transport.h"
#include "xfer_common.h"

const char *xfer_prog = "tls_xfer";

struct opts {
	int server, blocking, key_update, conns, text;
	const char *host, *cert, *key, *cipher, *tls, *sendfile_path;
	int sendfile_nooff;
	int port;
	unsigned long long send, recv_until;
	uint64_t seed;
	size_t chunk;
	const char *keylog, *recv_file;
	int hold, key_update_burst, fork_conns, reuse_ssl;
	const char *info_cb; /* "ssl" or "ctx": where the info callback goes */
	const char *msg_cb;  /* likewise the message callback */
	int maxfraglen, record_sizes;
	size_t block_padding;
	long ssl_block_padding; /* -1: not asked */
	const char *own_bio;    /* --own-bio MODE (ossl_transport.c) */
};

/* --record-sizes: records read and the largest body, counted by
 * record_size_cb(). */
static unsigned long long records_in, max_record_in;
/* --block-padding with --record-sizes: TLS 1.3 records that a sender
 * padding to pad_block would not have sent (record_size_cb()). */
static unsigned long long unpadded_in;
static size_t pad_block;

static void die(const char *what)
{
	fprintf(stderr, "tls_xfer: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(2);
}

static void die_ssl(const char *what, SSL *s, int r)
{
	fprintf(stderr, "tls_xfer: %s failed: SSL_get_error=%d errno=%d (%s)\n",
		what, s ? SSL_get_error(s, r) : 0, errno, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(3);
}

/* Runs an SSL call until done, waiting on the socket as OpenSSL asks. */
#define RETRY(s, fd, what, call)                                              \
	for (;;) {                                                            \
		int r_ = (call);                                              \
		if (r_ > 0)                                                   \
			break;                                                \
		int e_ = SSL_get_error(s, r_);                                \
		if (e_ == SSL_ERROR_WANT_READ || e_ == SSL_ERROR_WANT_WRITE)  \
			xfer_wait_io(fd, e_ == SSL_ERROR_WANT_WRITE, 0);      \
		else                                                          \
			die_ssl(what, s, r_);                                 \
	}

static void transfer(const struct opts *o, SSL *s, int fd, int conn)
{
	EVP_MD_CTX *hs = EVP_MD_CTX_new(), *hr = EVP_MD_CTX_new();
	EVP_DigestInit_ex(hs, EVP_sha256(), NULL);
	EVP_DigestInit_ex(hr, EVP_sha256(), NULL);
	uint8_t *out = malloc(o->chunk), *in = malloc(1 << 16);
	uint64_t st = o->seed + (uint64_t)conn * 7919 + 1;
	unsigned long long sent = 0, recvd = 0;
	size_t pending = 0; /* bytes of out awaiting a retried SSL_write */
	int shut_sent = 0, recv_done = 0, updated = 0;
	char rpath[4096];
	if (o->recv_file)
		snprintf(rpath, sizeof(rpath), o->conns > 1 ? "%s.%d" : "%s",
			 o->recv_file, conn);
	int rfd = o->recv_file ? open(rpath,
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      0600)
			       : -1;
	if (o->recv_file && rfd < 0)
		die("--recv-file");

	if (o->server)
		RETRY(s, fd, "SSL_accept", SSL_accept(s))
	else
		RETRY(s, fd, "SSL_connect", SSL_connect(s))
	for (int i = 0; i < o->key_update_burst; i++) {
		if (!SSL_key_update(s, SSL_KEY_UPDATE_NOT_REQUESTED))
			die_ssl("SSL_key_update", s, 0);
		RETRY(s, fd, "SSL_do_handshake", SSL_do_handshake(s))
	}

	/* --sendfile: the payload is a file, sent with sendfile(2) on the TLS
	 * socket as a program would (nginx does when kTLS is on). */
	int ffd = -1;
	off_t foff = 0;
	unsigned long long total = o->send;
	if (o->sendfile_path) {
		struct stat st;
		ffd = open(o->sendfile_path, O_RDONLY | O_CLOEXEC);
		if (ffd < 0 || fstat(ffd, &st) != 0)
			die("--sendfile");
		total = (unsigned long long)st.st_size;
	}

	while (!(sent == total && !pending && shut_sent && recv_done)) {
		int progress = 0, want_write = 0;
		if (ffd >= 0 && sent < total) {
			unsigned long long left = total - sent;
			size_t want = left < o->chunk ? (size_t)left : o->chunk;
			off_t before = o->sendfile_nooff
					       ? lseek(ffd, 0, SEEK_CUR)
					       : foff;
			ssize_t n = sendfile(fd, ffd,
					     o->sendfile_nooff ? NULL : &foff,
					     want);
			if (n > 0) {
				/* Hash what the file holds at the range that
				 * sendfile reports sent. */
				if (pread(ffd, out, (size_t)n, before) != n)
					die("pread");
				EVP_DigestUpdate(hs, out, (size_t)n);
				sent += (unsigned long long)n;
				progress = 1;
			} else if (n < 0 && errno == EAGAIN) {
				want_write = 1;
			} else {
				die("sendfile");
			}
		} else if (sent < total || pending) {
			if (!pending) {
				unsigned long long left = total - sent;
				pending = left < o->chunk ? (size_t)left : o->chunk;
				xfer_fill(out, pending, &st, o->text);
			}
			size_t w = 0;
			int r = SSL_write_ex(s, out, pending, &w);
			if (r > 0) {
				EVP_DigestUpdate(hs, out, w);
				sent += w;
				pending = 0;
				progress = 1;
				/* The i-th of N KeyUpdates at i/(N+1) of
				 * the data; odd ones ask the peer to
				 * update too. */
				while (updated < o->key_update &&
				       sent >= o->send * (updated + 1) /
						       (o->key_update + 1)) {
					int type = updated % 2 == 0
							   ? SSL_KEY_UPDATE_REQUESTED
							   : SSL_KEY_UPDATE_NOT_REQUESTED;
					updated++;
					if (!SSL_key_update(s, type))
						fprintf(stderr,
							"tls_xfer: SSL_key_update "
							"refused\n");
				}
			} else {
				int e = SSL_get_error(s, r);
				if (e == SSL_ERROR_WANT_WRITE)
					want_write = 1;
				else if (e != SSL_ERROR_WANT_READ)
					die_ssl("SSL_write_ex", s, r);
			}
		} else if (!shut_sent) {
			int r = SSL_shutdown(s);
			if (r >= 0) {
				shut_sent = 1;
				progress = 1;
			} else {
				int e = SSL_get_error(s, r);
				if (e == SSL_ERROR_WANT_WRITE)
					want_write = 1;
				else if (e != SSL_ERROR_WANT_READ)
					die_ssl("SSL_shutdown", s, r);
			}
		}
		/* In blocking mode, read only once our side is done sending,
		 * or SSL_read would block while the peer waits for us. */
		if (!recv_done && (!o->blocking || shut_sent)) {
			size_t n = 0;
			int r = SSL_read_ex(s, in, 1 << 16, &n);
			if (r > 0) {
				EVP_DigestUpdate(hr, in, n);
				recvd += n;
				if (rfd >= 0 && write(rfd, in, n) != (ssize_t)n)
					die("--recv-file");
				progress = 1;
				if (o->recv_until && recvd >= o->recv_until)
					recv_done = 1;
			} else {
				int e = SSL_get_error(s, r);
				if (e == SSL_ERROR_ZERO_RETURN)
					recv_done = progress = 1;
				else if (e == SSL_ERROR_WANT_WRITE)
					want_write = 1;
				else if (e != SSL_ERROR_WANT_READ)
					die_ssl("SSL_read_ex", s, r);
			}
		}
		if (!progress)
			xfer_wait_io(fd, want_write, !recv_done && !o->blocking);
	}

	unsigned char d[32];
	unsigned dl;
	char sh[65], rh[65], shim[160];
	xfer_shim_state(fd, shim, sizeof(shim));
	EVP_DigestFinal_ex(hs, d, &dl);
	xfer_hex(d, dl, sh);
	EVP_DigestFinal_ex(hr, d, &dl);
	xfer_hex(d, dl, rh);
	char sizes[120] = "";
	if (o->record_sizes) {
		int n = snprintf(sizes, sizeof(sizes),
				 " records_in=%llu max_record_in=%llu",
				 records_in, max_record_in);
		if (pad_block)
			snprintf(sizes + n, sizeof(sizes) - (size_t)n,
				 " unpadded_in=%llu", unpadded_in);
	}
	printf("conn=%d version=%s cipher=%s sent=%llu sent_sha256=%s "
	       "recv=%llu recv_sha256=%s lib_tx=%d lib_rx=%d kernel_tx=%d "
	       "kernel_rx=%d shim=%s%s\n",
	       conn, SSL_get_version(s),
	       SSL_CIPHER_get_name(SSL_get_current_cipher(s)), sent, sh, recvd,
	       rh, (int)BIO_get_ktls_send(SSL_get_wbio(s)),
	       (int)BIO_get_ktls_recv(SSL_get_rbio(s)),
	       xfer_kernel_has(fd, TLS_TX), xfer_kernel_has(fd, TLS_RX), shim,
	       sizes);
	fflush(stdout);
	if (ffd >= 0)
		close(ffd);
	if (rfd >= 0)
		close(rfd);
	EVP_MD_CTX_free(hs);
	EVP_MD_CTX_free(hr);
	free(out);
	free(in);
}

static FILE *keylog_file;

static void keylog_line(const SSL *s, const char *line)
{
	fprintf(keylog_file, "%s\n", line);
	if (strncmp(line, "CLIENT_RANDOM ", 14) == 0) {
		unsigned char r[32];
		char h[65];
		xfer_hex(r, (unsigned)SSL_get_server_random(s, r, sizeof(r)), h);
		fprintf(keylog_file, "SERVER_RANDOM %.64s %s\n", line + 14, h);
	}
	fflush(keylog_file);
}

/* --info-cb: a program's own info callback, which must keep running. */
static void info_line(const SSL *s, int where, int ret)
{
	(void)s, (void)ret;
	if (where & SSL_CB_HANDSHAKE_DONE)
		fprintf(stderr, "tls_xfer: info callback: handshake done\n");
}

/* --msg-cb: the program's own message callback (engine = shim puts its
 * record counter in front of it), which must keep running too. */
static void msg_line(int write_p, int version, int content_type,
		     const void *buf, size_t len, SSL *s, void *arg)
{
	(void)version, (void)s, (void)arg;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_FINISHED)
		fprintf(stderr, "tls_xfer: message callback: peer's Finished\n");
}

/* --record-sizes: every record header libssl reads. */
static void record_size_cb(int write_p, int version, int content_type,
			   const void *buf, size_t len, SSL *s, void *arg)
{
	(void)version, (void)arg;
	const unsigned char *h = buf;
	if (write_p || content_type != SSL3_RT_HEADER || len < 5)
		return;
	unsigned n = (unsigned)h[3] << 8 | h[4];
	records_in++;
	if (n > max_record_in)
		max_record_in = n;
	/* TLS 1.3 (outer type application_data, 16-byte AEAD tag): the inner
	 * plaintext is content + type byte + padding. libssl pads it to a
	 * multiple of the block unless it is already 16 KiB or more. */
	if (pad_block && h[0] == SSL3_RT_APPLICATION_DATA &&
	    SSL_version(s) == TLS1_3_VERSION && n > 16) {
		unsigned inner = n - 16;
		if (inner < SSL3_RT_MAX_PLAIN_LENGTH && inner % pad_block)
			unpadded_in++;
	}
}

static SSL_CTX *make_ctx(const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(o->server ? TLS_server_method()
					     : TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	int v = strcmp(o->tls, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, v);
	if (o->cipher) {
		int ok = v == TLS1_3_VERSION
				 ? SSL_CTX_set_ciphersuites(ctx, o->cipher)
				 : SSL_CTX_set_cipher_list(ctx, o->cipher);
		if (!ok)
			die("cipher");
	}
	/* The peer may reuse this binary with or without the shim, so keep
	 * the SSL defaults: no SSL_OP_ENABLE_KTLS here, ever. */
	if (o->server &&
	    (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1))
		die("certificate");
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (o->info_cb && strcmp(o->info_cb, "ctx") == 0)
		SSL_CTX_set_info_callback(ctx, info_line);
	if (o->msg_cb && strcmp(o->msg_cb, "ctx") == 0)
		SSL_CTX_set_msg_callback(ctx, msg_line);
	if (o->record_sizes)
		SSL_CTX_set_msg_callback(ctx, record_size_cb);
	if (o->block_padding) {
		if (!SSL_CTX_set_block_padding(ctx, o->block_padding))
			die("--block-padding");
		pad_block = o->block_padding;
	}
	if (o->maxfraglen) {
		int mode = o->maxfraglen == 512	   ? TLSEXT_max_fragment_length_512
			   : o->maxfraglen == 1024 ? TLSEXT_max_fragment_length_1024
			   : o->maxfraglen == 2048 ? TLSEXT_max_fragment_length_2048
			   : o->maxfraglen == 4096 ? TLSEXT_max_fragment_length_4096
						   : -1;
		if (mode < 0 ||
		    !SSL_CTX_set_tlsext_max_fragment_length(ctx, mode))
			die("--maxfraglen: 512, 1024, 2048 or 4096");
	}
	if (o->keylog) {
		keylog_file = fopen(o->keylog, "a");
		if (!keylog_file)
			die("--keylog");
		SSL_CTX_set_keylog_callback(ctx, keylog_line);
	}
	return ctx;
}

static void run_conn(const struct opts *o, SSL_CTX *ctx, int fd, int conn)
{
	if (o->fork_conns) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid > 0) {
			int st = 0;
			close(fd);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			fprintf(stderr, "tls_xfer: conn=%d %s=%d\n", conn,
				WIFSIGNALED(st) ? "signal" : "exit",
				WIFSIGNALED(st) ? WTERMSIG(st)
						: WEXITSTATUS(st));
			return;
		}
		struct opts child = *o;
		child.fork_conns = 0;
		run_conn(&child, ctx, fd, conn);
		fflush(NULL);
		_exit(0);
	}
	if (!o->blocking)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* --reuse-ssl: one SSL for every connection, SSL_clear()ed in
	 * between, as servers that pool their SSL objects do. */
	static SSL *pooled;
	SSL *s = o->reuse_ssl && pooled ? pooled : SSL_new(ctx);
	if (s == pooled && !SSL_clear(s))
		die_ssl("SSL_clear", s, 0);
	if (o->info_cb && strcmp(o->info_cb, "ssl") == 0)
		SSL_set_info_callback(s, info_line);
	if (o->msg_cb && strcmp(o->msg_cb, "ssl") == 0)
		SSL_set_msg_callback(s, msg_line);
	if (o->ssl_block_padding >= 0 &&
	    !SSL_set_block_padding(s, (size_t)o->ssl_block_padding))
		die("--ssl-block-padding");
	BIO *own = o->own_bio ? xfer_own_bio(fd, o->own_bio) : NULL;
	if (o->own_bio && !own)
		die("--own-bio");
	if (own)
		SSL_set_bio(s, own, own);
	else
		SSL_set_fd(s, fd);
	transfer(o, s, fd, conn);
	if (o->reuse_ssl && conn + 1 < o->conns)
		pooled = s;
	else
		SSL_free(s);
	xfer_drain_to_eof(fd);
	close(fd);
}

int main(int argc, char **argv)
{
	/* A peer that drops the connection is an error to report (EPIPE),
	 * as servers treat it, not a death by signal: tests tell crashes
	 * apart by the signal. */
	signal(SIGPIPE, SIG_IGN);
	struct opts o = { .host = "127.0.0.1", .tls = "1.3", .conns = 1,
			  .chunk = 16384, .seed = 1, .ssl_block_padding = -1 };
	static const struct option lo[] = {
		{ "role", 1, 0, 'r' },	    { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' },	    { "cert", 1, 0, 'c' },
		{ "key", 1, 0, 'k' },	    { "cipher", 1, 0, 'C' },
		{ "tls", 1, 0, 't' },	    { "send", 1, 0, 's' },
		{ "seed", 1, 0, 'S' },	    { "conns", 1, 0, 'n' },
		{ "chunk", 1, 0, 'b' },	    { "blocking", 0, 0, 'B' },
		{ "key-update", 0, 0, 'U' }, { "recv-until", 1, 0, 'R' },
		{ "text", 0, 0, 'T' },	    { "sendfile", 1, 0, 'F' },
		{ "sendfile-nooff", 0, 0, 'O' }, { "keylog", 1, 0, 'K' },
		{ "hold", 0, 0, 'H' }, { "key-updates", 1, 0, 'u' },
		{ "info-cb", 1, 0, 'I' },   { "msg-cb", 1, 0, 'M' },
		{ "maxfraglen", 1, 0, 'L' }, { "record-sizes", 0, 0, 'Z' },
		{ "recv-file", 1, 0, 'W' }, { "key-update-burst", 1, 0, 'Y' },
		{ "fork", 0, 0, 'P' },	    { "reuse-ssl", 0, 0, 'X' },
		{ "block-padding", 1, 0, 'D' }, { "ssl-block-padding", 1, 0, 'G' },
		{ "own-bio", 1, 0, 'o' },
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
		case 'n': o.conns = atoi(optarg); break;
		case 'b': o.chunk = strtoull(optarg, NULL, 0); break;
		case 'B': o.blocking = 1; break;
		case 'U': o.key_update = 1; break;
		case 'u': o.key_update = atoi(optarg); break;
		case 'T': o.text = 1; break;
		case 'F': o.sendfile_path = optarg; break;
		case 'O': o.sendfile_nooff = 1; break;
		case 'K': o.keylog = optarg; break;
		case 'H': o.hold = 1; break;
		case 'I': o.info_cb = optarg; break;
		case 'M': o.msg_cb = optarg; break;
		case 'L': o.maxfraglen = atoi(optarg); break;
		case 'Z': o.record_sizes = 1; break;
		case 'W': o.recv_file = optarg; break;
		case 'Y': o.key_update_burst = atoi(optarg); break;
		case 'P': o.fork_conns = 1; break;
		case 'X': o.reuse_ssl = 1; break;
		case 'D': o.block_padding = strtoull(optarg, NULL, 0); break;
		case 'G': o.ssl_block_padding = strtol(optarg, NULL, 0); break;
		case 'R': o.recv_until = strtoull(optarg, NULL, 0); break;
		case 'o': o.own_bio = optarg; break;
		default: fprintf(stderr, "tls_xfer: bad option\n"); return 2;
		}
	}
	if (o.chunk == 0 || o.conns < 1) {
		fprintf(stderr, "tls_xfer: --chunk and --conns must be > 0\n");
		return 2;
	}
	SSL_CTX *ctx = make_ctx(&o);
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
		for (int i = 0; i < o.conns; i++) {
			int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				die("accept");
			run_conn(&o, ctx, fd, i);
		}
		close(ls);
	} else {
		for (int i = 0; i < o.conns; i++) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
				die("connect");
			run_conn(&o, ctx, fd, i);
		}
	}
	SSL_CTX_free(ctx);
	if (o.hold) {
		char b[256];
		printf("HOLD %d\n", (int)getpid());
		fflush(stdout);
		while (read(0, b, sizeof(b)) > 0)
			;
	}
	return 0;
}
