/*
 * See ulp_diag.h. Every length read from a reply is checked against what is
 * left of the buffer before it is used, and headers are copied out with
 * memcpy, so a hostile or truncated buffer (at any alignment) can only make
 * the parse fail.
 */
#define _GNU_SOURCE
#include "bpf/ulp_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf/ktls_stats.h"

#ifndef INET_DIAG_ULP_INFO
#define INET_DIAG_ULP_INFO 19
#endif

#define ATTR_HDR 4u
#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)
/* nla_type bits that are flags, not part of the type. */
#define ATTR_TYPE_MASK 0x3fffu

/* Walks attributes in [p, p+len): calls fn for each, stops on error. */
static int walk(const unsigned char *p, size_t len,
		int (*fn)(unsigned type, const unsigned char *v, size_t vlen,
			  struct ktls_ulp_info *out),
		struct ktls_ulp_info *out)
{
	while (len >= ATTR_HDR) {
		uint16_t alen, type;
		memcpy(&alen, p, 2);
		memcpy(&type, p + 2, 2);
		if (alen < ATTR_HDR || alen > len)
			return EBADMSG;
		int e = fn(type & ATTR_TYPE_MASK, p + ATTR_HDR, alen - ATTR_HDR,
			   out);
		if (e)
			return e;
		size_t step = ALIGN4(alen);
		if (step >= len)
			return 0; /* the last one may lack its padding */
		p += step;
		len -= step;
	}
	/* 1-3 stray bytes cannot be an attribute. */
	return len ? EBADMSG : 0;
}

static int u16_attr(const unsigned char *v, size_t vlen, uint16_t *out)
{
	if (vlen != 2)
		return EBADMSG;
	memcpy(out, v, 2);
	return 0;
}

static int tls_attr(unsigned type, const unsigned char *v, size_t vlen,
		    struct ktls_ulp_info *out)
{
	switch (type) {
	case TLS_INFO_VERSION:
		return u16_attr(v, vlen, &out->version);
	case TLS_INFO_CIPHER:
		return u16_attr(v, vlen, &out->cipher);
	case TLS_INFO_TXCONF:
		return u16_attr(v, vlen, &out->txconf);
	case TLS_INFO_RXCONF:
		return u16_attr(v, vlen, &out->rxconf);
	case TLS_INFO_ZC_RO_TX:
		out->zc_ro_tx = 1; /* a flag: no payload */
		return 0;
	case TLS_INFO_RX_NO_PAD:
		out->rx_no_pad = 1;
		return 0;
	default:
		return 0; /* newer kernels add attributes: skip them */
	}
}

static int ulp_attr(unsigned type, const unsigned char *v, size_t vlen,
		    struct ktls_ulp_info *out)
{
	if (type == INET_ULP_INFO_NAME) {
		/* nla_put_string: the name and its NUL, nothing after. */
		size_t n = strnlen((const char *)v, vlen);
		if (n == vlen)
			return EBADMSG;
		out->ulp = n == 3 && memcmp(v, "tls", 3) == 0 ? KTLS_ULP_TLS
							      : KTLS_ULP_OTHER;
		return 0;
	}
	if (type == INET_ULP_INFO_TLS)
		return walk(v, vlen, tls_attr, out);
	return 0;
}

static int diag_attr(unsigned type, const unsigned char *v, size_t vlen,
		     struct ktls_ulp_info *out)
{
	if (type != INET_DIAG_ULP_INFO)
		return 0;
	out->ulp = KTLS_ULP_OTHER; /* until INET_ULP_INFO_NAME says which */
	int e = walk(v, vlen, ulp_attr, out);
	if (!e && out->ulp != KTLS_ULP_TLS &&
	    (out->version || out->cipher || out->txconf || out->rxconf))
		e = EBADMSG; /* TLS details under another ULP's name */
	return e;
}

int ktls_ulp_parse_msg(const void *body, size_t len, struct ktls_ulp_info *out)
{
	struct inet_diag_msg m;
	memset(out, 0, sizeof(*out));
	if (!body || len < sizeof(m))
		return EBADMSG;
	memcpy(&m, body, sizeof(m));
	out->cookie = (uint64_t)m.id.idiag_cookie[1] << 32 |
		      m.id.idiag_cookie[0];
	size_t off = ALIGN4(sizeof(m)); /* NLMSG_ALIGN: 72 already is */
	if (off > len)
		return EBADMSG;
	int e = walk((const unsigned char *)body + off, len - off, diag_attr,
		     out);
	if (e)
		memset(out, 0, sizeof(*out));
	return e;
}

int ktls_ulp_parse_reply(const void *buf, size_t len,
			 struct ktls_ulp_info *out)
{
	const unsigned char *p = buf;
	memset(out, 0, sizeof(*out));
	if (!buf)
		return EBADMSG;
	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, p, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len)
			return EBADMSG;
		const unsigned char *body = p + sizeof(h);
		size_t blen = h.nlmsg_len - sizeof(h);
		if (h.nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr err;
			if (blen < sizeof(err.error))
				return EBADMSG;
			memcpy(&err.error, body, sizeof(err.error));
			/* error 0 is an ACK: no socket in it. */
			return err.error < 0 ? -err.error : ENOENT;
		}
		if (h.nlmsg_type == NLMSG_DONE)
			return ENOENT;
		if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY)
			return ktls_ulp_parse_msg(body, blen, out);
		size_t step = NLMSG_ALIGN(h.nlmsg_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return len && len < sizeof(struct nlmsghdr) ? EBADMSG : ENOENT;
}

int ktls_ulp_conf_mode(unsigned conf)
{
	switch (conf) {
	case TLS_CONF_BASE:
		return KTLS_MODE_NONE;
	case TLS_CONF_SW:
		return KTLS_MODE_SW;
	case TLS_CONF_HW:
	case TLS_CONF_HW_RECORD:
		return KTLS_MODE_DEVICE;
	default:
		return KTLS_MODE_KERNEL;
	}
}

void ktls_ulp_modes(const struct ktls_ulp_info *info, int shim_tx,
		    int shim_rx, uint8_t *tx_mode, uint8_t *rx_mode)
{
	if (!info || info->ulp != KTLS_ULP_TLS) {
		*tx_mode = shim_tx ? KTLS_MODE_KERNEL : KTLS_MODE_NONE;
		*rx_mode = shim_rx ? KTLS_MODE_KERNEL : KTLS_MODE_NONE;
		return;
	}
	*tx_mode = (uint8_t)ktls_ulp_conf_mode(info->txconf);
	*rx_mode = (uint8_t)ktls_ulp_conf_mode(info->rxconf);
}

/* The request: which socket, by 4-tuple and cookie (an exact lookup, not a
 * dump). INET_DIAG_ULP_INFO (19) has no idiag_ext bit of its own (8 bits):
 * the kernel adds it with the INET_DIAG_INFO extension (tcp_info, as
 * `ss -i` asks), and on 6.1 only for a requester with CAP_NET_ADMIN. */
static int build_request(int fd, uint64_t cookie, struct inet_diag_req_v2 *r)
{
	struct sockaddr_storage me, peer;
	socklen_t ml = sizeof(me), pl = sizeof(peer);
	if (syscall(SYS_getsockname, fd, &me, &ml) ||
	    syscall(SYS_getpeername, fd, &peer, &pl))
		return errno;
	memset(r, 0, sizeof(*r));
	r->sdiag_family = (uint8_t)me.ss_family;
	r->sdiag_protocol = IPPROTO_TCP;
	r->idiag_states = ~0u;
	r->idiag_ext = 1u << (INET_DIAG_INFO - 1);
	if (me.ss_family == AF_INET && peer.ss_family == AF_INET) {
		struct sockaddr_in *a = (void *)&me, *b = (void *)&peer;
		r->id.idiag_sport = a->sin_port;
		r->id.idiag_dport = b->sin_port;
		r->id.idiag_src[0] = a->sin_addr.s_addr;
		r->id.idiag_dst[0] = b->sin_addr.s_addr;
	} else if (me.ss_family == AF_INET6 && peer.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)&me, *b = (void *)&peer;
		r->id.idiag_sport = a->sin6_port;
		r->id.idiag_dport = b->sin6_port;
		memcpy(r->id.idiag_src, &a->sin6_addr, 16);
		memcpy(r->id.idiag_dst, &b->sin6_addr, 16);
		r->id.idiag_if = a->sin6_scope_id;
	} else {
		return EAFNOSUPPORT;
	}
	r->id.idiag_cookie[0] = (uint32_t)cookie;
	r->id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
	return 0;
}

int ktls_ulp_query(int fd, uint64_t cookie, struct ktls_ulp_info *out)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req;
	memset(out, 0, sizeof(*out));
	memset(&req, 0, sizeof(req));
	int e = build_request(fd, cookie, &req.r);
	if (e)
		return e;
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = 1;

	int nl = (int)syscall(SYS_socket, AF_NETLINK,
			      SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return errno;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	/* 8 KiB: a reply for one socket is a few hundred bytes. */
	union {
		struct nlmsghdr h;
		unsigned char b[8192];
	} buf;
	long n = syscall(SYS_sendto, nl, &req, sizeof(req), 0, &kernel,
			 sizeof(kernel));
	if (n == (long)sizeof(req))
		/* The kernel answers a non-dump request before sendto
		 * returns: never wait for it. */
		n = syscall(SYS_recvfrom, nl, buf.b, sizeof(buf.b),
			    MSG_DONTWAIT, NULL, NULL);
	e = n < 0 ? errno : 0;
	syscall(SYS_close, nl);
	if (e)
		return e;
	e = ktls_ulp_parse_reply(buf.b, (size_t)n, out);
	if (!e && out->cookie != cookie)
		e = ESTALE;
	return e;
}
