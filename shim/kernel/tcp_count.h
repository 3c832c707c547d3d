/*
 * What TCP itself says about a socket, for proving a program's own
 * transport (session/xwatch.h): is it a TCP socket, and how many bytes has
 * the program read from it so far.
 */
#ifndef KTLS_SHIM_KERNEL_TCP_COUNT_H
#define KTLS_SHIM_KERNEL_TCP_COUNT_H

#include <stdint.h>

/* 1 for an AF_INET/AF_INET6 SOCK_STREAM socket of protocol TCP (not
 * MPTCP, not vsock, not AF_UNIX, not a pipe), else 0. */
int ktls_fd_is_tcp(int fd);

/* Bytes the program has taken from the socket since it was connected:
 * tcp_info's tcpi_bytes_received (4.1+) less what is still queued unread
 * (SIOCINQ), read until both agree across an arriving segment. 0, or -1
 * where the kernel cannot say. */
int ktls_tcp_bytes_read(int fd, uint64_t *out);

#endif
