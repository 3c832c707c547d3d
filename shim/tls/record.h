/*
 * TLS wire vocabulary (RFC 5246, RFC 8446): record content types, the
 * post-handshake message types, alerts. One set of names for every layer
 * and engine.
 */
#ifndef KTLS_SHIM_TLS_RECORD_H
#define KTLS_SHIM_TLS_RECORD_H

/* Record content types. */
#define KTLS_CT_CHANGE_CIPHER_SPEC 20
#define KTLS_CT_ALERT 21
#define KTLS_CT_HANDSHAKE 22
#define KTLS_CT_APPLICATION_DATA 23

/* Handshake message types seen after the handshake. */
#define KTLS_HS_HELLO_REQUEST 0
#define KTLS_HS_CLIENT_HELLO 1
#define KTLS_HS_NEW_SESSION_TICKET 4
#define KTLS_HS_KEY_UPDATE 24

/* Alerts. */
#define KTLS_AL_WARNING 1
#define KTLS_AL_FATAL 2
#define KTLS_AD_CLOSE_NOTIFY 0
#define KTLS_AD_UNEXPECTED_MESSAGE 10
#define KTLS_AD_BAD_RECORD_MAC 20
#define KTLS_AD_RECORD_OVERFLOW 22
#define KTLS_AD_DECODE_ERROR 50
#define KTLS_AD_USER_CANCELED 90
#define KTLS_AD_NO_RENEGOTIATION 100

/* The most plaintext one record carries. */
#define KTLS_MAX_PLAINTEXT 16384

#endif
