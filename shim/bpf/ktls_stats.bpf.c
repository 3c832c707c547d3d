// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Per-socket kTLS accounting: fexit programs on the data path of tls.ko,
 * keyed by socket cookie (userspace reads the same value with SO_COOKIE).
 * Counts what the kernel actually accepted or returned (fexit return
 * values), not what was asked for. ktls-shim-stats loads it, turns off the
 * programs whose function the running kernel lacks (the sendpage ones exist
 * only up to 6.4), and pins maps and links under /sys/fs/bpf/ktls-shim/.
 */
#include "ktls_core.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ktls_stats.h"

#define SOL_TLS 282
#define TLS_GET_RECORD_TYPE 2
#define TLS_RECORD_TYPE_DATA 23
#define CMSG_HDR_LEN 16 /* sizeof(struct cmsghdr) on 64-bit */
#define CMSG_SPACE_1 24 /* CMSG_SPACE(1) */

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KTLS_BPF_MAX_SOCKETS);
	__type(key, __u64); /* socket cookie */
	__type(value, struct ktls_sock_stats);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KTLS_BPF_MAX_SOCKETS);
	__type(key, __u64); /* socket cookie */
	__type(value, struct ktls_owner);
} owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32); /* 0 */
	__type(value, struct ktls_totals);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KTLS_BPF_MAX_PIDS);
	__type(key, __u32); /* pid of the socket's row */
	__type(value, struct ktls_totals);
} pid_totals SEC(".maps");

/* recvmsg in flight, per thread: where the record-type cmsg would go. */
struct rx_pending {
	__u64 control;
	__u64 controllen;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct rx_pending);
} rx_inflight SEC(".maps");

enum { TX_SW, TX_DEVICE, TX_SW_PAGE, TX_DEVICE_PAGE };

static __always_inline struct ktls_sock_stats *row(struct sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct ktls_sock_stats *s = bpf_map_lookup_elem(&sockets, &cookie);
	if (s)
		return s;
	struct ktls_sock_stats init = {};
	init.pid = bpf_get_current_pid_tgid() >> 32;
	init.first_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(init.comm, sizeof(init.comm));
	bpf_map_update_elem(&sockets, &cookie, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sockets, &cookie);
}

static __always_inline void tx(struct sock *sk, long ret, int path, int ctrl)
{
	struct ktls_sock_stats *s = row(sk);
	if (!s)
		return;
	s->last_ns = bpf_ktime_get_ns();
	if (path == TX_SW || path == TX_SW_PAGE)
		s->tx_sw = 1;
	else
		s->tx_device = 1;
	if (ret < 0) {
		__sync_fetch_and_add(&s->tx_errors, 1);
		return;
	}
	if (ret == 0)
		return;
	if (ctrl) {
		__sync_fetch_and_add(&s->tx_ctrl_bytes, ret);
		return;
	}
	__sync_fetch_and_add(&s->tx_bytes, ret);
	__sync_fetch_and_add(&s->tx_calls, 1);
	if (path == TX_SW || path == TX_SW_PAGE)
		__sync_fetch_and_add(&s->tx_sw_bytes, ret);
	else
		__sync_fetch_and_add(&s->tx_device_bytes, ret);
	if (path == TX_SW_PAGE || path == TX_DEVICE_PAGE)
		__sync_fetch_and_add(&s->tx_sendpage_bytes, ret);
}

static __always_inline void rx(struct sock *sk, long ret, int splice, int ctrl)
{
	struct ktls_sock_stats *s = row(sk);
	if (!s)
		return;
	s->last_ns = bpf_ktime_get_ns();
	s->rx_sw = 1; /* device RX also decrypts through tls_sw_recvmsg */
	if (ret < 0) {
		__sync_fetch_and_add(&s->rx_errors, 1);
		return;
	}
	if (ret == 0)
		return;
	if (ctrl) {
		__sync_fetch_and_add(&s->rx_ctrl_bytes, ret);
		return;
	}
	__sync_fetch_and_add(&s->rx_bytes, ret);
	__sync_fetch_and_add(&s->rx_calls, 1);
	if (splice)
		__sync_fetch_and_add(&s->rx_splice_bytes, ret);
}

/* sendmsg with control data: a record type set with TLS_SET_RECORD_TYPE
 * (OpenSSL sends only non-data records that way). */
static __always_inline int has_cmsg(struct msghdr *msg)
{
	return msg && msg->msg_controllen > 0;
}

static __always_inline long fret(void *ctx)
{
	__u64 r = 0;
	bpf_get_func_ret(ctx, &r);
	return (long)r;
}

SEC("fexit/tls_sw_sendmsg")
int BPF_PROG(sw_sendmsg, struct sock *sk, struct msghdr *msg)
{
	tx(sk, (int)fret(ctx), TX_SW, has_cmsg(msg));
	return 0;
}

SEC("fexit/tls_device_sendmsg")
int BPF_PROG(device_sendmsg, struct sock *sk, struct msghdr *msg)
{
	tx(sk, (int)fret(ctx), TX_DEVICE, has_cmsg(msg));
	return 0;
}

SEC("fexit/tls_sw_sendpage")
int BPF_PROG(sw_sendpage, struct sock *sk)
{
	tx(sk, (int)fret(ctx), TX_SW_PAGE, 0);
	return 0;
}

SEC("fexit/tls_device_sendpage")
int BPF_PROG(device_sendpage, struct sock *sk)
{
	tx(sk, (int)fret(ctx), TX_DEVICE_PAGE, 0);
	return 0;
}

SEC("fentry/tls_sw_recvmsg")
int BPF_PROG(sw_recvmsg_entry, struct sock *sk, struct msghdr *msg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rx_pending p = {};
	if (!msg)
		return 0;
	p.control = (__u64)msg->msg_control;
	p.controllen = msg->msg_controllen;
	bpf_map_update_elem(&rx_inflight, &id, &p, BPF_ANY);
	return 0;
}

SEC("fexit/tls_sw_recvmsg")
int BPF_PROG(sw_recvmsg, struct sock *sk, struct msghdr *msg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rx_pending *p = bpf_map_lookup_elem(&rx_inflight, &id);
	int ctrl = 0;
	long ret = (int)fret(ctx);
	/* The kernel wrote a TLS_GET_RECORD_TYPE cmsg (put_cmsg advanced
	 * msg_control): read the record type it put in the caller's buffer. */
	if (p && msg && ret > 0 && p->controllen >= CMSG_SPACE_1 &&
	    msg->msg_controllen + CMSG_SPACE_1 <= p->controllen) {
		__u8 type = TLS_RECORD_TYPE_DATA;
		void *data = (void *)(p->control + CMSG_HDR_LEN);
		if (bpf_probe_read_user(&type, 1, data) == 0)
			ctrl = type != TLS_RECORD_TYPE_DATA;
	}
	if (p)
		bpf_map_delete_elem(&rx_inflight, &id);
	rx(sk, ret, 0, ctrl);
	return 0;
}

SEC("fexit/tls_sw_splice_read")
int BPF_PROG(sw_splice_read, struct socket *sock)
{
	struct sock *sk = sock->sk;
	if (sk)
		rx(sk, fret(ctx), 1, 0);
	return 0;
}

static __always_inline void add(struct ktls_totals *t,
				const struct ktls_sock_stats *s)
{
	__sync_fetch_and_add(&t->sockets, 1);
	__sync_fetch_and_add(&t->tx_bytes, s->tx_bytes);
	__sync_fetch_and_add(&t->tx_calls, s->tx_calls);
	__sync_fetch_and_add(&t->tx_sw_bytes, s->tx_sw_bytes);
	__sync_fetch_and_add(&t->tx_device_bytes, s->tx_device_bytes);
	__sync_fetch_and_add(&t->tx_ctrl_bytes, s->tx_ctrl_bytes);
	__sync_fetch_and_add(&t->tx_errors, s->tx_errors);
	__sync_fetch_and_add(&t->rx_bytes, s->rx_bytes);
	__sync_fetch_and_add(&t->rx_calls, s->rx_calls);
	__sync_fetch_and_add(&t->rx_ctrl_bytes, s->rx_ctrl_bytes);
	__sync_fetch_and_add(&t->rx_errors, s->rx_errors);
}

/* The last call on a kTLS socket: roll its row into the totals, so that
 * what it carried survives the LRU evicting the row. fentry: the data path
 * is over by now (close runs after the last sendmsg/recvmsg returned). */
SEC("fentry/tls_sk_proto_close")
int BPF_PROG(sk_proto_close, struct sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct ktls_sock_stats *s = bpf_map_lookup_elem(&sockets, &cookie);
	/* close runs once per socket: a plain flag is enough. */
	if (!s || s->closed)
		return 0;
	s->closed = 1;
	__u32 zero = 0, pid = s->pid;
	struct ktls_totals *t = bpf_map_lookup_elem(&totals, &zero);
	if (t)
		add(t, s);
	t = bpf_map_lookup_elem(&pid_totals, &pid);
	if (!t) {
		struct ktls_totals init = {};
		bpf_map_update_elem(&pid_totals, &pid, &init, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&pid_totals, &pid);
	}
	if (t)
		add(t, s);
	return 0;
}
