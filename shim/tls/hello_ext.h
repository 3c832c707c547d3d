/*
 * What a peer promised in its hello messages that the record layer must
 * keep after the move: RFC 8449's record_size_limit, read from the
 * ClientHello (a server's peer), the TLS 1.2 ServerHello or the TLS 1.3
 * EncryptedExtensions (a client's peer). For a library that negotiates
 * the limit but cannot report it (GnuTLS before 3.8.11). Pure functions.
 */
#ifndef KTLS_SHIM_TLS_HELLO_EXT_H
#define KTLS_SHIM_TLS_HELLO_EXT_H

#include <stddef.h>
#include <stdint.h>

#define KTLS_HS_SERVER_HELLO 2
#define KTLS_HS_ENCRYPTED_EXTENSIONS 8
#define KTLS_EXT_RECORD_SIZE_LIMIT 28

/* The record_size_limit in one handshake message's body (header
 * excluded) of the given type: its value, 0 when the message has none
 * (or is of another type), -1 when the message is malformed. */
int ktls_hello_record_size_limit(uint8_t type, const uint8_t *body,
				 size_t len);

#endif
