/* A session's outcome, made visible the same way for every engine. */
#ifndef KTLS_SHIM_SESSION_PUBLISH_H
#define KTLS_SHIM_SESSION_PUBLISH_H

#include <stdint.h>

#include "core/cipher.h"
#include "core/fdtab.h"
#include "core/reason.h"

/*
 * After the move was decided and verified: the fd entry (e may be NULL:
 * no fd to note it on) gets version, cipher, the reasons and the TX/RX
 * flags (plus extra_flags), the process counts it, a moved socket gets
 * its eBPF row, and the log its one line per session:
 *   session fd=N <version> <cipher> tx=kernel|<reason> rx=... engine=E
 *   verified=getsockopt<suffix>
 */
void ktls_session_publish(int fd, struct ktls_fd *e, uint16_t version,
			  enum ktls_cipher kc, const enum ktls_reason r[2],
			  uint32_t extra_flags, const char *cipher_name,
			  const char *engine, const char *suffix);

#endif
