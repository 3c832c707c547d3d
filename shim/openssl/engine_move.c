/*
 * The shim's engine moves an OpenSSL session: each direction's key from the
 * TLS 1.3 traffic secret (keylog callback) or the TLS 1.2 key block, at
 * the next record's sequence number (counted from the message callback
 * with engine = shim), handed over through OpenSSL's socket BIO, or, for
 * a libssl without kTLS, installed directly with the shim's record layer
 * taking over (record_layer.c).
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
#include "kernel/record_limit.h"
#include "kernel/uapi.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/engine_state.h"
#include "openssl/padding.h"
#include "openssl/record_layer.h"
#include "session/keyupdate.h"
#include "tls/crypto_info.h"
#include "tls/handshake.h"
#include "tls/record.h"
#include "tls/tls12_keys.h"
#include "tls/tls13_keys.h"

static void wipe(void *p, size_t n)
{
	ktls_ossl.OPENSSL_cleanse(p, n);
}

/* TLS 1.2: the key block from the session's master secret. */
static enum ktls_reason build12(SSL *s, struct ktls_keys *k,
				struct ktls_crypto_info *ci, enum ktls_cipher kc,
				int rx, uint64_t seq)
{
	uint8_t master[SSL_MAX_MASTER_KEY_LENGTH], cr[32], sr[32], nonce[8];
	struct ktls_tls12_keys kb;
	SSL_SESSION *sess = ktls_ossl.SSL_get_session(s);
	size_t ml = sess ? ktls_ossl.SSL_SESSION_get_master_key(
				   sess, master, sizeof(master))
			 : 0;
	enum ktls_reason r = KTLS_R_NO_SECRET;
	/* Whose key: the client writes with the first, the server with the
	 * second; we read with the other side's. */
	int mine = ktls_ossl.SSL_is_server(s) ? 1 : 0, i = rx ? !mine : mine;
	const uint8_t *explicit_nonce = NULL;

	if (!ml || ktls_ossl.SSL_get_client_random(s, cr, 32) != 32 ||
	    ktls_ossl.SSL_get_server_random(s, sr, 32) != 32)
		goto cleanup;
	/* The kernel sends its explicit nonce and counts up from it. OpenSSL
	 * sealed its Finished with one it chose (at random, for GCM):
	 * carry on from that one, as its own installer does, so no nonce is
	 * ever used twice under this key. ChaCha20 has none. */
	if (!rx && kc != KTLS_CIPHER_CHACHA20_POLY1305) {
		r = KTLS_R_SEQ_UNKNOWN;
		if (!k->seq.nonce_ok)
			goto cleanup;
		/* The Finished was record 0 under this key: the next
		 * record's nonce is its own plus seq (big-endian). */
		memcpy(nonce, k->seq.nonce, sizeof(nonce));
		unsigned carry = 0;
		for (int b = 7; b >= 0; b--) {
			unsigned v = nonce[b] + (unsigned)((seq >> (8 * (7 - b))) &
							   0xff) +
				     carry;
			nonce[b] = (uint8_t)v;
			carry = v >> 8;
		}
		explicit_nonce = nonce;
	}
	r = KTLS_R_CIPHER_UNSUPPORTED;
	if (ktls_tls12_key_block(ktls_engine_kdf(), kc, master, ml, cr, sr, &kb) != 0)
		goto cleanup;
	if (ktls_crypto_info_build(ci, KTLS_TLS12, kc, kb.key[i], kb.key_len,
				   kb.iv[i], kb.iv_len, explicit_nonce,
				   seq) == 0)
		r = KTLS_R_MOVED;
	wipe(&kb, sizeof(kb));
cleanup:
	wipe(master, sizeof(master));
	return r;
}

unsigned ktls_engine_record_limit(SSL *s)
{
	SSL_SESSION *sess = ktls_ossl.SSL_get_session(s);
	unsigned mode = sess ? ktls_ossl.SSL_SESSION_get_max_fragment_length(
				       sess)
			     : 0;
	return mode >= TLSEXT_max_fragment_length_512 &&
			       mode <= TLSEXT_max_fragment_length_4096
		       ? 512u << (mode - 1)
		       : KTLS_MAX_PLAINTEXT;
}

static enum ktls_reason attach(int fd, struct ktls_fd *e)
{
	int err = 0;
	if (atomic_load(&e->flags) & KTLS_FD_ULP)
		return KTLS_R_MOVED;
	enum ktls_reason r = ktls_check_socket(&ktls_sockops_sys, fd);
	if (r != KTLS_R_MOVED)
		return r;
	if (ktls_has_ulp(&ktls_sockops_sys, fd) != 1) {
		r = ktls_attach_ulp(&ktls_sockops_sys, fd, &err);
		if (r != KTLS_R_MOVED) {
			atomic_store(&e->ulp_err, ktls_errno8(err));
			atomic_fetch_or(&e->flags, KTLS_FD_ULP_TRIED);
			return r;
		}
	}
	atomic_fetch_or(&e->flags, KTLS_FD_ULP | KTLS_FD_ULP_TRIED);
	return KTLS_R_MOVED;
}

/* A TLS 1.3 traffic secret the engine does not hold. Where it was never
 * asked for (ktls_engine_wants_secrets: a kernel without rekey, no opt-in),
 * RX stays for the gate's reason and TX because RX does; elsewhere the
 * secret went missing. */
static enum ktls_reason no_secret(int rx)
{
	if (ktls_engine_wants_secrets())
		return KTLS_R_NO_SECRET;
	return rx ? KTLS_R_TLS13_RX_NO_REKEY : KTLS_R_OTHER_DIRECTION;
}

/* The kernel's crypto_info for one direction, at the next record's
 * sequence number; everything checked that can be before installing. */
static enum ktls_reason prepare(SSL *s, int fd, struct ktls_fd *e,
				struct ktls_keys *k, enum ktls_cipher kc, int rx,
				struct ktls_crypto_info *ci)
{
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	/* Records OpenSSL already holds were read under this key, and the
	 * kernel would never see them. Never guess. */
	if (rx && ktls_ossl.SSL_has_pending(s))
		return KTLS_R_DATA_PENDING;
	/* engine=shim counts records; auto moves only from the callback at
	 * the end of the handshake, before any record under the key. */
	int64_t seq = ktls_engine_counts(k) ? ktls_recseq_next(&k->seq, rx)
					     : 0;
	if (seq < 0)
		return KTLS_R_SEQ_UNKNOWN;
	enum ktls_reason r = attach(fd, e);
	if (r != KTLS_R_MOVED)
		return r;
	/* After the ULP, so that a kernel without kTLS says so first. */
	if (rx && (r = ktls_ku_rx_gate((uint16_t)version,
				       ktls_secrets_held(&k->sec, 1))) !=
			  KTLS_R_MOVED)
		return r;
	/* RX under a smaller limit of ours: the kernel takes records up to
	 * 16 KiB and hands up several per read, so one over the limit
	 * could not be refused as libssl refuses it (record_overflow).
	 * libssl reading a kTLS socket itself failed such sessions in the
	 * 7.2 VM anyway (it held each multi-record read to the limit). */
	if (rx && ktls_engine_record_limit(s) < KTLS_MAX_PLAINTEXT)
		return KTLS_R_RECORD_SIZE_LIMITED;
	/* The kernel would send the records unpadded (a libssl without
	 * kTLS then keeps RX too: both or neither). */
	if (!rx && ktls_pad_keeps_tx(s, version))
		return KTLS_R_PADDING_REQUESTED;
	/* Before TLS_TX: no record may leave bigger than the peer allowed. */
	if (!rx && (r = ktls_tx_limit_set(&ktls_sockops_sys, fd,
					  ktls_engine_record_limit(s))) !=
			   KTLS_R_MOVED)
		return r;

	memset(ci, 0, sizeof(*ci));
	if (version == KTLS_TLS13) {
		const uint8_t *secret = rx ? k->sec.rx : k->sec.tx;
		size_t len = rx ? k->sec.rx_len : k->sec.tx_len;
		if (!len)
			return no_secret(rx);
		if (ktls_tls13_crypto_info(ktls_engine_kdf(), ci, kc, secret, len,
					   (uint64_t)seq) != 0)
			return KTLS_R_CIPHER_UNSUPPORTED;
		return KTLS_R_MOVED;
	}
	if (version == KTLS_TLS12)
		return build12(s, k, ci, kc, rx, (uint64_t)seq);
	return KTLS_R_VERSION_UNSUPPORTED;
}

enum ktls_reason ktls_engine_move(SSL *s, int fd, struct ktls_fd *e,
				  enum ktls_cipher kc, int rx)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	int all = ktls_engine_all();
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	BIO *b = rx ? ktls_ossl.SSL_get_rbio(s) : ktls_ossl.SSL_get_wbio(s);

	if (!ktls_engine_wanted() || (!all && (!rx || version != KTLS_TLS13)))
		return rx && version == KTLS_TLS13
			       ? KTLS_R_TLS13_RX_NEEDS_ENGINE
			       : KTLS_R_LIB_DECLINED;
	if (!k)
		return no_secret(rx);
	struct ktls_crypto_info ci;
	enum ktls_reason r = prepare(s, fd, e, k, kc, rx, &ci);
	if (r != KTLS_R_MOVED) {
		ktls_crypto_info_wipe(&ci);
		return r;
	}

	int seen = 0;
	long ok = ktls_engine_bio_set_ktls(b, fd, rx, &ci, &seen);
	ktls_crypto_info_wipe(&ci);
	if (ok != 1 ||
	    ktls_ossl.BIO_ctrl(b, rx ? BIO_CTRL_GET_KTLS_RECV
				     : BIO_CTRL_GET_KTLS_SEND,
			       0, NULL) != 1) {
		int err = atomic_load(rx ? &e->rx_err : &e->tx_err);
		/* A libssl built without kTLS ignores the ctrl: no
		 * setsockopt() ever came. */
		return err	    ? ktls_reason_from_install_errno(err)
		       : !seen ? KTLS_R_LIB_NO_KTLS
				      : KTLS_R_LIB_DECLINED;
	}
	/* What OpenSSL's own installer does: kTLS cannot renegotiate. */
	if (version == KTLS_TLS12)
		ktls_ossl.SSL_set_options(s, SSL_OP_NO_RENEGOTIATION);
	k->kc = kc;
	k->fd = fd;
	atomic_store(&e->keys, (uintptr_t)k);
	atomic_fetch_or(&e->flags,
			rx ? KTLS_FD_RX_SHIM |
				     (version == KTLS_TLS13 ? KTLS_FD_RX_SHIM13
							    : 0)
			   : KTLS_FD_TX_SHIM);
	return KTLS_R_MOVED;
}

void ktls_engine_settle(SSL *s, struct ktls_fd *e, enum ktls_cipher kc)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	if (!k)
		return;
	k->kc = kc;
	ktls_engine_restore_callbacks(s, k);
	k->settled = 1;
	if (!e) { /* an own-BIO session left in userspace */
		ktls_secrets_wipe(&k->sec, 1);
		ktls_secrets_wipe(&k->sec, 0);
		return;
	}
	uint32_t f = atomic_load(&e->flags);
	int rekeys = ktls_kernel_can_rekey();
	/* Kept only while the kernel may need the next key of a direction
	 * it holds; OpenSSL keeps its own copy of these secrets anyway. */
	if (!rekeys || !(f & KTLS_FD_RX_SHIM))
		ktls_secrets_wipe(&k->sec, 1);
	if (!rekeys || !(f & KTLS_FD_TX) ||
	    atomic_load(&e->version) != KTLS_TLS13)
		ktls_secrets_wipe(&k->sec, 0);
	if (k->sec.rx_len || k->sec.tx_len) {
		k->fd = (int)(e - ktls_fdt.tab);
		atomic_store(&e->keys, (uintptr_t)k);
	}
	if (k->sec.tx_len)
		atomic_store(&e->tx_key_limit, ktls_policy_tx_key_budget(kc));
}

/*
 * libssl without kTLS: both directions straight into the kernel, and the
 * shim's record layer (ossl_record.c) runs the session from here on. Both
 * or neither: OpenSSL cannot read or write records through a socket with
 * one direction in the kernel. RX goes first: it is the one a kernel is
 * likelier to refuse, and refused first it leaves nothing behind.
 */
void ktls_engine_move_own(SSL *s, int fd, struct ktls_fd *e,
			  enum ktls_cipher kc, enum ktls_reason r[2],
			  int io_flags)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	unsigned version = (unsigned)ktls_ossl.SSL_version(s);
	struct ktls_crypto_info ci[2];
	memset(ci, 0, sizeof(ci));
	int bio = atomic_load(&ktls_orl_ssl_bio);
	for (int rx = 1; rx >= 0; rx--) {
		if (r[rx] != KTLS_R_LIB_DECLINED &&
		    r[rx] != KTLS_R_TLS13_RX_NEEDS_ENGINE)
			continue;
		r[rx] = bio ? KTLS_R_SSL_BIO
		      : !k  ? no_secret(rx)
			    : prepare(s, fd, e, k, kc, rx, &ci[rx]);
	}
	struct ktls_orl *o = NULL;
	if (r[0] == KTLS_R_MOVED && r[1] == KTLS_R_MOVED &&
	    !(o = ktls_orl_new(fd, (uint16_t)version, kc,
			       ktls_ossl.SSL_is_server(s), io_flags)))
		r[0] = r[1] = KTLS_R_NO_MEMORY;
	if (r[0] != KTLS_R_MOVED || r[1] != KTLS_R_MOVED) {
		for (int rx = 0; rx < 2; rx++)
			if (r[rx] == KTLS_R_MOVED)
				r[rx] = KTLS_R_OTHER_DIRECTION;
		ktls_crypto_info_wipe(&ci[0]);
		ktls_crypto_info_wipe(&ci[1]);
		return;
	}
	int err = 0;
	r[1] = ktls_install_dir(&ktls_sockops_sys, fd, TLS_RX, &ci[1], &err);
	if (r[1] != KTLS_R_MOVED) {
		ktls_crypto_info_wipe(&ci[0]);
		ktls_orl_free(o);
		r[0] = KTLS_R_OTHER_DIRECTION;
		return;
	}
	r[0] = ktls_install_dir(&ktls_sockops_sys, fd, TLS_TX, &ci[0], &err);
	k->kc = kc;
	k->fd = fd;
	k->orl = o;
	atomic_store(&e->keys, (uintptr_t)k);
	uint32_t f = KTLS_FD_RX_SHIM | KTLS_FD_OWN;
	if (r[0] == KTLS_R_MOVED) {
		f |= KTLS_FD_TX_SHIM;
	} else {
		/* RX is in the kernel for good and OpenSSL cannot read it;
		 * our record layer can, but has no TX to write with: reads
		 * go on, writes fail (never in plaintext). */
		ktls_err("fd=%d: the kernel took RX but refused TX (errno %d); "
			 "writes on this connection will fail",
			 fd, err);
		f |= KTLS_FD_POISONED;
	}
	atomic_fetch_or(&e->flags, f);
	atomic_store(&ktls_orl_active, 1);
}
