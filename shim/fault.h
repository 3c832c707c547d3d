/*
 * Fault injection, compiled only into the test library libktls-shim-fault.so
 * (meson -Dfault_injection=true, which builds it with -DKTLS_FAULT next to
 * the untouched libktls-shim.so). It fails one call the shim makes into the
 * kernel or into libssl/libcrypto, chosen by the environment:
 *
 *   KTLS_SHIM_FAULT=POINT[:NTH[:ERRNO]]   the NTH call (default 1) at POINT
 *                                         fails with ERRNO (default ENOMEM);
 *                                         NTH+ fails that call and every
 *                                         later one
 *   KTLS_SHIM_FAULT=list                  prints the points, one per line
 *
 * The seams are the binding tables (real.c, ossl.c, gnutls_bind.c), the
 * sockopt table
 * (ktls_install.c), raw bpf(2) (bpf/register.c) and, by the linker's
 * --wrap, the shim's own malloc/calloc: never the logic in between, so the
 * code under test is the production code. Calls on fds the shim does not
 * track are never counted or failed: those are the program's own. A new
 * member of struct ktls_real fails the build until fault.c wraps it; a new
 * libssl/libcrypto call that can fail needs a point added by hand.
 */
#ifndef KTLS_SHIM_FAULT_H
#define KTLS_SHIM_FAULT_H

#ifdef KTLS_FAULT

struct ktls_real;
struct ktls_ossl;
struct ktls_gt;

/* The errno the caller must fail with at a setsockopt (set=1) or
 * getsockopt (set=0) of level/name, or 0 to make the call. */
int ktls_fault_sockopt(int set, int level, int name);

/* Likewise for a bpf(2) command. */
int ktls_fault_bpf(int cmd);

/* Put the injecting wrappers in front of the bound functions. */
void ktls_fault_wrap_real(struct ktls_real *r);
void ktls_fault_wrap_ossl(struct ktls_ossl *o);
void ktls_fault_wrap_gt(struct ktls_gt *g);

/* While set (this thread), calls are neither counted nor failed: the
 * shim's one-off probe of libssl is not part of any session. */
void ktls_fault_quiet(int on);

#else
static inline void ktls_fault_quiet(int on)
{
	(void)on;
}
#endif
#endif
