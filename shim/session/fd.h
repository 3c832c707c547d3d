/* Library-neutral policy for a tracked fd (session/fd.c). */
#ifndef KTLS_SHIM_SESSION_FD_H
#define KTLS_SHIM_SESSION_FD_H

#include <stddef.h>

#include "core/fdtab.h"

enum ktls_io { KTLS_IO_READ = 0, KTLS_IO_WRITE = 1 };

/* bytes of application data through the kernel in one direction; marks
 * the fd KTLS_FD_REKEY_DUE once its TX key's budget is spent. */
void ktls_fd_count(struct ktls_fd *e, enum ktls_io io, size_t bytes);

/* 1 (errno EKEYEXPIRED, counted) when the connection is poisoned. */
int ktls_fd_send_refused(struct ktls_fd *e);

/* Whether any fd ever hit KTLS_FD_REKEY_DUE in this process: one load on
 * every write until then. */
int ktls_fd_rekey_due_seen(void);

/* The program closes fd: log its totals, drop its eBPF row, forget it. */
void ktls_fd_close(int fd, struct ktls_fd *e);

#endif
