/* Why a direction of a session did (or did not) move into the kernel. */
#ifndef KTLS_SHIM_REASON_H
#define KTLS_SHIM_REASON_H

enum ktls_reason {
	KTLS_R_MOVED = 0,
	KTLS_R_DIRECTION_OFF,      /* config: directions */
	KTLS_R_CIPHER_OFF,         /* config: ciphers */
	KTLS_R_VERSION_OFF,        /* config: versions */
	KTLS_R_CIPHER_UNSUPPORTED, /* not an AEAD the kernel takes */
	KTLS_R_VERSION_UNSUPPORTED,/* TLS 1.0/1.1, DTLS */
	KTLS_R_NOT_SOCKET_BIO,     /* memory or custom BIO: no fd to move */
	KTLS_R_NOT_TCP,
	KTLS_R_NOT_CONNECTED,
	KTLS_R_NO_KERNEL_TLS,      /* TCP_ULP "tls" -> ENOENT */
	KTLS_R_ULP_FAILED,         /* TCP_ULP failed otherwise */
	KTLS_R_KERNEL_CIPHER,      /* TLS_TX/RX -> ENOENT/EINVAL: no AEAD */
	KTLS_R_SETSOCKOPT_FAILED,  /* TLS_TX/RX failed otherwise */
	KTLS_R_TLS13_RX_NEEDS_ENGINE, /* OpenSSL < 3.2 never moves TLS 1.3 RX */
	KTLS_R_LIB_DECLINED,       /* OpenSSL did not try (e.g. data pending) */
	KTLS_R_LIB_NO_KTLS,        /* libssl older than 3.0 or built without kTLS */
	KTLS_R_VERIFY_FAILED,      /* OpenSSL and the kernel disagree */
	KTLS_R_TLS13_RX_NO_REKEY,  /* config: not on kernels without rekey */
	KTLS_R_NO_SECRET,          /* the keylog callback never saw it */
	KTLS_R_DATA_PENDING,       /* OpenSSL already holds records read */
	KTLS_R_SEQ_UNKNOWN,        /* engine=shim: key change never seen */
	KTLS_R_OTHER_DIRECTION,    /* libssl without kTLS: both or neither */
	KTLS_R_NO_MEMORY,
	KTLS_R_SSL_BIO,            /* libssl without kTLS, SSL BIOs in use */
	KTLS_R_KEY_UNAVAILABLE,    /* GnuTLS would not give its record state */
	KTLS_R_RECORD_SIZE_LIMITED, /* peer's limit the kernel cannot keep */
	KTLS_R_ENGINE_NEEDS_30,    /* engine = shim with libssl 3.2+ */
	/* A program's own transport (issue 17, session/xwatch.h): */
	KTLS_R_CUSTOM_OFF,         /* config: custom_transports = no */
	KTLS_R_XPORT_NOT_TCP,      /* its bytes went to a pipe, AF_UNIX... */
	KTLS_R_XPORT_READS_AHEAD,  /* read more than it handed up */
	KTLS_R_XPORT_QUEUES,       /* handed-down bytes not written in-call */
	KTLS_R_XPORT_CHANGES,      /* other bytes than handed down */
	KTLS_R_XPORT_TWO_FDS,      /* the session's bytes on two fds */
	KTLS_R_XPORT_UNSEEN,       /* through calls the shim does not see */
	KTLS_R_XPORT_OTHER_READER, /* TCP read more than went through it */
	KTLS_R_OWN_BIO_NOT_MOVED,  /* proven; engine = openssl: not moved */
	KTLS_R_PADDING_REQUESTED,  /* TLS 1.3 record padding: kernel adds none */
	KTLS_R_COUNT,
};

const char *ktls_reason_name(enum ktls_reason r);

#endif
