/*
 * The engine's ears: the keylog callback (TLS 1.3 traffic secrets) and,
 * with engine = shim, the message callback (record sequence numbers),
 * each chained in front of whatever the program sets, which still gets
 * every call. The program's callbacks live in ex_data; the get/set hooks
 * show it its own.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/shim.h"
#include "kernel/probe.h"
#include "openssl/bind.h"
#include "openssl/engine.h"
#include "openssl/engine_state.h"
#include "openssl/record_layer.h"

struct ktls_keys *ktls_engine_keys(const SSL *s, int create)
{
	struct ktls_keys *k = ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_keys);
	if (k || !create)
		return k;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->fd = -1;
	if (!ktls_ossl.SSL_set_ex_data((SSL *)s, ktls_ossl.ex_keys, k)) {
		free(k);
		return NULL;
	}
	return k;
}

static void keylog_cb(const SSL *s, const char *line)
{
	uint8_t secret[KTLS_TLS13_MAX_SECRET];
	size_t len;
	enum ktls_secret_kind kind = ktls_keylog_parse(line, secret, &len);
	if (kind != KTLS_SECRET_NONE) {
		/* Ours is what the peer sends with (RX) and what we send
		 * with (TX, only kept for a KeyUpdate). */
		int rx = ktls_secret_is_rx(kind,
					   ktls_ossl.SSL_is_server((SSL *)s));
		struct ktls_keys *k =
			ktls_engine_keys(s, !ktls_ossl.rekeys_itself);
		/* 3.2+ moves and rekeys a socket BIO's session itself: the
		 * engine keeps secrets there only for an own-BIO session
		 * (ktls_engine_own_bio_begin came first), which it serves. */
		if (k && ktls_ossl.rekeys_itself && !ktls_engine_counts(k))
			k = NULL;
		if (k && (rx || ktls_engine_counts(k) || ktls_kernel_can_rekey()))
			ktls_secrets_set(&k->sec, rx, secret, len);
		ktls_ossl.OPENSSL_cleanse(secret, sizeof(secret));
	}
	ktls_keylog_cb cb = ktls_engine_get_keylog_cb(
		ktls_ossl.SSL_get_SSL_CTX((SSL *)s));
	if (cb)
		cb(s, line);
}

/* An SSL's own "no message callback", told apart from "never set". */
static char no_msg_cb;

static ktls_msg_cb program_msg_cb(const SSL *s)
{
	void *p = ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_msgcb);
	if (!p)
		p = ktls_ossl.SSL_CTX_get_ex_data(
			ktls_ossl.SSL_get_SSL_CTX((SSL *)s),
			ktls_ossl.ctx_ex_msgcb);
	return p && p != &no_msg_cb ? (ktls_msg_cb)p : NULL;
}

static void msg_cb(int write_p, int version, int content_type,
		   const void *buf, size_t len, SSL *s, void *arg)
{
	struct ktls_keys *k = ktls_engine_keys(s, 1);
	if (k && !k->settled)
		ktls_recseq_observe(&k->seq, write_p, version, content_type,
				    buf, len);
	ktls_msg_cb cb = program_msg_cb(s);
	if (cb)
		cb(write_p, version, content_type, buf, len, s, arg);
}

void ktls_engine_on_ctx_new(SSL_CTX *ctx)
{
	if (ktls_engine_wants_secrets())
		ktls_ossl.SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	/* engine = shim on 3.2+: nothing moves, and each session line says
	 * why (engine-shim-needs-openssl-3.0), not a warning per process. */
	if (ktls_engine_all())
		ktls_ossl.SSL_CTX_set_msg_callback(ctx, msg_cb);
}

/* Set once a program's context callback could not be kept behind ours
 * (ex_data out of memory): from then on an SSL whose context has none
 * kept may carry the program's, which libssl copied into it and which
 * nothing public reads back. Found by the fault test
 * (ctx_ex_data_msgcb): the engine's own callback replaced it and the
 * program's was never called again. Such an SSL keeps its callback;
 * counting nothing, its session stays in userspace (seq-unknown). */
static atomic_bool ctx_msg_cb_unkept;

static int program_cb_maybe_unkept(const SSL *s)
{
	return atomic_load(&ctx_msg_cb_unkept) &&
	       !ktls_ossl.SSL_CTX_get_ex_data(
		       ktls_ossl.SSL_get_SSL_CTX((SSL *)s),
		       ktls_ossl.ctx_ex_msgcb);
}

/* OpenSSL copies the context's callback into the SSL at SSL_new: so do
 * we, for a context that changes its callback later. 0: not kept. */
static int keep_program_msg_cb(SSL *s)
{
	if (program_cb_maybe_unkept(s))
		return 0;
	ktls_msg_cb cb = program_msg_cb(s);
	return ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_msgcb,
					 cb ? (void *)cb : &no_msg_cb);
}

void ktls_engine_on_new(SSL *s)
{
	if (!ktls_engine_all()) {
		/* Maybe over the program's own BIO, known at its first
		 * handshake call (ktls_engine_own_bio_begin). */
		if (ktls_engine_own_bio())
			keep_program_msg_cb(s);
		return;
	}
	struct ktls_keys *k = ktls_engine_keys(s, 1);
	if (keep_program_msg_cb(s))
		ktls_ossl.SSL_set_msg_callback(s, msg_cb);
	/* With kTLS TX, 3.0 writes from the caller's buffer and overwrites
	 * its own buffer pointer, "released when switching to ktls", as
	 * its own key installer does. We switch later, from outside: this
	 * mode makes it release the buffer after the handshake's last
	 * write. Cleared again once the session is settled. */
	long mode = ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, 0, NULL);
	if (k && !(mode & SSL_MODE_RELEASE_BUFFERS)) {
		ktls_ossl.SSL_ctrl(s, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS,
				   NULL);
		k->mode_ours = 1;
	}
}

void ktls_engine_set_ctx_msg_cb(SSL_CTX *ctx, ktls_msg_cb cb)
{
	int kept = ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_msgcb,
						 (void *)cb);
	if (!kept && cb)
		atomic_store(&ctx_msg_cb_unkept, true);
	ktls_ossl.SSL_CTX_set_msg_callback(
		ctx, kept && ktls_engine_all() ? msg_cb : cb);
}

void ktls_engine_set_msg_cb(SSL *s, ktls_msg_cb cb)
{
	struct ktls_keys *k = ktls_engine_keys(s, 0);
	int kept = ktls_ossl.SSL_set_ex_data(s, ktls_ossl.ex_msgcb,
					     cb ? (void *)cb : &no_msg_cb);
	/* Counting ends with the first handshake. Without the program's
	 * callback kept, no counting: that session stays in userspace. */
	int ours = kept && ktls_engine_counts(k) && !(k && k->settled);
	ktls_ossl.SSL_set_msg_callback(s, ours ? msg_cb : cb);
}

/* Where the program's callback cannot be kept behind ours (ex_data out of
 * memory), it goes straight to OpenSSL: the engine then learns nothing on
 * that context, and the program loses nothing. */
void ktls_engine_set_keylog_cb(SSL_CTX *ctx, ktls_keylog_cb cb)
{
	int kept = ktls_ossl.SSL_CTX_set_ex_data(ctx, ktls_ossl.ctx_ex_keylog,
						 (void *)cb);
	ktls_ossl.SSL_CTX_set_keylog_callback(
		ctx, kept && ktls_engine_wants_secrets() ? keylog_cb : cb);
}

ktls_keylog_cb ktls_engine_get_keylog_cb(const SSL_CTX *ctx)
{
	if (!ctx)
		return NULL;
	ktls_keylog_cb r = ktls_ossl.SSL_CTX_get_keylog_callback(ctx);
	return r == keylog_cb ? (ktls_keylog_cb)ktls_ossl.SSL_CTX_get_ex_data(
					ctx, ktls_ossl.ctx_ex_keylog)
			      : r;
}

/*
 * The program's own BIO, before the handshake's first record: the engine
 * counts this session's records as with engine = shim (the message
 * callback in front of the program's, kept at SSL_new; not kept, nothing
 * is counted and the session stays: sequence-number-unknown). No
 * SSL_MODE_RELEASE_BUFFERS: such a session never reaches OpenSSL's kTLS
 * path, the shim's record layer serves it (or OpenSSL, intact).
 */
void ktls_engine_own_bio_begin(SSL *s)
{
	struct ktls_keys *k = ktls_engine_keys(s, 1);
	if (!k || k->own_bio || k->settled)
		return;
	k->own_bio = 1;
	if (!ktls_engine_all() &&
	    ktls_ossl.SSL_get_ex_data(s, ktls_ossl.ex_msgcb))
		ktls_ossl.SSL_set_msg_callback(s, msg_cb);
}

void ktls_engine_restore_callbacks(SSL *s, struct ktls_keys *k)
{
	if (k->settled || !ktls_engine_counts(k))
		return;
	ktls_ossl.SSL_set_msg_callback(s, program_msg_cb(s));
	if (k->mode_ours)
		ktls_ossl.SSL_ctrl(s, SSL_CTRL_CLEAR_MODE,
				   SSL_MODE_RELEASE_BUFFERS, NULL);
}

void ktls_engine_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
			 long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	struct ktls_keys *k = ptr;
	if (!k)
		return;
	struct ktls_fd *e = k->fd >= 0 ? ktls_fd_get(k->fd) : NULL;
	uintptr_t mine = (uintptr_t)k;
	if (e)
		atomic_compare_exchange_strong(&e->keys, &mine, 0);
	ktls_orl_free(k->orl);
	ktls_ossl.OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}
