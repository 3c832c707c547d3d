/*
 * TLS 1.3 record padding a program asks libssl for (block padding or a
 * padding callback, RFC 8446 5.4). The kernel adds none: a session with
 * padding keeps TLS 1.3 TX in userspace unless record_padding = drop.
 */
#ifndef KTLS_SHIM_OSSL_PADDING_H
#define KTLS_SHIM_OSSL_PADDING_H

#include <openssl/ssl.h>

/* SSL_new: the SSL starts with its context's padding, as in libssl. */
void ktls_pad_inherit(SSL *s);

/* Whether TLS 1.3 TX of s must stay in userspace for its padding
 * (version: the session's; config: record_padding = keep). */
int ktls_pad_keeps_tx(const SSL *s, unsigned version);

/* Whether padding is why libssl's own installer left TX of s: the shim
 * refused it (ktls_pad_keeps_tx), or libssl 3.2+ declined, as it does for
 * any session with padding, TLS 1.2 too (its kTLS record layer). */
int ktls_pad_explains_decline(const SSL *s, unsigned version);

/* libssl's own installer calls setsockopt(TLS_TX) with no SSL in sight,
 * from inside an SSL call on the same thread: the shim's info callback
 * (every handshake state change) and its SSL_* I/O hooks note whether
 * that SSL's socket is to keep TX (ktls_pad_seen), the setsockopt() hook
 * asks. */
void ktls_pad_seen(const SSL *s);
int ktls_pad_refuses_tx(int fd, unsigned version);

#endif
