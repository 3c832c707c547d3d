/*
 * TLS 1.3 KeyUpdates on a session the shim's engine holds keys for, in
 * OpenSSL's terms: the peer's, read by the kernel inside OpenSSL 3.0's
 * recvmsg() (which also gets the inner content type it expects), and ours,
 * scheduled at the TX key's byte budget. The steps themselves are
 * session/keyupdate.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/policy.h"
#include "core/shim.h"
#include "core/stats.h"
#include "kernel/install.h"
#include "kernel/probe.h"
#include "kernel/record_io.h"
#include "kernel/uapi.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/engine_state.h"
#include "openssl/record_layer.h"
#include "openssl/session.h"
#include "session/keyupdate.h"
#include "tls/crypto_info.h"
#include "tls/handshake.h"
#include "tls/record.h"
#include "tls/tls12_keys.h"
#include "tls/tls13_keys.h"

static struct ktls_ku_ctx ku_ctx(int fd, struct ktls_keys *k)
{
	struct ktls_ku_ctx c = { .fd = fd,
				 .kc = k ? k->kc : KTLS_CIPHER_NONE,
				 .sec = k ? &k->sec : NULL,
				 .kdf = ktls_engine_kdf() };
	return c;
}

static struct ktls_keys *keys_at(struct ktls_fd *e)
{
	return (struct ktls_keys *)atomic_load(&e->keys);
}

void ktls_engine_key_update_due(SSL *s, int fd, struct ktls_fd *e,
				int (*key_update)(SSL *, int))
{
	if (!(atomic_fetch_and(&e->flags, ~(uint32_t)KTLS_FD_REKEY_DUE) &
	      KTLS_FD_REKEY_DUE) ||
	    !ktls_sess_tx_rekey_ok(e))
		return;
	if (key_update(s, SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
		/* A write waiting for its retry: next time. */
		atomic_fetch_or(&e->flags, KTLS_FD_REKEY_DUE);
		return;
	}
	ktls_dbg("fd=%d: %llu bytes under this TX key: KeyUpdate scheduled",
		 fd, (unsigned long long)atomic_load(&e->tx_key_bytes));
}

/* The KeyUpdate was not followed (ktls_ku_follow_peer said why and poisoned
 * the fd): OpenSSL's read fails, never reads under a stale key. */
static ssize_t key_expired(void)
{
	errno = EKEYEXPIRED;
	return -1;
}

ssize_t ktls_engine_recvmsg(int fd, struct ktls_fd *e, struct msghdr *m,
			    int flags,
			    ssize_t (*real)(int, struct msghdr *, int),
			    int *record_type)
{
	*record_type = -1;
	/* Only OpenSSL's ktls_read_record() shape is ours to adjust. */
	if (!m || m->msg_iovlen != 1 || !m->msg_control ||
	    m->msg_iov[0].iov_len < 2)
		return real(fd, m, flags);
	if (atomic_load(&e->flags) & KTLS_FD_POISONED) {
		errno = EKEYEXPIRED;
		return -1;
	}
	/* One record per call (the kernel would merge data records, which
	 * 3.0 would reject as too long), and room behind it for the inner
	 * content type byte. */
	size_t want = m->msg_iov[0].iov_len;
	m->msg_iov[0].iov_len = want - 1 < KTLS_MAX_PLAINTEXT ? want - 1
							     : KTLS_MAX_PLAINTEXT;
	ssize_t n = real(fd, m, flags);
	m->msg_iov[0].iov_len = want;
	struct cmsghdr *c;
	if (n < 0 || !(c = ktls_cmsg_find(m, TLS_GET_RECORD_TYPE)))
		return n;
	int type = *CMSG_DATA(c);
	*record_type = type;
	uint8_t *p = m->msg_iov[0].iov_base;
	if (type == KTLS_CT_HANDSHAKE) {
		int at = ktls_hs_key_update_at(p, (size_t)n);
		struct ktls_ku_ctx kc = ku_ctx(fd, keys_at(e));
		if (at >= 0 && ktls_ku_follow_peer(&kc, at == 0))
			return key_expired();
	}
	/* 3.0 reads a TLS 1.3 record as an encrypted one would decrypt to:
	 * content, then the true type; the header says application data. */
	p[n] = (uint8_t)type;
	*CMSG_DATA(c) = KTLS_CT_APPLICATION_DATA;
	return n + 1;
}

int ktls_engine_tx_rekey_ready(struct ktls_fd *e)
{
	struct ktls_keys *k = keys_at(e);
	struct ktls_ku_ctx c = ku_ctx(-1, k);
	return k && ktls_ku_can_rekey(&c, 0);
}

void ktls_engine_after_key_update_sent(int fd, struct ktls_fd *e)
{
	struct ktls_ku_ctx c = ku_ctx(fd, keys_at(e));
	(void)ktls_ku_after_sent(&c); /* poisons the fd where it fails */
}
