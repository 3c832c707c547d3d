/*
 * ssl_peek: a TLS client that reads everything the server sends with
 * SSL_peek and SSL_read of many sizes, on a blocking socket, and checks
 * OpenSSL's read API against itself as it goes:
 *   - SSL_read returns the bytes SSL_peek showed, in order;
 *   - SSL_pending()/SSL_has_pending() agree, and a read of no more than
 *     SSL_pending() bytes is served whole (counted: pending_reads);
 *   - after the server's close_notify: SSL_read 0, SSL_ERROR_ZERO_RETURN,
 *     SSL_RECEIVED_SHUTDOWN; SSL_shutdown then completes with 1.
 * Prints "recv=N recv_sha256=H peeks=P pending_reads=R" (or dies with
 * exit 3 and why). Used by test_openssl_without_ktls.py against an
 * unshimmed tls_xfer server, with and without the shim.
 *
 *   ssl_peek PORT TLSVERSION(1.2|1.3)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "ssl_peek: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(3);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: ssl_peek PORT 1.2|1.3");
	int v = strcmp(argv[2], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(argv[1])) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("connect");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, v);
	SSL *s = SSL_new(ctx);
	SSL_set_fd(s, fd);
	if (SSL_connect(s) != 1)
		die("SSL_connect");

	static unsigned char pb[40000], rb[40000];
	static const int peek_sizes[] = { 1, 7, 300, 5000, 17000, 40000 };
	static const int read_sizes[] = { 1, 3, 1000, 20000, 40000, 2 };
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	unsigned long long total = 0, peeks = 0, pending_reads = 0;
	for (unsigned i = 0;; i++) {
		int n = SSL_peek(s, pb, peek_sizes[i % 6]);
		if (n <= 0) {
			if (SSL_get_error(s, n) != SSL_ERROR_ZERO_RETURN)
				die("SSL_peek failed");
			break;
		}
		peeks++;
		/* A second peek shows the same bytes. */
		int n2 = SSL_peek(s, rb, n);
		if (n2 != n || memcmp(pb, rb, (size_t)n) != 0)
			die("two peeks differ");
		int p = SSL_pending(s);
		if ((p > 0) != (SSL_has_pending(s) != 0))
			die("SSL_pending and SSL_has_pending disagree");
		int m = SSL_read(s, rb, read_sizes[i % 6]);
		if (m <= 0)
			die("SSL_read failed after a successful SSL_peek");
		if (memcmp(rb, pb, (size_t)(m < n ? m : n)) != 0)
			die("SSL_read returned other bytes than SSL_peek showed");
		if (p > 0 && read_sizes[i % 6] <= p) {
			if (m != read_sizes[i % 6])
				die("a read of pending bytes came back short");
			pending_reads++;
		}
		EVP_DigestUpdate(h, rb, (size_t)m);
		total += (unsigned long long)m;
	}
	if (!(SSL_get_shutdown(s) & SSL_RECEIVED_SHUTDOWN))
		die("close_notify read, but no SSL_RECEIVED_SHUTDOWN");
	if (SSL_read(s, rb, 10) != 0 ||
	    SSL_get_error(s, 0) != SSL_ERROR_ZERO_RETURN)
		die("SSL_read after close_notify is not ZERO_RETURN");
	int r = SSL_shutdown(s);
	if (r != 1)
		die("SSL_shutdown after both close_notify alerts is not 1");
	unsigned char md[32];
	char hex[65];
	EVP_DigestFinal_ex(h, md, NULL);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	printf("recv=%llu recv_sha256=%s peeks=%llu pending_reads=%llu\n",
	       total, hex, peeks, pending_reads);
	EVP_MD_CTX_free(h);
	SSL_free(s);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
