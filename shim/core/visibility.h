/*
 * For the few objects the libc hooks touch on every call: hidden, so the
 * compiler addresses them RIP-relative instead of loading their address
 * from the GOT first (the version script hides them from other objects
 * either way, but only at link time, too late for the code).
 */
#ifndef KTLS_SHIM_VISIBILITY_H
#define KTLS_SHIM_VISIBILITY_H

#define KTLS_HIDDEN __attribute__((visibility("hidden")))

#endif
