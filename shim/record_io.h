/*
 * One TLS record through a socket whose record layer is in the kernel:
 * sendmsg() with the record type in a TLS_SET_RECORD_TYPE cmsg (anything
 * but application data), recvmsg() with room for the TLS_GET_RECORD_TYPE
 * cmsg the kernel attaches to what it read. Both straight to libc, below
 * the shim's own hooks. Shared by the shim's record layers for GnuTLS
 * (gnutls_engine.c) and for a libssl without kTLS (ossl_record.c).
 */
#ifndef KTLS_SHIM_RECORD_IO_H
#define KTLS_SHIM_RECORD_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KTLS_REC_ALERT 21
#define KTLS_REC_HANDSHAKE 22
#define KTLS_REC_APPLICATION_DATA 23

ssize_t ktls_record_send(int fd, uint8_t type, const void *body, size_t len,
			 int flags);

/* Application data, with send()'s flags (MSG_NOSIGNAL): sendmsg() without
 * a cmsg, through the same binding table as the rest (fault injection). */
ssize_t ktls_data_send(int fd, const void *buf, size_t len, int flags);

/* *type: the record's type (application data when the kernel said none). */
ssize_t ktls_record_recv(int fd, void *buf, size_t len, int *type);

#endif
