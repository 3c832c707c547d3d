/*
 * The shim's record layer for a libssl built without kTLS, over a socket
 * whose records are both in the kernel: the SSL_* calls it serves, with
 * OpenSSL's conventions (SSL_get_error, the error queue, shutdown bits),
 * and the write side. record_layer_read.c reads.
 */
#define _GNU_SOURCE
#include "openssl/record_layer.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/fdtab.h"
#include "core/log.h"
#include "core/real.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/engine_state.h"
#include "openssl/record_layer_state.h"
#include "openssl/session.h"
#include "session/keyupdate.h"
#include "tls/handshake.h"
#include "tls/record.h"

atomic_int ktls_orl_active;
atomic_int ktls_orl_ssl_bio;

struct ktls_orl *ktls_orl_new(int fd, uint16_t version, enum ktls_cipher kc,
			      int server, int io_flags)
{
	struct ktls_orl *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->fd = fd;
	o->version = version;
	o->kc = kc;
	o->server = (uint8_t)(server != 0);
	o->io_flags = io_flags;
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

void ktls_orl_raise_ssl(int reason)
{
	ktls_ossl.ERR_new();
	ktls_ossl.ERR_set_debug("ktls-shim", 0, "record layer over kTLS");
	ktls_ossl.ERR_set_error(ERR_LIB_SSL, reason, NULL);
}

int ktls_orl_want(struct ktls_orl *o, int err)
{
	o->err = err;
	return -1;
}

int ktls_orl_syscall_error(struct ktls_orl *o)
{
	o->err = SSL_ERROR_SYSCALL;
	return -1;
}

int ktls_orl_is_retry(int err)
{
	/* What OpenSSL's socket BIO treats as "try again". */
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

void ktls_orl_add_shutdown(SSL *s, int bits)
{
	ktls_ossl.SSL_set_shutdown(s, ktls_ossl.SSL_get_shutdown(s) | bits);
}

int ktls_orl_send_alert(struct ktls_orl *o, uint8_t level, uint8_t desc)
{
	/* OpenSSL's socket BIO writes with write(): SIGPIPE as it would;
	 * a program's own transport with its own flags. */
	return ktls_alert_send(o->fd, level, desc, o->io_flags) == 2 ? 0 : -1;
}

/* A fatal error: the alert OpenSSL would send (desc < 0: none), its
 * error on the queue, and every later call fails. */
int ktls_orl_fatal(struct ktls_orl *o, int desc, int reason)
{
	int saved = errno;
	if (desc >= 0 && !o->failed)
		(void)ktls_orl_send_alert(o, KTLS_AL_FATAL, (uint8_t)desc);
	o->failed = 1;
	ktls_orl_raise_ssl(reason);
	o->err = SSL_ERROR_SSL;
	errno = saved;
	return -1;
}

void ktls_orl_count(struct ktls_orl *o, enum ktls_io io, size_t n)
{
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (e)
		ktls_fd_count(e, io, n);
}

struct ktls_ku_ctx ktls_orl_ku_ctx(struct ktls_orl *o)
{
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	struct ktls_keys *k = e ? (struct ktls_keys *)atomic_load(&e->keys)
				: NULL;
	struct ktls_ku_ctx c = { .fd = o->fd, .kc = o->kc,
				 .sec = k ? &k->sec : NULL,
				 .kdf = ktls_engine_kdf() };
	return c;
}

/* Our KeyUpdate through the kernel, then the kernel's next TX key. 0, or
 * -1 with the error set (WANT_WRITE: nothing went out, retry). */
int ktls_orl_flush_key_update(struct ktls_orl *o)
{
	if (!o->ku_owed)
		return 0;
	struct ktls_ku_ctx c = ktls_orl_ku_ctx(o);
	switch (ktls_ku_send(&c, 0, o->ku_owed - 1)) {
	case KTLS_KU_SENT:
		o->ku_owed = 0;
		return 0;
	case KTLS_KU_NOT_SENT:
		return ktls_orl_is_retry(errno) ? ktls_orl_want(o, SSL_ERROR_WANT_WRITE)
				       : ktls_orl_syscall_error(o);
	default:
		return ktls_orl_fatal(o, -1, ERR_R_INTERNAL_ERROR);
	}
}

static int write_refused(struct ktls_orl *o, SSL *s)
{
	if (o->failed ||
	    (ktls_ossl.SSL_get_shutdown(s) & SSL_SENT_SHUTDOWN)) {
		ktls_orl_raise_ssl(SSL_R_PROTOCOL_IS_SHUTDOWN);
		return ktls_orl_want(o, SSL_ERROR_SSL);
	}
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (!e || (atomic_load(&e->flags) & KTLS_FD_POISONED)) {
		errno = EKEYEXPIRED;
		return ktls_orl_syscall_error(o);
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
	return ktls_orl_flush_key_update(o);
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
		ktls_orl_raise_ssl(SSL_R_BAD_WRITE_RETRY);
		return ktls_orl_want(o, SSL_ERROR_SSL);
	}
	ktls_real_ensure();
	while (done < n) {
		const uint8_t *p = (const uint8_t *)buf + done;
		ssize_t w = o->io_flags ? ktls_data_send(o->fd, p, n - done,
							 o->io_flags)
					: KTLS_REAL(write)(o->fd, p, n - done);
		if (w > 0) {
			ktls_orl_count(o, KTLS_IO_WRITE, (size_t)w);
			done += (size_t)w;
			if (partial)
				break;
			continue;
		}
		if (w < 0 && ktls_orl_is_retry(errno)) {
			o->wr_done = partial ? 0 : done;
			return ktls_orl_want(o, SSL_ERROR_WANT_WRITE);
		}
		o->wr_done = 0;
		return ktls_orl_syscall_error(o);
	}
	o->wr_done = 0;
	o->err = SSL_ERROR_NONE;
	return (int)done;
}

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
		ktls_orl_raise_ssl(SSL_R_SHUTDOWN_WHILE_IN_INIT);
		return ktls_orl_want(o, SSL_ERROR_SSL);
	}
	if (!(sh & SSL_SENT_SHUTDOWN) || o->alert_pending) {
		ktls_orl_add_shutdown(s, SSL_SENT_SHUTDOWN);
		o->alert_pending = 1;
		if (ktls_orl_send_alert(o, KTLS_AL_WARNING, KTLS_AD_CLOSE_NOTIFY) != 0)
			return ktls_orl_is_retry(errno) ? ktls_orl_want(o, SSL_ERROR_WANT_WRITE)
					       : ktls_orl_syscall_error(o);
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
		ktls_orl_raise_ssl(SSL_R_WRONG_SSL_VERSION);
		return 0;
	}
	if (type != SSL_KEY_UPDATE_NOT_REQUESTED &&
	    type != SSL_KEY_UPDATE_REQUESTED) {
		ktls_orl_raise_ssl(SSL_R_INVALID_KEY_UPDATE_TYPE);
		return 0;
	}
	struct ktls_fd *e = ktls_fd_tracked(o->fd);
	if (!e || !ktls_engine_tx_rekey_ready(e)) {
		ktls_warn("fd=%d: refusing SSL_key_update: the kernel holds the "
			  "TX key and cannot take the next one (6.14+ can)",
			  o->fd);
		ktls_orl_raise_ssl(SSL_R_BAD_KEY_UPDATE);
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
		ktls_orl_raise_ssl(SSL_R_PROTOCOL_IS_SHUTDOWN);
		return ktls_orl_want(o, SSL_ERROR_SSL);
	}
	if (ktls_orl_flush_key_update(o) != 0)
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
