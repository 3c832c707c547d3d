/*
 * ktls-preload.conf and the KTLS_SHIM_* environment. Parsing is pure (over a
 * buffer and a getenv function) so hostile input is unit- and fuzz-tested.
 */
#ifndef KTLS_SHIM_CONFIG_H
#define KTLS_SHIM_CONFIG_H

#include <stddef.h>

#include "core/log.h"
#include "core/match.h"

#define KTLS_DIR_TX 1u
#define KTLS_DIR_RX 2u

/* auto: OpenSSL's own kTLS, and the shim's engine for what OpenSSL leaves
 * (TLS 1.3 RX); openssl: OpenSSL's own only; shim: the shim's engine for
 * every direction and version. auto is 0: the default. */
#define KTLS_ENGINE_AUTO 0
#define KTLS_ENGINE_OPENSSL 1
#define KTLS_ENGINE_SHIM 2

#define KTLS_KEY_UPDATE_AUTO (~0ull)

/* meson.build passes prefix/sysconfdir, where it installs the file; this
 * is for builds outside meson (the fuzzer's, a hand-made one). */
#ifndef KTLS_CONFIG_DEFAULT_PATH
#define KTLS_CONFIG_DEFAULT_PATH "/etc/ktls-preload.conf"
#endif
#define KTLS_CONFIG_MAX_BYTES (1024 * 1024)
#define KTLS_CONFIG_MAX_LINE 4096
#define KTLS_CONFIG_ERRLEN 512

struct ktls_config {
	int enabled;
	unsigned directions; /* KTLS_DIR_* */
	unsigned ciphers;    /* KTLS_CIPHER_BIT(enum ktls_cipher) */
	unsigned versions;   /* KTLS_VERSION_BIT_* */
	enum ktls_log_level log_level;
	enum ktls_log_dest log_dest;
	char log_path[512];
	struct ktls_patlist allow; /* empty: every program */
	struct ktls_patlist deny;
	int engine;                /* KTLS_ENGINE_* */
	int tls13_rx_without_rekey; /* move TLS 1.3 RX where a KeyUpdate
				     * from the peer must fail the connection */
	/* Bytes sent under one TLS 1.3 TX key before the shim sends a
	 * KeyUpdate (kernels that can rekey). KTLS_KEY_UPDATE_AUTO: the
	 * AEAD's limit (RFC 8446 5.5); 0: never. */
	unsigned long long key_update_bytes;
	int ebpf_load;             /* KTLS_EBPF_LOAD_*: see shim/bpf/autoload.h */
	/* Ask the kernel for TLS_TX_ZEROCOPY_RO on moved TX (device offload
	 * only; a file changed while in flight goes out as changed). */
	int tx_zerocopy_ro;
	/* Move sessions whose TLS library talks to the socket through the
	 * program's own transport, once the handshake proved it a plain
	 * pass-through to one TCP socket (session/xwatch.h). */
	int custom_transports;
	/* A session whose program asked for TLS 1.3 record padding: keep TX
	 * in userspace, where libssl pads (the kernel adds no padding), or
	 * move it anyway and send the records unpadded. */
	int record_padding;        /* KTLS_PADDING_* */
};

enum { KTLS_EBPF_LOAD_NEVER = 0, KTLS_EBPF_LOAD_AUTO = 1 };
enum { KTLS_PADDING_KEEP = 0, KTLS_PADDING_DROP = 1 };

void ktls_config_defaults(struct ktls_config *c);

/* One key = value; the same rules for the file and the environment. */
int ktls_config_set(struct ktls_config *c, const char *key, const char *value,
		    char *err, size_t errlen);

/*
 * Parses a whole file's text. prog selects which [program GLOB] sections
 * apply. On error, err holds "NAME:LINE: problem" and -1 is returned.
 */
int ktls_config_parse(struct ktls_config *c, const char *name,
		      const char *buf, size_t len, const struct ktls_prog *prog,
		      char *err, size_t errlen);

/*
 * Reads and parses path. A missing file is an error only when required (it
 * was named explicitly). A privileged process refuses a file that others
 * could have written.
 */
int ktls_config_load_file(struct ktls_config *c, const char *path,
			  int required, int privileged,
			  const struct ktls_prog *prog, char *err,
			  size_t errlen);

/* Applies KTLS_SHIM_* variables through getenv_fn (secure_getenv). */
int ktls_config_apply_env(struct ktls_config *c,
			  char *(*getenv_fn)(const char *), char *err,
			  size_t errlen);

/* Whether the config lets this program be touched at all. */
/* The i-th key ktls_config_set() knows, NULL past the last. */
const char *ktls_config_key_name(size_t i);

int ktls_config_allows(const struct ktls_config *c, const struct ktls_prog *p);

#endif
