/*
 * Fault injection, compiled only into the test library libktls-shim-fault.so
 * (meson -Dfault_injection=true, which builds it with -DKTLS_FAULT next to
 * the untouched libktls-shim.so). It fails one call the shim makes into the
 * kernel or into libssl/libcrypto, chosen by the environment:
 *
 *   KTLS_SHIM_FAULT=POINT[:NTH[:ERRNO]]   the NTH call (default 1) at POINT
 *                                         fails with ERRNO (default ENOMEM);
 *                                         NTH+ fails that call and every
 *                                         later one
 *   KTLS_SHIM_FAULT=list                  prints the points, one per line
 *
 * The seams are the binding tables (core/real.c, openssl/bind.c,
 * gnutls/bind.c), the sockopt table (kernel/install.c), raw bpf(2) (bpf/register.c) and, by the linker's
 * --wrap, the shim's own malloc/calloc: never the logic in between, so the
 * code under test is the production code. Calls on fds the shim does not
 * track are never counted or failed: those are the program's own. A new
 * member of struct ktls_real fails the build until fault.c wraps it; a new
 * libssl/libcrypto call that can fail needs a point added by hand.
 */
#ifndef KTLS_SHIM_FAULT_H
#define KTLS_SHIM_FAULT_H

#ifdef KTLS_FAULT

#define POINTS(X)                                                             \
	X(SETSOCKOPT_ULP, "setsockopt_ulp",                                   \
	  "setsockopt(TCP_ULP \"tls\"): OpenSSL's, or the engine's own")      \
	X(SETSOCKOPT_TLS_TX, "setsockopt_tls_tx",                             \
	  "setsockopt(SOL_TLS, TLS_TX): OpenSSL's first key, then the "       \
	  "engine's after each KeyUpdate")                                    \
	X(SETSOCKOPT_TLS_RX, "setsockopt_tls_rx",                             \
	  "setsockopt(SOL_TLS, TLS_RX): OpenSSL's (TLS 1.3: with the "        \
	  "engine's key), then the engine's after each KeyUpdate")            \
	X(SETSOCKOPT_ZEROCOPY_RO, "setsockopt_zerocopy_ro",                   \
	  "setsockopt(SOL_TLS, TLS_TX_ZEROCOPY_RO), with tx_zerocopy_ro")     \
	X(SETSOCKOPT_TX_LIMIT, "setsockopt_tx_limit",                         \
	  "setsockopt(SOL_TLS, TLS_TX_MAX_PAYLOAD_LEN): the peer's record "   \
	  "size limit, before the engine's TX key")                           \
	X(GETSOCKOPT_TLS, "getsockopt_tls",                                   \
	  "getsockopt(SOL_TLS): does the kernel hold what OpenSSL believes")  \
	X(GETSOCKOPT_SOCKET, "getsockopt_socket",                             \
	  "getsockopt(SO_PROTOCOL, TCP_INFO, TCP_ULP): a connected TCP "      \
	  "socket, with the ULP?")                                            \
	X(READ, "read", "read() on a TLS socket")                             \
	X(WRITE, "write", "write() on a TLS socket")                          \
	X(RECVMSG, "recvmsg", "recvmsg() on a TLS socket (kernel RX)")        \
	X(SENDMSG, "sendmsg",                                                 \
	  "sendmsg() on a TLS socket (kernel TX: control records, the "       \
	  "GnuTLS engine's data)")                                            \
	X(SENDFILE, "sendfile", "sendfile() to a TLS socket")                 \
	X(KDF_FETCH, "kdf_fetch", "EVP_KDF_fetch(HKDF)")                      \
	X(KDF_CTX_NEW, "kdf_ctx_new", "EVP_KDF_CTX_new")                      \
	X(KDF_DERIVE, "kdf_derive",                                           \
	  "EVP_KDF_derive: TLS 1.3 key, iv, next secret")                     \
	X(BIO_SET_KTLS, "bio_set_ktls",                                       \
	  "BIO_ctrl(BIO_CTRL_SET_KTLS): the engine hands OpenSSL the TLS "    \
	  "1.3 RX key")                                                       \
	X(EX_HIDDEN, "ssl_ex_data_hidden",                                    \
	  "SSL_set_ex_data: SSL_OP_ENABLE_KTLS is the shim's, hide it")       \
	X(EX_KEYS, "ssl_ex_data_keys",                                        \
	  "SSL_set_ex_data: the engine's secrets")                            \
	X(EX_NOTE, "ssl_ex_data_note",                                        \
	  "SSL_set_ex_data: the session was settled (or has no socket BIO)")  \
	X(EX_FD, "ssl_ex_data_fd",                                            \
	  "SSL_set_ex_data: the fd whose entry points at this SSL "           \
	  "(sendfile emulation)")                                             \
	X(EX_CB, "ssl_ex_data_cb",                                            \
	  "SSL_set_ex_data: the program's info callback")                     \
	X(CTX_EX_HIDDEN, "ctx_ex_data_hidden",                                \
	  "SSL_CTX_set_ex_data: SSL_OP_ENABLE_KTLS is the shim's")            \
	X(CTX_EX_CB, "ctx_ex_data_cb",                                        \
	  "SSL_CTX_set_ex_data: the program's info callback")                 \
	X(CTX_EX_KEYLOG, "ctx_ex_data_keylog",                                \
	  "SSL_CTX_set_ex_data: the program's keylog callback")               \
	X(EX_MSGCB, "ssl_ex_data_msgcb",                                      \
	  "SSL_set_ex_data: the program's message callback (engine=shim)")    \
	X(CTX_EX_MSGCB, "ctx_ex_data_msgcb",                                  \
	  "SSL_CTX_set_ex_data: the program's message callback")              \
	X(GT_RECORD_GET_STATE, "gnutls_record_get_state",                     \
	  "gnutls_record_get_state: the GnuTLS engine reads the key, IV and " \
	  "sequence number")                                                  \
	X(GT_HKDF_EXPAND, "gnutls_hkdf_expand",                               \
	  "gnutls_hkdf_expand: TLS 1.3 key and IV from GnuTLS's traffic "     \
	  "secret (checked at the move), the next secret (KeyUpdate)")        \
	X(ALLOC, "alloc",                                                     \
	  "malloc/calloc by the shim's own code (engine secrets, GnuTLS "    \
	  "engine, config file)")                                             \
	X(BPF_OBJ_GET, "bpf_obj_get",                                         \
	  "bpf(BPF_OBJ_GET): opening the pinned owners map")                  \
	X(BPF_MAP_UPDATE, "bpf_map_update",                                   \
	  "bpf(BPF_MAP_UPDATE_ELEM): registering a socket, marking it "      \
	  "closed")                                                           \
	X(BPF_MAP_LOOKUP, "bpf_map_lookup",                                   \
	  "bpf(BPF_MAP_LOOKUP_ELEM): a socket's row, at close")

#define KTLS_FAULT_ENUM(id, name, what) FP_##id,
enum ktls_fault_point { POINTS(KTLS_FAULT_ENUM) FP_COUNT };
#undef KTLS_FAULT_ENUM

/* The errno a call at point p fails with (counted, per KTLS_SHIM_FAULT),
 * or 0 to make the call. */
int ktls_fault_hit(enum ktls_fault_point p);

struct ktls_real;

/* The errno the caller must fail with at a setsockopt (set=1) or
 * getsockopt (set=0) of level/name, or 0 to make the call. */
int ktls_fault_sockopt(int set, int level, int name);

/* Likewise for a bpf(2) command. */
int ktls_fault_bpf(int cmd);

/* Put the injecting wrappers in front of the bound functions. */
void ktls_fault_wrap_real(struct ktls_real *r);
/* The libssl and libgnutls tables have theirs in openssl/bind.h and
 * gnutls/bind.h: this layer knows neither library. */

/* While set (this thread), calls are neither counted nor failed: the
 * shim's one-off probe of libssl is not part of any session. */
void ktls_fault_quiet(int on);

#else
static inline void ktls_fault_quiet(int on)
{
	(void)on;
}
#endif
#endif
