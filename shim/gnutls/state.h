/*
 * One GnuTLS session the shim knows (struct ktls_gts): shared by the
 * session table (table.c), the move after the handshake (move.c) and the
 * record layer over the kernel (record_layer.c). Not for outside gnutls/.
 */
#ifndef KTLS_SHIM_GNUTLS_STATE_H
#define KTLS_SHIM_GNUTLS_STATE_H

#include <gnutls/gnutls.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cipher.h"
#include "core/reason.h"
#include "gnutls/session.h"
#include "tls/secrets.h"

enum {
	GTS_CUSTOM = 1u << 0, /* program's own push/pull: moved if proven */
	GTS_FINAL = 1u << 1,  /* the post-handshake decision was made */
	GTS_TX = 1u << 2,     /* TX in the kernel, by us */
	GTS_RX = 1u << 3,     /* RX in the kernel, by us */
	GTS_EOF = 1u << 4,    /* close_notify received */
	GTS_FAILED = 1u << 5, /* fatal: every later call fails */
	GTS_BYE = 1u << 6,    /* our close_notify went out */
	GTS_SERVER = 1u << 7,
	GTS_KEYLOG = 1u << 8, /* our keylog function is the session's */
	GTS_KU_OWED = 1u << 9, /* peer asked for our KeyUpdate: before data */
	GTS_PAD_SAID = 1u << 10, /* told once: padding asked, not applied */
};

/* Handshake messages after the handshake are small (tickets, KeyUpdate);
 * one bigger than this is refused rather than buffered without bound. */
#define CTRL_MAX 65536
/* After GNUTLS_E_AGAIN a program may retry with (NULL, 0) and expect the
 * same data to go out (GnuTLS keeps it encrypted); we keep up to one
 * record's worth of plaintext for that. */
#define PEND_MAX 16384
#define CONTINUE INT_MIN

struct ktls_gts {
	gnutls_session_t s;
	struct ktls_gts *next;
	unsigned init_flags;
	_Atomic unsigned st;
	_Atomic int fail_code, last_dir, last_alert;
	int fd;
	uint16_t version;
	enum ktls_cipher kc;
	/* The program's keylog function, called behind ours. */
	_Atomic(gnutls_keylog_func) prog_keylog;
	/* TLS 1.3 traffic secrets: rx used by the reader, tx by the writer. */
	struct ktls_secrets sec;
	/* RX, one reader at a time: a control record being collected;
	 * rec: where in ctrl the last record read begins (SIZE_MAX: before
	 * ctrl[0]), head: whether ctrl[0] begins a record. */
	uint8_t ctrl_type;
	size_t ctrl_len, ctrl_rec;
	int ctrl_head;
	int async; /* the last GNUTLS_E_AGAIN came from async_done() */
	uint8_t *ctrl;
	/* TX, one writer at a time. */
	uint8_t *pend;
	size_t pend_len;
	/* The program's own transport, as it set it (GnuTLS's rule: a push
	 * function clears the vec_push one and back), and its proof during
	 * the handshake (transport.c). */
	gnutls_push_func prog_push;
	gnutls_vec_push_func prog_vec_push;
	gnutls_pull_func prog_pull;
	struct ktls_xwatch *xw;
	int io_flags; /* MSG_DONTWAIT where the transport passed it */
	/* The peer's record_size_limit, as its hellos said (hello.c): 0
	 * none, -1 unknown (our hook was displaced); and the program's own
	 * handshake hook, called behind ours. */
	_Atomic int peer_rsl;
	gnutls_handshake_hook_func prog_hook;
	unsigned prog_hook_htype;
	int prog_hook_when;
};

/* The session table (table.c). */
struct ktls_gts *ktls_gts_lookup(gnutls_session_t s);
/* Sessions with a direction in the kernel, up or down by one. */
void ktls_gts_moved_count(int delta);

/* The peer's record_size_limit (hello.c): our hook installed at
 * gnutls_init where GnuTLS cannot report the limit itself. */
void ktls_gts_hello_watch(struct ktls_gts *g);

/* The program's own transport (transport.c), at the move: KTLS_R_MOVED
 * and *fd its socket, or why it stays; the watch is gone afterwards. */
enum ktls_reason ktls_gts_transport_verdict(struct ktls_gts *g, int *fd);
void ktls_gts_transport_free(struct ktls_gts *g);

#endif
