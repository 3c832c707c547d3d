#define _GNU_SOURCE
#include "kernel/record_io.h"

#include "kernel/uapi.h"

#include <stdint.h>
#include <sys/socket.h>

#include "core/real.h"
#include "tls/record.h"


struct cmsghdr *ktls_cmsg_find(const struct msghdr *m, int cmsg_type)
{
	if (!m || !m->msg_control)
		return NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
	     c = CMSG_NXTHDR((struct msghdr *)m, c))
		if (c->cmsg_level == SOL_TLS && c->cmsg_type == cmsg_type &&
		    c->cmsg_len >= CMSG_LEN(1))
			return c;
	return NULL;
}

int ktls_cmsg_record_type(const struct msghdr *m, int cmsg_type)
{
	struct cmsghdr *c = ktls_cmsg_find(m, cmsg_type);
	return c ? *CMSG_DATA(c) : -1;
}

ssize_t ktls_record_send(int fd, uint8_t type, const void *body, size_t len,
			 int flags)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	struct iovec iov = { (void *)(uintptr_t)body, len };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(c) = type;
	m.msg_controllen = c->cmsg_len;
	ktls_real_ensure();
	return KTLS_REAL(sendmsg)(fd, &m, flags);
}

ssize_t ktls_alert_send(int fd, uint8_t level, uint8_t desc, int flags)
{
	uint8_t body[2] = { level, desc };
	return ktls_record_send(fd, KTLS_CT_ALERT, body, sizeof(body), flags);
}

ssize_t ktls_data_send(int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ktls_real_ensure();
	return KTLS_REAL(sendmsg)(fd, &m, flags);
}

ssize_t ktls_record_recv(int fd, void *buf, size_t len, int *type, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { buf, len };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	ktls_real_ensure();
	ssize_t n = KTLS_REAL(recvmsg)(fd, &m, flags);
	int t = n > 0 ? ktls_cmsg_record_type(&m, TLS_GET_RECORD_TYPE) : -1;
	*type = t < 0 ? KTLS_CT_APPLICATION_DATA : t;
	return n;
}
