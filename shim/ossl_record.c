#define _GNU_SOURCE
#include "ossl_record.h"

#include <errno.h>
#include <limits.h>
#include <linux/tls.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"
#include "engine_state.h"
#include "fdtab.h"
#include "log.h"
#include "ossl.h"
#include "real.h"
#include "record_io.h"
#include "session.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define CT_CHANGE_CIPHER_SPEC 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPLICATION_DATA 23
#define HS_HELLO_REQUEST 0
#define HS_CLIENT_HELLO 1
#define HS_NEW_SESSION_TICKET 4
#define HS_KEY_UPDATE 24
#define AL_WARNING 1
#define AL_FATAL 2
#define AD_CLOSE_NOTIFY 0
#define AD_UNEXPECTED_MESSAGE 10
#define AD_BAD_RECORD_MAC 20
#define AD_RECORD_OVERFLOW 22
#define AD_DECODE_ERROR 50
#define AD_USER_CANCELED 90
#define AD_NO_RENEGOTIATION 100
/* The most a kernel recvmsg() returns for one record, and all the rest of
 * a record we could be asked to hold for SSL_peek or a short SSL_read. */
#define REC_MAX 16384
#define CONTINUE INT_MIN

atomic_int ktls_orl_active;
atomic_int ktls_orl_ssl_bio;

struct ktls_orl {
	int fd;
	uint16_t version;
	enum ktls_cipher kc;
	uint8_t server;
	uint8_t failed;        /* fatal: every call fails, as OpenSSL's would */
	uint8_t ku_owed;       /* KeyUpdate to send first: 0, or 1 + request */
	uint8_t alert_pending; /* close_notify still to go out (EAGAIN) */
	int err;               /* SSL_get_error() of the last call that failed */
	size_t wr_done;        /* of a non-blocking SSL_write being retried */
	uint8_t *rbuf;         /* data read but not yet returned (REC_MAX) */
	size_t roff, rlen;
};

struct ktls_orl *ktls_orl_new(int fd, uint16_t version, enum ktls_cipher kc,
			      int server)
{
	struct ktls_orl *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->fd = fd;
	o->version = version;
	o->kc = kc;
	o->server = (uint8_t)(server != 0);
	return o;
}

void ktls_orl_free(struct ktls_orl *o)
{
	if (!o)
		return;
	if (o->rbuf) {
		/* Plaintext the program never read. */
		ktls_ossl.OPENSSL_cleanse(o->rbuf, REC_MAX);
		free(o->rbuf);
	}
	free(o);
}

struct ktls_orl *ktls_orl_lookup(const SSL *s)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	struct ktls_orl *o = k ? k->orl : NULL;
	if (!o)
		return NULL;
	/* Only while the fd is still the one we moved: a closed (maybe
	 * reused) number leaves the SSL to OpenSSL, as it would be without
	 * us. */
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (!e || !(atomic_load(&e->flags) & KTLS_FD_OWN) ||
	    atomic_load(&e->keys) != (uintptr_t)k)
		return NULL;
	return o;
}

/* ---- OpenSSL's error conventions ------------------------------------- */

static void raise_ssl(int reason)
{
	ktls_ossl.ERR_new();
	ktls_ossl.ERR_set_debug("ktls-shim", 0, "record layer over kTLS");
	ktls_ossl.ERR_set_error(ERR_LIB_SSL, reason, NULL);
}

static int want(struct ktls_orl *o, int err)
{
	o->err = err;
	return -1;
}

static int syscall_error(struct ktls_orl *o)
{
	o->err = SSL_ERROR_SYSCALL;
	return -1;
}

static int is_retry(int err)
{
	/* What OpenSSL's socket BIO treats as "try again". */
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static void add_shutdown(SSL *s, int bits)
{
	ktls_ossl.SSL_set_shutdown(s, ktls_ossl.SSL_get_shutdown(s) | bits);
}

/* ---- records through the kernel --------------------------------------- */

/* OpenSSL's socket BIO writes with write(): SIGPIPE as it would. */
static ssize_t send_record(struct ktls_orl *o, uint8_t type, const void *body,
			   size_t len)
{
	return ktls_record_send(o->fd, type, body, len, 0);
}

static int send_alert(struct ktls_orl *o, uint8_t level, uint8_t desc)
{
	uint8_t body[2] = { level, desc };
	return send_record(o, CT_ALERT, body, sizeof(body)) ==
			       (ssize_t)sizeof(body)
		       ? 0
		       : -1;
}

/* A fatal error: the alert OpenSSL would send (desc < 0: none), its
 * error on the queue, and every later call fails. */
static int fatal(struct ktls_orl *o, int desc, int reason)
{
	int saved = errno;
	if (desc >= 0 && !o->failed)
		(void)send_alert(o, AL_FATAL, (uint8_t)desc);
	o->failed = 1;
	raise_ssl(reason);
	o->err = SSL_ERROR_SSL;
	errno = saved;
	return -1;
}

static void count(struct ktls_orl *o, enum ktls_io io, size_t n)
{
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (e)
		ktls_sess_count(e, io, n);
}

/* Our KeyUpdate through the kernel, then the kernel's next TX key. 0, or
 * -1 with the error set (WANT_WRITE: nothing went out, retry). */
static int flush_key_update(struct ktls_orl *o)
{
	if (!o->ku_owed)
		return 0;
	uint8_t msg[5] = { HS_KEY_UPDATE, 0, 0, 1, (uint8_t)(o->ku_owed - 1) };
	ssize_t n = send_record(o, CT_HANDSHAKE, msg, sizeof(msg));
	if (n < 0)
		return is_retry(errno) ? want(o, SSL_ERROR_WANT_WRITE)
				       : syscall_error(o);
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (n != (ssize_t)sizeof(msg) || !e) {
		ktls_err("fd=%d: TLS 1.3 KeyUpdate only partly sent; failing "
			 "this connection",
			 o->fd);
		return fatal(o, -1, ERR_R_INTERNAL_ERROR);
	}
	o->ku_owed = 0;
	/* Rekeys the kernel, or poisons the fd (and says why). */
	ktls_engine_after_key_update_sent(o->fd, e);
	atomic_fetch_and(&e->flags, ~(uint32_t)KTLS_FD_REKEY_DUE);
	if (atomic_load(&e->flags) & KTLS_FD_POISONED)
		return fatal(o, -1, ERR_R_INTERNAL_ERROR);
	return 0;
}

/* ---- reading ----------------------------------------------------------- */

static int key_update_received(struct ktls_orl *o, const uint8_t *m,
			       size_t len, int at_start)
{
	const char *why = NULL;
	if (len != 5 || m[4] > 1)
		return fatal(o, AD_DECODE_ERROR, SSL_R_BAD_KEY_UPDATE);
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (!at_start)
		why = "behind another message in one record, where the kernel "
		      "does not look for it";
	else if (!ktls_engine_kernel_rekeys())
		why = "this kernel cannot take the next key (6.14+ can)";
	else if (!e || ktls_engine_rekey(o->fd, e, 1) != 0)
		why = "installing the next key failed";
	if (why) {
		ktls_err("fd=%d: TLS 1.3 KeyUpdate from the peer: %s; failing "
			 "this connection rather than reading under a stale "
			 "key",
			 o->fd, why);
		return fatal(o, -1, SSL_R_BAD_KEY_UPDATE);
	}
	ktls_dbg("fd=%d: TLS 1.3 KeyUpdate received; next RX key installed",
		 o->fd);
	/* RFC 8446 4.6.3: ours before our next data. Sent now where it can
	 * be (as OpenSSL does from SSL_read), else with the next write. */
	if (m[4] && o->ku_owed == 0) {
		if (!ktls_engine_tx_rekey_ready(e)) {
			ktls_err("fd=%d: the peer asked for a TLS 1.3 KeyUpdate "
				 "and the kernel cannot take our next TX key; "
				 "failing this connection",
				 o->fd);
			return fatal(o, -1, SSL_R_BAD_KEY_UPDATE);
		}
		o->ku_owed = 1;
		int saved = errno;
		if (flush_key_update(o) != 0 && o->failed)
			return -1;
		errno = saved;
	}
	return CONTINUE;
}

static int handshake_record(struct ktls_orl *o, const uint8_t *p, size_t n)
{
	static atomic_int said_ticket;
	size_t off = 0;
	while (off < n) {
		if (n - off < 4)
			return fatal(o, AD_UNEXPECTED_MESSAGE,
				     SSL_R_UNEXPECTED_MESSAGE);
		size_t len = 4 + ((size_t)p[off + 1] << 16 |
				  (size_t)p[off + 2] << 8 | p[off + 3]);
		/* A message split across records: nothing a peer sends after
		 * the handshake needs that. */
		if (len > n - off)
			return fatal(o, AD_UNEXPECTED_MESSAGE,
				     SSL_R_UNEXPECTED_MESSAGE);
		uint8_t t = p[off];
		int r = CONTINUE;
		if (o->version == TLS1_3_VERSION) {
			if (t == HS_NEW_SESSION_TICKET && !o->server) {
				if (!atomic_exchange(&said_ticket, 1))
					ktls_dbg("fd=%d: TLS 1.3 NewSessionTicket "
						 "read by the kernel is dropped: "
						 "libssl without kTLS cannot take "
						 "it, so this session cannot be "
						 "resumed",
						 o->fd);
			} else if (t == HS_KEY_UPDATE) {
				r = key_update_received(o, p + off, len,
							off == 0);
			} else {
				r = fatal(o, AD_UNEXPECTED_MESSAGE,
					  SSL_R_UNEXPECTED_MESSAGE);
			}
		} else if ((t == HS_HELLO_REQUEST && !o->server) ||
			   (t == HS_CLIENT_HELLO && o->server)) {
			/* What OpenSSL answers with SSL_OP_NO_RENEGOTIATION,
			 * which a moved session has. */
			(void)send_alert(o, AL_WARNING, AD_NO_RENEGOTIATION);
		} else {
			r = fatal(o, AD_UNEXPECTED_MESSAGE,
				  SSL_R_UNEXPECTED_MESSAGE);
		}
		if (r != CONTINUE)
			return r;
		off += len;
	}
	return CONTINUE;
}

static int control_record(struct ktls_orl *o, SSL *s, int type,
			  const uint8_t *p, size_t n)
{
	if (type == CT_HANDSHAKE)
		return handshake_record(o, p, n);
	if (type != CT_ALERT)
		return fatal(o, AD_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_MESSAGE);
	if (n != 2)
		return fatal(o, AD_DECODE_ERROR, SSL_R_BAD_LENGTH);
	if (p[1] == AD_CLOSE_NOTIFY) {
		add_shutdown(s, SSL_RECEIVED_SHUTDOWN);
		o->err = SSL_ERROR_ZERO_RETURN;
		return 0;
	}
	/* Warnings are read past, as OpenSSL does; in TLS 1.3 only
	 * user_canceled is one. */
	if (o->version == TLS1_3_VERSION ? p[1] == AD_USER_CANCELED
					  : p[0] == AL_WARNING)
		return CONTINUE;
	add_shutdown(s, SSL_RECEIVED_SHUTDOWN);
	return fatal(o, -1, SSL_AD_REASON_OFFSET + p[1]);
}

static int recv_error(struct ktls_orl *o, int err)
{
	errno = err;
	if (is_retry(err))
		return want(o, SSL_ERROR_WANT_READ);
	switch (err) {
	case EBADMSG: /* the record did not authenticate */
		return fatal(o, AD_BAD_RECORD_MAC,
			     SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
	case EMSGSIZE:
		return fatal(o, AD_RECORD_OVERFLOW,
			     SSL_R_ENCRYPTED_LENGTH_TOO_LONG);
	case EKEYEXPIRED: /* paused for a KeyUpdate we did not follow */
		return fatal(o, -1, SSL_R_BAD_KEY_UPDATE);
	default:
		return syscall_error(o);
	}
}

static int eof(struct ktls_orl *o, SSL *s)
{
	/* Without close_notify, a truncation: unless the program said it
	 * does not care (SSL_OP_IGNORE_UNEXPECTED_EOF). */
	if (ktls_ossl.SSL_get_options(s) & SSL_OP_IGNORE_UNEXPECTED_EOF) {
		add_shutdown(s, SSL_RECEIVED_SHUTDOWN);
		o->err = SSL_ERROR_ZERO_RETURN;
		return 0;
	}
	fatal(o, -1, SSL_R_UNEXPECTED_EOF_WHILE_READING);
	return 0;
}

int ktls_orl_read(struct ktls_orl *o, SSL *s, void *buf, size_t n, int peek)
{
	if (n > INT_MAX)
		n = INT_MAX;
	for (;;) {
		if (o->rlen > o->roff) {
			size_t k = o->rlen - o->roff < n ? o->rlen - o->roff : n;
			memcpy(buf, o->rbuf + o->roff, k);
			if (!peek)
				o->roff += k;
			o->err = SSL_ERROR_NONE;
			return (int)k;
		}
		if (o->failed) {
			raise_ssl(SSL_R_PROTOCOL_IS_SHUTDOWN);
			return want(o, SSL_ERROR_SSL);
		}
		if (ktls_ossl.SSL_get_shutdown(s) & SSL_RECEIVED_SHUTDOWN) {
			o->err = SSL_ERROR_ZERO_RETURN;
			return 0;
		}
		if (!n) {
			o->err = SSL_ERROR_NONE;
			return 0;
		}
		/* Straight into the caller's buffer when a whole record fits;
		 * else into ours, the rest kept for the next call (which is
		 * also what SSL_pending() reports, as OpenSSL's would). */
		int direct = !peek && n >= REC_MAX;
		if (!direct && !o->rbuf && !(o->rbuf = malloc(REC_MAX))) {
			raise_ssl(ERR_R_MALLOC_FAILURE);
			return want(o, SSL_ERROR_SSL);
		}
		uint8_t *dst = direct ? buf : o->rbuf;
		int type;
		ssize_t r = ktls_record_recv(o->fd, dst, direct ? n : REC_MAX, &type);
		if (r < 0)
			return recv_error(o, errno);
		if (r == 0)
			return eof(o, s);
		if (type == CT_APPLICATION_DATA) {
			count(o, KTLS_IO_READ, (size_t)r);
			if (direct) {
				o->err = SSL_ERROR_NONE;
				return (int)r;
			}
			o->roff = 0;
			o->rlen = (size_t)r;
			continue;
		}
		/* The kernel returns one whole control record per call into
		 * a buffer that can hold any record. */
		int rc = control_record(o, s, type, dst, (size_t)r);
		if (rc != CONTINUE)
			return rc;
		/* OpenSSL, having handled a post-handshake message (a ticket,
		 * a KeyUpdate), reads on only with SSL_MODE_AUTO_RETRY; else
		 * WANT_READ, blocking socket or not. Programs that clear it
		 * (openssl s_client) go back to select() for their stdin. */
		if (type == CT_HANDSHAKE &&
		    !(ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, 0, NULL) &
		      SSL_MODE_AUTO_RETRY))
			return want(o, SSL_ERROR_WANT_READ);
	}
}

size_t ktls_orl_pending(const struct ktls_orl *o)
{
	return o->rlen - o->roff;
}

/* ---- writing ----------------------------------------------------------- */

static int write_refused(struct ktls_orl *o, SSL *s)
{
	if (o->failed ||
	    (ktls_ossl.SSL_get_shutdown(s) & SSL_SENT_SHUTDOWN)) {
		raise_ssl(SSL_R_PROTOCOL_IS_SHUTDOWN);
		return want(o, SSL_ERROR_SSL);
	}
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (!e || (atomic_load(&e->flags) & KTLS_FD_POISONED)) {
		errno = EKEYEXPIRED;
		return syscall_error(o);
	}
	/* The TX key's byte budget ran out: a KeyUpdate first, where the
	 * kernel can take the next key. */
	if ((atomic_load_explicit(&e->flags, memory_order_relaxed) &
	     KTLS_FD_REKEY_DUE) &&
	    !o->ku_owed && ktls_engine_tx_rekey_ready(e)) {
		o->ku_owed = 1;
		ktls_dbg("fd=%d: %llu bytes under this TX key: KeyUpdate "
			 "scheduled",
			 o->fd,
			 (unsigned long long)atomic_load(&e->tx_key_bytes));
	}
	return flush_key_update(o);
}

int ktls_orl_write(struct ktls_orl *o, SSL *s, const void *buf, size_t n)
{
	if (n > INT_MAX)
		n = INT_MAX;
	if (write_refused(o, s) != 0)
		return -1;
	if (!n) {
		o->err = SSL_ERROR_NONE;
		return 0;
	}
	long mode = ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, 0, NULL);
	int partial = (mode & SSL_MODE_ENABLE_PARTIAL_WRITE) != 0;
	/* A retry after WANT_WRITE: the first wr_done bytes already went
	 * out, as the bytes of OpenSSL's pending record would have. */
	size_t done = o->wr_done;
	if (done > n) {
		o->wr_done = 0;
		raise_ssl(SSL_R_BAD_WRITE_RETRY);
		return want(o, SSL_ERROR_SSL);
	}
	ktls_real_ensure();
	while (done < n) {
		ssize_t w = ktls_real.write(o->fd, (const uint8_t *)buf + done,
					    n - done);
		if (w > 0) {
			count(o, KTLS_IO_WRITE, (size_t)w);
			done += (size_t)w;
			if (partial)
				break;
			continue;
		}
		if (w < 0 && is_retry(errno)) {
			o->wr_done = partial ? 0 : done;
			return want(o, SSL_ERROR_WANT_WRITE);
		}
		o->wr_done = 0;
		return syscall_error(o);
	}
	o->wr_done = 0;
	o->err = SSL_ERROR_NONE;
	return (int)done;
}

/* ---- the rest ------------------------------------------------------------ */

int ktls_orl_get_error(const struct ktls_orl *o, int ret)
{
	if (ret > 0)
		return SSL_ERROR_NONE;
	unsigned long l = ktls_ossl.ERR_peek_error();
	if (l)
		return ERR_GET_LIB(l) == ERR_LIB_SYS ? SSL_ERROR_SYSCALL
						     : SSL_ERROR_SSL;
	return o->err == SSL_ERROR_NONE || o->err == SSL_ERROR_SSL
		       ? SSL_ERROR_SYSCALL
		       : o->err;
}

int ktls_orl_shutdown(struct ktls_orl *o, SSL *s)
{
	int sh = ktls_ossl.SSL_get_shutdown(s);
	if (ktls_ossl.SSL_get_quiet_shutdown(s)) {
		ktls_ossl.SSL_set_shutdown(s, SSL_SENT_SHUTDOWN |
						      SSL_RECEIVED_SHUTDOWN);
		return 1;
	}
	if (o->failed) {
		raise_ssl(SSL_R_SHUTDOWN_WHILE_IN_INIT);
		return want(o, SSL_ERROR_SSL);
	}
	if (!(sh & SSL_SENT_SHUTDOWN) || o->alert_pending) {
		add_shutdown(s, SSL_SENT_SHUTDOWN);
		o->alert_pending = 1;
		if (send_alert(o, AL_WARNING, AD_CLOSE_NOTIFY) != 0)
			return is_retry(errno) ? want(o, SSL_ERROR_WANT_WRITE)
					       : syscall_error(o);
		o->alert_pending = 0;
	} else if (!(sh & SSL_RECEIVED_SHUTDOWN)) {
		/* Called again: wait for the peer's close_notify; data
		 * before it is dropped, as OpenSSL does once it has sent
		 * its own. */
		uint8_t scratch[4096];
		int r;
		while ((r = ktls_orl_read(o, s, scratch, sizeof(scratch), 0)) >
		       0)
			;
		ktls_ossl.OPENSSL_cleanse(scratch, sizeof(scratch));
		if (!(ktls_ossl.SSL_get_shutdown(s) & SSL_RECEIVED_SHUTDOWN))
			return -1; /* the read's error stands */
	}
	o->err = SSL_ERROR_NONE;
	return ktls_ossl.SSL_get_shutdown(s) ==
		       (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
		       ? 1
		       : 0;
}

int ktls_orl_key_update(struct ktls_orl *o, SSL *s, int type)
{
	(void)s;
	if (o->version != TLS1_3_VERSION) {
		raise_ssl(SSL_R_WRONG_SSL_VERSION);
		return 0;
	}
	if (type != SSL_KEY_UPDATE_NOT_REQUESTED &&
	    type != SSL_KEY_UPDATE_REQUESTED) {
		raise_ssl(SSL_R_INVALID_KEY_UPDATE_TYPE);
		return 0;
	}
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (!e || !ktls_engine_tx_rekey_ready(e)) {
		ktls_warn("fd=%d: refusing SSL_key_update: the kernel holds the "
			  "TX key and cannot take the next one (6.14+ can)",
			  o->fd);
		raise_ssl(SSL_R_BAD_KEY_UPDATE);
		return 0;
	}
	/* Sent with the next write or SSL_do_handshake(), as OpenSSL's is. */
	uint8_t want_ = (uint8_t)(1 + (type == SSL_KEY_UPDATE_REQUESTED));
	if (o->ku_owed < want_)
		o->ku_owed = want_;
	return 1;
}

int ktls_orl_handshake(struct ktls_orl *o, SSL *s)
{
	(void)s;
	if (o->failed) {
		raise_ssl(SSL_R_PROTOCOL_IS_SHUTDOWN);
		return want(o, SSL_ERROR_SSL);
	}
	if (flush_key_update(o) != 0)
		return -1;
	o->err = SSL_ERROR_NONE;
	return 1;
}

int ktls_orl_fenced(BIO *b, int writing)
{
	static atomic_int said;
	if (!b || ktls_ossl.BIO_method_type(b) != BIO_TYPE_SOCKET)
		return 0;
	int fd = (int)ktls_ossl.BIO_ctrl(b, BIO_C_GET_FD, 0, NULL);
	struct ktls_fd *e = ktls_fd_tracked(fd);
	if (!e || !(atomic_load(&e->flags) & KTLS_FD_OWN))
		return 0;
	if (!atomic_exchange(&said, 1))
		ktls_err("fd=%d: OpenSSL's own record layer tried to %s a "
			 "socket whose records the kernel handles (a libssl "
			 "call the shim does not interpose); refused",
			 fd, writing ? "write to" : "read from");
	return 1;
}
