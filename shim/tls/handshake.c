#define _GNU_SOURCE
#include "tls/handshake.h"

#include "core/cipher.h"
#include "tls/record.h"

size_t ktls_hs_msg_len(const uint8_t *buf, size_t len)
{
	if (len < KTLS_HS_HEADER)
		return 0;
	return KTLS_HS_HEADER +
	       ((size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3]);
}

int ktls_hs_key_update_at(const uint8_t *p, size_t n)
{
	size_t off = 0, len;
	while ((len = ktls_hs_msg_len(p + off, n - off)) != 0) {
		if (p[off] == KTLS_HS_KEY_UPDATE)
			return off == 0 ? 0 : 1;
		if (len > n - off)
			break;
		off += len;
	}
	return -1;
}

enum ktls_msg_kind ktls_msg_kind(uint16_t version, int is_server, uint8_t type)
{
	if (version == KTLS_TLS13) {
		if (type == KTLS_HS_NEW_SESSION_TICKET && !is_server)
			return KTLS_MSG_DROP;
		if (type == KTLS_HS_KEY_UPDATE)
			return KTLS_MSG_KEY_UPDATE;
		return KTLS_MSG_UNEXPECTED;
	}
	if ((type == KTLS_HS_HELLO_REQUEST && !is_server) ||
	    (type == KTLS_HS_CLIENT_HELLO && is_server))
		return KTLS_MSG_REHANDSHAKE;
	return KTLS_MSG_UNEXPECTED;
}

int ktls_hs_key_update_request(const uint8_t *msg, size_t len)
{
	if (len != KTLS_KEY_UPDATE_LEN || msg[0] != KTLS_HS_KEY_UPDATE ||
	    ktls_hs_msg_len(msg, len) != len || msg[4] > 1)
		return -1;
	return msg[4];
}

void ktls_hs_key_update_msg(uint8_t out[KTLS_KEY_UPDATE_LEN], int request)
{
	out[0] = KTLS_HS_KEY_UPDATE;
	out[1] = 0;
	out[2] = 0;
	out[3] = 1;
	out[4] = (uint8_t)(request ? 1 : 0);
}
