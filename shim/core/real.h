/*
 * The next definitions of the libc functions the shim interposes, bound once
 * with dlsym(RTLD_NEXT) under pthread_once (socket_wrapper's pattern). Safe
 * to use from any hook, before the constructor has run and after fork().
 */
#ifndef KTLS_SHIM_REAL_H
#define KTLS_SHIM_REAL_H

#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/visibility.h"

struct ktls_real {
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*read_chk)(int, void *, size_t, size_t);
	int (*close)(int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*sendfile64)(int, int, off_t *, size_t);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
};

/* Each member starts as a stub that binds the whole table and then calls
 * the real function, so a hook needs no "bound yet?" test of its own:
 * KTLS_REAL(f) is one load. Relaxed atomics: a member is only ever the
 * stub or the final function, and either may be called. */
extern struct ktls_real ktls_real KTLS_HIDDEN;
extern atomic_int ktls_real_ready;

#define KTLS_REAL(f) (__atomic_load_n(&ktls_real.f, __ATOMIC_RELAXED))

void ktls_real_bind(void);

static inline void ktls_real_ensure(void)
{
	if (__builtin_expect(!atomic_load_explicit(&ktls_real_ready,
						   memory_order_acquire),
			     0))
		ktls_real_bind();
}

#endif
