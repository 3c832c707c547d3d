/*
 * The real GnuTLS functions, found at run time (dlsym RTLD_NEXT, then the
 * already loaded libgnutls.so.30): the shim never links libgnutls, so
 * programs without it pay nothing and never load it.
 */
#ifndef KTLS_SHIM_GNUTLS_BIND_H
#define KTLS_SHIM_GNUTLS_BIND_H

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <sys/types.h>

struct ktls_gt {
	int ok; /* everything the engine needs to move a session */
	int (*init)(gnutls_session_t *, unsigned int);
	void (*deinit)(gnutls_session_t);
	int (*handshake)(gnutls_session_t);
	ssize_t (*record_send)(gnutls_session_t, const void *, size_t);
	ssize_t (*record_send2)(gnutls_session_t, const void *, size_t, size_t,
				unsigned);
	ssize_t (*record_recv)(gnutls_session_t, void *, size_t);
	ssize_t (*record_recv_seq)(gnutls_session_t, void *, size_t,
				   unsigned char *);
	ssize_t (*record_recv_packet)(gnutls_session_t, gnutls_packet_t *);
	ssize_t (*record_send_file)(gnutls_session_t, int, off_t *, size_t);
	size_t (*record_check_pending)(gnutls_session_t);
	int (*record_get_direction)(gnutls_session_t);
	int (*bye)(gnutls_session_t, gnutls_close_request_t);
	int (*alert_send)(gnutls_session_t, gnutls_alert_level_t,
			  gnutls_alert_description_t);
	gnutls_alert_description_t (*alert_get)(gnutls_session_t);
	int (*session_key_update)(gnutls_session_t, unsigned);
	void (*transport_set_push_function)(gnutls_session_t,
					    gnutls_push_func);
	void (*transport_set_vec_push_function)(gnutls_session_t,
						gnutls_vec_push_func);
	void (*transport_set_pull_function)(gnutls_session_t,
					    gnutls_pull_func);
	void (*transport_get_int2)(gnutls_session_t, int *, int *);
	int (*record_get_state)(gnutls_session_t, unsigned, gnutls_datum_t *,
				gnutls_datum_t *, gnutls_datum_t *,
				unsigned char *);
	gnutls_protocol_t (*protocol_get_version)(gnutls_session_t);
	gnutls_cipher_algorithm_t (*cipher_get)(gnutls_session_t);
	const char *(*cipher_get_name)(gnutls_cipher_algorithm_t);
	/* 3.7.3+ (<gnutls/socket.h>): NULL in older libraries, which never
	 * move sessions. Declared with int so older headers build too. */
	int (*transport_is_ktls_enabled)(gnutls_session_t);
	/* The most a record may carry: what we accept (max_record_recv_size;
	 * equal to what we may send under RFC 6066's max_fragment_length),
	 * and, 3.8.11+, what we may send (RFC 8449's record_size_limit too:
	 * NULL before). */
	size_t (*record_get_max_size)(gnutls_session_t);
	size_t (*record_get_max_send_size)(gnutls_session_t);
	/* Before 3.8.11 the peer's record_size_limit is read from its hello
	 * messages by a handshake hook chained in front of the program's. */
	void (*handshake_set_hook_function)(gnutls_session_t, unsigned, int,
					    gnutls_handshake_hook_func);
	/* TLS 1.3 KeyUpdate following: the traffic secrets (keylog) and
	 * HKDF to derive the next ones; absent means no rekey. */
	void (*session_set_keylog_function)(gnutls_session_t,
					    gnutls_keylog_func);
	gnutls_keylog_func (*session_get_keylog_function)(
		const gnutls_session_t);
	int (*hkdf_expand)(gnutls_mac_algorithm_t, const gnutls_datum_t *,
			   const gnutls_datum_t *, void *, size_t);
};

/* gnutls_transport_ktls_enable_flags_t of 3.7.3+ */
#define KTLS_GT_KTLS_RECV 1
#define KTLS_GT_KTLS_SEND 2

extern struct ktls_gt ktls_gt;

/* Binds once; returns ktls_gt.ok. Each real pointer used by a hook may
 * still be checked on its own: a pass-through needs only its function. */
int ktls_gt_bind(void);

#ifdef KTLS_FAULT
/* openssl/fault.c, gnutls/fault.c: the injecting wrappers (core/fault.h). */
void ktls_fault_wrap_gt(struct ktls_gt *g);
#endif

#endif
