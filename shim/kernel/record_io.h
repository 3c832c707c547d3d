/*
 * One TLS record through a socket whose record layer is in the kernel:
 * sendmsg() with the record type in a TLS_SET_RECORD_TYPE cmsg (anything
 * but application data), recvmsg() with room for the TLS_GET_RECORD_TYPE
 * cmsg the kernel attaches to what it read. Both straight to libc, below
 * the shim's own hooks. Shared by the shim's record layers for GnuTLS
 * (gnutls/) and for a libssl without kTLS (openssl/record_layer.c).
 */
#ifndef KTLS_SHIM_RECORD_IO_H
#define KTLS_SHIM_RECORD_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cmsghdr;
struct msghdr;

/* m's SOL_TLS cmsg of cmsg_type with room for its one byte, or NULL. */
struct cmsghdr *ktls_cmsg_find(const struct msghdr *m, int cmsg_type);

/* The record type in m's SOL_TLS cmsg of cmsg_type (TLS_GET_RECORD_TYPE
 * on what recvmsg() filled in, TLS_SET_RECORD_TYPE on what a program
 * passes to sendmsg()), or -1 where there is none. */
int ktls_cmsg_record_type(const struct msghdr *m, int cmsg_type);

ssize_t ktls_record_send(int fd, uint8_t type, const void *body, size_t len,
			 int flags);

/* An alert record (2 bytes: level, description). */
ssize_t ktls_alert_send(int fd, uint8_t level, uint8_t desc, int flags);

/* Application data, with send()'s flags (MSG_NOSIGNAL): sendmsg() without
 * a cmsg, through the same binding table as the rest (fault injection). */
ssize_t ktls_data_send(int fd, const void *buf, size_t len, int flags);

/* *type: the record's type (application data when the kernel said none).
 * flags: recvmsg()'s (MSG_DONTWAIT where the program's transport used it
 * on a blocking socket). */
ssize_t ktls_record_recv(int fd, void *buf, size_t len, int *type, int flags);

#endif
