/*
 * The libc calls on a socket whose TLS session OpenSSL runs, as the shim
 * polices them: the setsockopt() calls OpenSSL's kTLS makes, a KeyUpdate
 * OpenSSL 3.0 sends through the kernel, recvmsg() for a TLS 1.3 RX the
 * shim's engine moved, and sendfile() (zero copy through kernel TX, or
 * emulated through SSL_write: never plaintext).
 */
#define _GNU_SOURCE
#include "openssl/session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/policy.h"
#include "core/real.h"
#include "core/shim.h"
#include "core/stats.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/padding.h"
#include "openssl/sendfile_emul.h"
#include "session/fd.h"
#include "tls/record.h"

static uint64_t socket_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t n = sizeof(c);
	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &n) == 0 ? c : 0;
}

/*
 * OpenSSL asks for the ULP again before each direction's keys: EEXIST is
 * the same session. 3.2+ also asks at every key change after the
 * handshake, where the ULP may have failed the first time (a kernel
 * without tls): the same socket (SO_COOKIE) and a settled session is that
 * retry, not a new session (one connection with 3 KeyUpdates counted 4
 * sessions before). Anything else starts a new one, and whatever an
 * earlier socket with this number left is stale.
 */
static void ulp_asked(int fd, struct ktls_fd *e, int rc, int err)
{
	if (err == EEXIST)
		return;
	uint64_t c = socket_cookie(fd);
	if (c && c == atomic_load(&e->sock_cookie) &&
	    (atomic_load(&e->flags) & KTLS_FD_FINAL))
		return;
	ktls_fd_reset(e);
	atomic_store(&e->ulp_err, ktls_errno8(err));
	atomic_store(&e->sock_cookie, c);
	ktls_fd_set_tls(e, KTLS_FD_ULP_TRIED | (rc == 0 ? KTLS_FD_ULP : 0));
}

int ktls_sess_setsockopt(int fd, int level, int name, const void *val,
			 socklen_t len)
{
	struct ktls_fd *e = ktls_fd_get(fd);
	int rc, err;

	if (!e) {
		/* Beyond the table: only the engine's own probe, which must
		 * still be told it was seen. */
		if (level == SOL_TLS &&
		    ktls_engine_check_setsockopt(fd, name, val, len) < 0) {
			errno = EINVAL;
			return -1;
		}
		return KTLS_REAL(setsockopt)(fd, level, name, val, len);
	}
	if (level == IPPROTO_TCP && name == TCP_ULP) {
		if (!val || len < 3 || memcmp(val, "tls", 3) != 0)
			return KTLS_REAL(setsockopt)(fd, level, name, val, len);
		rc = KTLS_REAL(setsockopt)(fd, level, name, val, len);
		err = rc ? errno : 0;
		ulp_asked(fd, e, rc, err);
		errno = err;
		return rc;
	}
	if (level != SOL_TLS || (name != TLS_TX && name != TLS_RX) || !val ||
	    len < sizeof(struct tls_crypto_info))
		return KTLS_REAL(setsockopt)(fd, level, name, val, len);

	if (ktls_engine_check_setsockopt(fd, name, val, len) < 0) {
		/* Our bytes went in through an OpenSSL whose internals we
		 * do not know: do not let them near the kernel. */
		errno = EINVAL;
		return -1;
	}
	/* Only the 4-byte header is looked at, never the key behind it. */
	struct tls_crypto_info hdr;
	memcpy(&hdr, val, sizeof(hdr));
	int rx = name == TLS_RX;
	enum ktls_cipher kc = ktls_cipher_by_kernel_type(hdr.cipher_type);
	ktls_fd_set_tls(e, rx ? KTLS_FD_RX_TRIED : KTLS_FD_TX_TRIED);
	if (!(ktls_cfg.directions & (rx ? KTLS_DIR_RX : KTLS_DIR_TX)) ||
	    !(ktls_cfg.versions & ktls_version_bit(hdr.version)) ||
	    kc == KTLS_CIPHER_NONE || !(ktls_cfg.ciphers & KTLS_CIPHER_BIT(kc))) {
		/* OpenSSL treats any failure here as "stay in userspace";
		 * explain() later names the config key that said no. */
		errno = EOPNOTSUPP;
		return -1;
	}
	uint32_t f = atomic_load(&e->flags);
	if ((f & KTLS_FD_FINAL) && (f & (rx ? KTLS_FD_RX : KTLS_FD_TX)))
		return ktls_sess_lib_rekey(fd, name, val, len);
	/* The kernel adds no TLS 1.3 padding; refused, libssl stays in
	 * userspace and pads (finalize() says padding-requested). */
	if (!rx && ktls_pad_refuses_tx(fd, hdr.version)) {
		ktls_dbg("fd=%d: libssl's TLS_TX refused: the program asked "
			 "for TLS 1.3 record padding",
			 fd);
		errno = EOPNOTSUPP;
		return -1;
	}
	if (rx && ktls_sess_lib_rx_gate(hdr.version) != KTLS_R_MOVED) {
		errno = EOPNOTSUPP; /* explain() names the gate */
		return -1;
	}
	rc = KTLS_REAL(setsockopt)(fd, level, name, val, len);
	err = rc ? errno : 0;
	atomic_store(rx ? &e->rx_err : &e->tx_err, ktls_errno8(err));
	errno = err;
	return rc;
}

static int is_key_update(struct ktls_fd *e, const struct msghdr *m)
{
	uint32_t f = atomic_load(&e->flags);
	return (f & KTLS_FD_TX) && atomic_load(&e->version) == KTLS_TLS13 &&
	       m && ktls_cmsg_record_type(m, TLS_SET_RECORD_TYPE) ==
			    KTLS_CT_HANDSHAKE &&
	       m->msg_iovlen >= 1 && m->msg_iov && m->msg_iov[0].iov_len >= 1 &&
	       ((const uint8_t *)m->msg_iov[0].iov_base)[0] ==
		       KTLS_HS_KEY_UPDATE;
}

/*
 * OpenSSL 3.0 with kTLS TX sends a TLS 1.3 KeyUpdate through the kernel and
 * then switches to the next key in userspace only (openssl#16307): every
 * later record would be sealed with a key the peer has dropped. Where the
 * kernel can rekey, the engine gives it the next key right after the
 * KeyUpdate went out (ktls_sess_after_sendmsg); elsewhere refuse the
 * KeyUpdate itself, so the connection fails loudly and nothing goes out
 * under the wrong key.
 */
int ktls_sess_sendmsg_refused(int fd, struct ktls_fd *e, const struct msghdr *m)
{
	if (ktls_fd_send_refused(e))
		return 1;
	if (!is_key_update(e, m) || ktls_sess_tx_rekey_ok(e))
		return 0;
	ktls_err("fd=%d: TLS 1.3 KeyUpdate: %s; failing this connection "
		 "rather than sending under a stale key",
		 fd, ktls_sess_tx_rekey_why_not());
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
	return ktls_fd_send_refused(e);
}

void ktls_sess_after_sendmsg(int fd, struct ktls_fd *e, const struct msghdr *m,
			     ssize_t n)
{
	if (n <= 0 || !is_key_update(e, m))
		return;
	int saved = errno; /* the program's, from its sendmsg() */
	size_t total = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		total += m->msg_iov[i].iov_len;
	if ((size_t)n == total) {
		/* 3.2+ installs the next key itself (ktls_sess_lib_rekey). */
		if (!ktls_ossl.rekeys_itself)
			ktls_engine_after_key_update_sent(fd, e);
		errno = saved;
		return;
	}
	/* Part of a KeyUpdate is in the kernel; the rest would follow under
	 * whatever key we choose, and neither choice is right for all of
	 * it. Never seen with OpenSSL (5 bytes); fail rather than guess. */
	ktls_err("fd=%d: TLS 1.3 KeyUpdate only partly sent; refusing to send "
		 "on this connection",
		 fd);
	atomic_fetch_or(&e->flags, KTLS_FD_POISONED);
	errno = saved;
}

ssize_t ktls_sess_recvmsg(int fd, struct ktls_fd *e, struct msghdr *m,
			  int flags)
{
	ssize_t n;
	int type = -1;
	if (atomic_load_explicit(&e->flags, memory_order_relaxed) &
	    KTLS_FD_RX_SHIM13) {
		n = ktls_engine_recvmsg(fd, e, m, flags, KTLS_REAL(recvmsg),
					&type);
		/* The engine appended the record type: one byte more. */
		if (n > 1 && type == KTLS_CT_APPLICATION_DATA)
			ktls_fd_count(e, KTLS_IO_READ, (size_t)n - 1);
		return n;
	}
	n = KTLS_REAL(recvmsg)(fd, m, flags);
	type = ktls_cmsg_record_type(m, TLS_GET_RECORD_TYPE);
	/* Alerts and handshake records are not the program's bytes. */
	if (n > 0 && (type < 0 || type == KTLS_CT_APPLICATION_DATA))
		ktls_fd_count(e, KTLS_IO_READ, (size_t)n);
	return n;
}

static ssize_t emul_read(int fd, void *b, size_t n)
{
	return KTLS_REAL(read)(fd, b, n); /* not counted: it is file input */
}

static int emul_ssl_write(SSL *s, const void *b, int n)
{
	return ktls_ossl.SSL_write(s, b, n);
}

static int emul_ssl_get_error(const SSL *s, int r)
{
	return ktls_ossl.SSL_get_error(s, r);
}

ssize_t ktls_sess_sendfile(struct ktls_fd *e, int out_fd, int in_fd,
			   off_t *offset, size_t count,
			   ssize_t (*real)(int, int, off_t *, size_t))
{
	if (ktls_fd_send_refused(e))
		return -1;
	uint32_t f = atomic_load(&e->flags);
	SSL *s = (SSL *)atomic_load(&e->ssl);
	if (!(f & KTLS_FD_TX) && (f & KTLS_FD_NO_SSL)) {
		ktls_err("fd=%d: sendfile() refused: the session is in "
			 "userspace and the shim could not keep its SSL (out "
			 "of memory); a raw sendfile() would send plaintext",
			 out_fd);
		errno = ENOMEM;
		return -1;
	}
	if ((f & KTLS_FD_TX) || !(f & KTLS_FD_FINAL) || !s) {
		ssize_t n = real(out_fd, in_fd, offset, count);
		if (n > 0) {
			ktls_fd_count(e, KTLS_IO_WRITE, (size_t)n);
			if (f & KTLS_FD_TX)
				atomic_fetch_add(&ktls_stats.sendfile_kernel,
						 (unsigned long long)n);
		}
		return n;
	}
	/* A retried write after EAGAIN re-reads the same bytes into a
	 * buffer that may sit elsewhere: tell OpenSSL that is fine. */
	ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
			   NULL);
	static const struct ktls_emul_ops ops = {
		pread, emul_read, lseek, emul_ssl_write, emul_ssl_get_error,
	};
	ssize_t n = ktls_sendfile_emulate(&ops, s, in_fd, offset, count);
	if (n > 0)
		atomic_fetch_add(&ktls_stats.sendfile_emulated, (unsigned long long)n);
	return n;
}
