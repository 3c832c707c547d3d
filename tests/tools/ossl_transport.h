/* tls_xfer --own-bio MODE: the program's own BIO over the socket
 * (ossl_transport.c says what each mode does). */
#ifndef KTLS_TESTS_OSSL_TRANSPORT_H
#define KTLS_TESTS_OSSL_TRANSPORT_H

#include <openssl/bio.h>

/* A BIO over fd (not closed with it), or NULL for an unknown mode. */
BIO *xfer_own_bio(int fd, const char *mode);

#endif
