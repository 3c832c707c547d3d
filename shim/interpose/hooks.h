/*
 * Inside the interposition layer: the on_* hooks (hooks_libc.c: an
 * untracked fd goes straight to libc) and the watching variants the entry
 * table points at while a program's own TLS transport is being proven
 * (hooks_watch.c, session/xwatch.h).
 */
#ifndef KTLS_SHIM_INTERPOSE_HOOKS_H
#define KTLS_SHIM_INTERPOSE_HOOKS_H

#include <sys/socket.h>
#include <sys/types.h>

#include "core/visibility.h"

#define KTLS_HOOK_PAIR(name, ret, params)                                    \
	ret ktls_on_##name params KTLS_HIDDEN;                                \
	ret ktls_watch_##name params KTLS_HIDDEN;

KTLS_HOOK_PAIR(read, ssize_t, (int fd, void *buf, size_t count))
KTLS_HOOK_PAIR(read_chk, ssize_t,
	       (int fd, void *buf, size_t count, size_t buflen))
KTLS_HOOK_PAIR(write, ssize_t, (int fd, const void *buf, size_t count))
KTLS_HOOK_PAIR(recvmsg, ssize_t, (int fd, struct msghdr *msg, int flags))
KTLS_HOOK_PAIR(sendmsg, ssize_t,
	       (int fd, const struct msghdr *msg, int flags))
KTLS_HOOK_PAIR(send, ssize_t,
	       (int fd, const void *buf, size_t count, int flags))
KTLS_HOOK_PAIR(recv, ssize_t, (int fd, void *buf, size_t count, int flags))

#endif
