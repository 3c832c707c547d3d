/*
 * Map layouts shared by the eBPF programs (ktls_stats.bpf.c), the
 * ktls-shim-stats command and the shim's registration (register.c).
 * Every value is BTF-described, so `bpftool map dump` prints field names.
 * No key material, ever: only counters and ownership.
 */
#ifndef KTLS_SHIM_BPF_STATS_H
#define KTLS_SHIM_BPF_STATS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define KTLS_BPF_PIN_DIR "/sys/fs/bpf/ktls-shim"
#define KTLS_BPF_SOCKETS_PIN KTLS_BPF_PIN_DIR "/sockets"
#define KTLS_BPF_OWNERS_PIN KTLS_BPF_PIN_DIR "/owners"
#define KTLS_BPF_TOTALS_PIN KTLS_BPF_PIN_DIR "/totals"
#define KTLS_BPF_PID_TOTALS_PIN KTLS_BPF_PIN_DIR "/pid_totals"
#define KTLS_BPF_MAX_SOCKETS 16384
#define KTLS_BPF_MAX_PIDS 4096
#define KTLS_BPF_COMM_LEN 16

/* sockets: socket cookie -> what the kernel's TLS layer carried.
 * Bytes are fexit return values (accepted/returned), never requested sizes.
 * "ctrl" are records sent/received with an explicit record type other than
 * application data (alerts such as close_notify, handshake messages):
 * OpenSSL sends those with sendmsg()+TLS_SET_RECORD_TYPE and receives them
 * as recvmsg() with a TLS_GET_RECORD_TYPE cmsg other than 23. */
struct ktls_sock_stats {
	__u64 tx_bytes;        /* application data accepted (sendmsg+sendpage) */
	__u64 tx_calls;        /* calls that accepted > 0 bytes */
	__u64 tx_sw_bytes;     /* of tx_bytes: tls_sw_* (software crypto) */
	__u64 tx_device_bytes; /* of tx_bytes: tls_device_* (NIC offload) */
	__u64 tx_sendpage_bytes; /* of tx_bytes: through *_sendpage (6.1) */
	__u64 tx_ctrl_bytes;   /* non-data records, not in tx_bytes */
	__u64 tx_errors;       /* calls that returned < 0 */
	__u64 rx_bytes;        /* application data returned (recvmsg+splice) */
	__u64 rx_calls;
	__u64 rx_splice_bytes; /* of rx_bytes: through tls_sw_splice_read */
	__u64 rx_ctrl_bytes;   /* non-data records returned, not in rx_bytes */
	__u64 rx_errors;
	__u64 first_ns, last_ns; /* bpf_ktime_get_ns() */
	__u32 pid;             /* process of the first call seen */
	__u8 tx_sw, tx_device, rx_sw, rx_device; /* 1: seen on that path */
	char comm[KTLS_BPF_COMM_LEN];
	__u8 closed;           /* 1: tls_sk_proto_close ran; in totals */
};

/* totals (one row, key 0) and pid_totals (key: the row's pid): what closed
 * sockets carried, rolled in by the fentry on tls_sk_proto_close so that
 * LRU eviction of their rows loses nothing. Live sockets are not in them:
 * live + closed = the rows with closed == 0 plus these. */
struct ktls_totals {
	__u64 sockets;         /* closed sockets rolled in */
	__u64 tx_bytes, tx_calls, tx_sw_bytes, tx_device_bytes, tx_ctrl_bytes,
		tx_errors;
	__u64 rx_bytes, rx_calls, rx_ctrl_bytes, rx_errors;
};

/* owners: socket cookie -> who moved it (written by the shim, raw bpf(2)). */
enum { KTLS_MODE_NONE = 0, KTLS_MODE_KERNEL = 1, KTLS_MODE_SW = 2,
       KTLS_MODE_DEVICE = 3 };
struct ktls_owner {
	__u32 pid;
	__s32 fd;
	__u16 version;     /* 0x0303 TLS 1.2, 0x0304 TLS 1.3 */
	__u16 cipher_type; /* TLS_CIPHER_* of linux/tls.h */
	__u8 tx_mode;      /* KTLS_MODE_* */
	__u8 rx_mode;
	__u8 closed;       /* the shim saw close() on it */
	__u8 pad;
	__u64 registered_ns; /* CLOCK_MONOTONIC, like bpf_ktime_get_ns() */
	__u64 closed_ns;
	char comm[KTLS_BPF_COMM_LEN];
};

#endif
