/*
 * libno-ktls-bio.so: preloaded behind the shim, makes the real libssl
 * behave as one built without kTLS (OpenSSL's default "no-ktls"), whose
 * socket BIO ignores the kTLS ctrls: BIO_CTRL_SET_KTLS fails and the
 * GET_KTLS_* queries say no. Every other ctrl goes to libcrypto. Tests
 * only: a no-ktls build is what many self-built OpenSSLs are, and the
 * shim must leave their sessions in userspace, intact.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/bio.h>

/* include/internal/bio.h in 3.0/3.1; GET_* are public. */
#define SET_KTLS 72

long BIO_ctrl(BIO *b, int cmd, long larg, void *parg)
{
	static long (*real)(BIO *, int, long, void *);
	if (!real) {
		real = (long (*)(BIO *, int, long, void *))dlsym(RTLD_NEXT,
								 "BIO_ctrl");
		/* libcrypto dlopen()ed in a local scope (CPython's _hashlib,
		 * _ssl) is not "next" to us: find it where it is. */
		void *h = real ? NULL
			       : dlopen("libcrypto.so.3", RTLD_LAZY | RTLD_NOLOAD);
		if (h) {
			real = (long (*)(BIO *, int, long, void *))dlsym(
				h, "BIO_ctrl");
			dlclose(h);
		}
	}
	if (cmd == SET_KTLS || cmd == BIO_CTRL_GET_KTLS_SEND ||
	    cmd == BIO_CTRL_GET_KTLS_RECV)
		return 0;
	return real(b, cmd, larg, parg);
}
