/*
 * Handshake messages that arrive after the handshake (RFC 8446 4.6, RFC
 * 5246 7.4.1): framing, what each means to a session whose record layer
 * is in the kernel, and the KeyUpdate message itself. Pure functions, the
 * one parser every engine uses.
 */
#ifndef KTLS_SHIM_TLS_HANDSHAKE_H
#define KTLS_SHIM_TLS_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#define KTLS_HS_HEADER 4       /* type, 24-bit length */
#define KTLS_KEY_UPDATE_LEN 5  /* header + request_update */

/* The length of the message at buf, header included, or 0 while fewer
 * than its 4 header bytes are there. */
size_t ktls_hs_msg_len(const uint8_t *buf, size_t len);

/* Where in a handshake record's body a KeyUpdate sits: 0 first (the only
 * place the kernel looks for one, and pauses RX behind it), 1 behind
 * another message, -1 none. Stops at a message cut off by the record's
 * end. */
int ktls_hs_key_update_at(const uint8_t *p, size_t n);

enum ktls_msg_kind {
	KTLS_MSG_DROP,        /* TLS 1.3 NewSessionTicket to a client */
	KTLS_MSG_KEY_UPDATE,  /* TLS 1.3 KeyUpdate */
	KTLS_MSG_REHANDSHAKE, /* TLS 1.2 HelloRequest (client) / ClientHello
			      * (server): renegotiation, which kTLS cannot */
	KTLS_MSG_UNEXPECTED,  /* anything else: a protocol error */
};
enum ktls_msg_kind ktls_msg_kind(uint16_t version, int is_server, uint8_t type);

/* A whole KeyUpdate message: its request_update (0 or 1), or -1 when it
 * is malformed (wrong length, a value other than 0 or 1). */
int ktls_hs_key_update_request(const uint8_t *msg, size_t len);

/* Writes our KeyUpdate; request: ask the peer for one back. */
void ktls_hs_key_update_msg(uint8_t out[KTLS_KEY_UPDATE_LEN], int request);

#endif
