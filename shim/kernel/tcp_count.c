#define _GNU_SOURCE
#include "kernel/tcp_count.h"

#include <linux/sockios.h>
#include <stddef.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int ktls_fd_is_tcp(int fd)
{
	int dom = 0, type = 0, proto = 0;
	socklen_t l1 = sizeof(dom), l2 = sizeof(type), l3 = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l1) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l3) != 0)
		return 0;
	return (dom == AF_INET || dom == AF_INET6) && type == SOCK_STREAM &&
	       proto == IPPROTO_TCP;
}

static int inq(int fd, uint64_t *out)
{
	int n = 0;
	if (ioctl(fd, SIOCINQ, &n) != 0 || n < 0)
		return -1;
	*out = (uint64_t)n;
	return 0;
}

int ktls_tcp_bytes_read(int fd, uint64_t *out)
{
	/* An arriving segment raises both counts; one that lands between
	 * the two calls shows as a changed SIOCINQ: read again. */
	for (int tries = 0; tries < 8; tries++) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		uint64_t q1, q2;
		memset(&ti, 0, sizeof(ti));
		if (inq(fd, &q1) != 0 ||
		    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
		    inq(fd, &q2) != 0)
			return -1;
		if (len < offsetof(struct tcp_info, tcpi_bytes_received) +
				  sizeof(ti.tcpi_bytes_received))
			return -1;
		if (q1 == q2 && ti.tcpi_bytes_received >= q1) {
			*out = ti.tcpi_bytes_received - q1;
			return 0;
		}
	}
	return -1;
}
