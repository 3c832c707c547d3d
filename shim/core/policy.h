/*
 * What both engines (OpenSSL's, session.c, and GnuTLS's, gnutls_engine.c)
 * ask before and after moving a session: may this version, cipher and
 * direction move at all (the config and the cipher table; no syscall), and
 * the eBPF registration of what did move.
 */
#ifndef KTLS_SHIM_POLICY_H
#define KTLS_SHIM_POLICY_H

#include "core/cipher.h"
#include "core/reason.h"

/* KTLS_VERSION_BIT_* for 0x0303/0x0304, 0 for anything else. */
unsigned ktls_version_bit(unsigned version);

/* KTLS_R_MOVED when nothing in the config or the cipher table stops this
 * direction; otherwise the reason, in the order the log reports them. */
enum ktls_reason ktls_policy_check(int rx, unsigned version,
				   enum ktls_cipher kc);
/* Only what the config allows (versions, directions, ciphers). */
enum ktls_reason ktls_policy_config(int rx, unsigned version,
				    enum ktls_cipher kc);

/* TLS 1.3 TX: bytes under one key after which the shim sends a KeyUpdate
 * (config key_update_bytes; auto: RFC 8446 5.5's AES-GCM limit), 0 for
 * never. */
unsigned long long ktls_policy_tx_key_budget(enum ktls_cipher kc);

/* eBPF accounting (shim/bpf/register.h) of a moved socket: loads the
 * programs first where allowed (autoload.h), and says once, in one debug
 * line, why stats are off. */

#endif
