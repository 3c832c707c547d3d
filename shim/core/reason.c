#define _GNU_SOURCE
#include "core/reason.h"

static const char *const names[KTLS_R_COUNT] = {
	[KTLS_R_MOVED] = "moved",
	[KTLS_R_DIRECTION_OFF] = "direction-off-by-config",
	[KTLS_R_CIPHER_OFF] = "cipher-off-by-config",
	[KTLS_R_VERSION_OFF] = "version-off-by-config",
	[KTLS_R_CIPHER_UNSUPPORTED] = "cipher-unsupported",
	[KTLS_R_VERSION_UNSUPPORTED] = "version-unsupported",
	[KTLS_R_NOT_SOCKET_BIO] = "not-a-socket-bio",
	[KTLS_R_NOT_TCP] = "not-tcp",
	[KTLS_R_NOT_CONNECTED] = "not-connected",
	[KTLS_R_NO_KERNEL_TLS] = "kernel-has-no-tls",
	[KTLS_R_ULP_FAILED] = "tcp-ulp-failed",
	[KTLS_R_KERNEL_CIPHER] = "kernel-lacks-cipher",
	[KTLS_R_SETSOCKOPT_FAILED] = "setsockopt-failed",
	[KTLS_R_TLS13_RX_NEEDS_ENGINE] = "openssl-cannot-move-tls13-rx",
	[KTLS_R_LIB_DECLINED] = "openssl-declined",
	[KTLS_R_LIB_NO_KTLS] = "openssl-without-ktls",
	[KTLS_R_VERIFY_FAILED] = "kernel-state-mismatch",
	[KTLS_R_TLS13_RX_NO_REKEY] = "kernel-cannot-rekey-tls13",
	[KTLS_R_ENGINE_NEEDS_30] = "engine-shim-needs-openssl-3.0",
	[KTLS_R_NO_SECRET] = "no-traffic-secret",
	[KTLS_R_DATA_PENDING] = "records-already-buffered",
	[KTLS_R_SEQ_UNKNOWN] = "sequence-number-unknown",
	[KTLS_R_OTHER_DIRECTION] = "other-direction-stays",
	[KTLS_R_NO_MEMORY] = "out-of-memory",
	[KTLS_R_SSL_BIO] = "ssl-bio-in-process",
	[KTLS_R_KEY_UNAVAILABLE] = "key-unavailable",
	[KTLS_R_RECORD_SIZE_LIMITED] = "record-size-limited",
	[KTLS_R_CUSTOM_OFF] = "custom-transports-off",
	[KTLS_R_XPORT_NOT_TCP] = "transport-not-tcp",
	[KTLS_R_XPORT_READS_AHEAD] = "transport-reads-ahead",
	[KTLS_R_XPORT_QUEUES] = "transport-queues-writes",
	[KTLS_R_XPORT_CHANGES] = "transport-changes-bytes",
	[KTLS_R_XPORT_TWO_FDS] = "transport-two-fds",
	[KTLS_R_XPORT_UNSEEN] = "transport-unseen",
	[KTLS_R_XPORT_OTHER_READER] = "transport-other-reader",
	[KTLS_R_OWN_BIO_NOT_MOVED] = "own-bio-not-moved",
	[KTLS_R_PADDING_REQUESTED] = "padding-requested",
};

const char *ktls_reason_name(enum ktls_reason r)
{
	if ((unsigned)r >= KTLS_R_COUNT)
		return "unknown";
	return names[r];
}
