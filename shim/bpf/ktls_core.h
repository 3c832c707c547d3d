/*
 * The few kernel types ktls_stats.bpf.c touches, as CO-RE definitions:
 * libbpf relocates each field access against the running kernel's BTF, so
 * nothing here depends on the build machine's kernel (no vmlinux.h).
 */
#ifndef KTLS_SHIM_BPF_CORE_H
#define KTLS_SHIM_BPF_CORE_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u64 size_t;
typedef __s64 ssize_t;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
};
#define BPF_ANY 0
#define BPF_NOEXIST 1

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)
struct sock {
	int __unused_placeholder; /* only ever passed by pointer */
};
struct socket {
	struct sock *sk;
};
struct msghdr {
	void *msg_control; /* inside an anonymous union since 5.x: CO-RE finds it */
	__u64 msg_controllen;
};
#pragma clang attribute pop

#endif
