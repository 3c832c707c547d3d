/*
 * One read of the pinned eBPF maps for every view of ktls-shim-stats show,
 * the names the views share, comm made valid UTF-8, and the atomic write
 * of a view to a file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "stats.h"

int stats_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, ME ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

const char *stats_mode_name(unsigned m)
{
	switch (m) {
	case KTLS_MODE_KERNEL: return "kernel";
	case KTLS_MODE_SW: return "sw";
	case KTLS_MODE_DEVICE: return "device";
	default: return "-";
	}
}

const char *stats_version_name(unsigned v)
{
	switch (v) {
	case 0x0303: return "TLS1.2";
	case 0x0304: return "TLS1.3";
	default: return "-";
	}
}

const char *stats_cipher_name(unsigned c)
{
	switch (c) {
	case 51: return "AES-128-GCM";
	case 52: return "AES-256-GCM";
	case 53: return "AES-128-CCM";
	case 54: return "CHACHA20-POLY1305";
	default: return "-";
	}
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
		     : s[0] >= 0xe0		  ? 3
		     : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
						    : 0;
	if (!len || len > n)
		return 0;
	/* The second byte's range excludes overlong forms, surrogates and
	 * code points past U+10FFFF. */
	unsigned char lo = s[0] == 0xe0 ? 0xa0 : s[0] == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = s[0] == 0xed ? 0x9f : s[0] == 0xf4 ? 0x8f : 0xbf;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

void stats_utf8(const char *in, size_t n, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, i = 0;
	while (i < n && s[i]) {
		size_t len = s[i] < 0x80 ? 1 : utf8_seq(s + i, n - i);
		/* An invalid byte becomes U+FFFD (3 bytes). */
		const char *put = len ? in + i : "\xef\xbf\xbd";
		size_t plen = len ? len : 3;
		if (o + plen >= outlen)
			break;
		memcpy(out + o, put, plen);
		o += plen;
		i += len ? len : 1;
	}
	out[o] = 0;
}

static void totals_add(struct ktls_totals *t, const struct ktls_totals *u)
{
#define X(f) t->f += u->f;
	TOTALS_FIELDS(X)
#undef X
}

static void totals_of_row(struct ktls_totals *t, const struct ktls_sock_stats *s)
{
	struct ktls_totals u = { 1, s->tx_bytes, s->tx_calls, s->tx_sw_bytes,
				 s->tx_device_bytes, s->tx_ctrl_bytes,
				 s->tx_errors, s->rx_bytes, s->rx_calls,
				 s->rx_ctrl_bytes, s->rx_errors };
	totals_add(t, &u);
}

/* Room for one more element in *arr (n in use, *cap allocated). */
static int grow(void *arr, size_t n, size_t *cap, size_t size)
{
	void **a = arr;
	if (n < *cap)
		return 0;
	size_t c = *cap ? 2 * *cap : 64;
	void *p = realloc(*a, c * size);
	if (!p)
		return -1;
	*a = p;
	*cap = c;
	return 0;
}

static int read_rows(struct stats_snap *sn, int sfd, int ofd)
{
	__u64 key, next, *prev = NULL;
	size_t cap = 0;
	while (bpf_map_get_next_key(sfd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (grow(&sn->rows, sn->nrows, &cap, sizeof(*sn->rows)))
			return -1;
		struct stats_row *r = &sn->rows[sn->nrows];
		memset(r, 0, sizeof(*r));
		r->cookie = key;
		if (bpf_map_lookup_elem(sfd, &key, &r->s))
			continue; /* gone since: closed and evicted */
		r->owned = ofd >= 0 && bpf_map_lookup_elem(ofd, &key, &r->o) == 0;
		if (!r->owned)
			memset(&r->o, 0, sizeof(r->o));
		stats_utf8(r->owned ? r->o.comm : r->s.comm, KTLS_BPF_COMM_LEN,
			   r->comm, sizeof(r->comm));
		if (!r->s.closed) /* closed rows are in the totals map */
			totals_of_row(&sn->live, &r->s);
		sn->nrows++;
	}
	return 0;
}

static int read_pids(struct stats_snap *sn, int pfd)
{
	__u32 pk, pnext, *pprev = NULL;
	size_t cap = 0;
	while (pfd >= 0 && bpf_map_get_next_key(pfd, pprev, &pnext) == 0) {
		pk = pnext;
		pprev = &pk;
		if (grow(&sn->pids, sn->npids, &cap, sizeof(*sn->pids)))
			return -1;
		sn->pids[sn->npids].pid = pk;
		if (bpf_map_lookup_elem(pfd, &pk, &sn->pids[sn->npids].t) == 0)
			sn->npids++;
	}
	return 0;
}

int stats_snap_read(struct stats_snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	int sfd = bpf_obj_get(KTLS_BPF_SOCKETS_PIN);
	if (sfd < 0)
		return -1;
	sn->loaded = 1;
	int ofd = bpf_obj_get(KTLS_BPF_OWNERS_PIN);
	int tfd = bpf_obj_get(KTLS_BPF_TOTALS_PIN);
	int pfd = bpf_obj_get(KTLS_BPF_PID_TOTALS_PIN);
	int rc = read_rows(sn, sfd, ofd) || read_pids(sn, pfd) ? -1 : 0;
	__u32 zero = 0;
	if (tfd >= 0)
		bpf_map_lookup_elem(tfd, &zero, &sn->closed);
	sn->all = sn->live;
	totals_add(&sn->all, &sn->closed);
	int e = errno;
	for (int *fd = (int[]){ sfd, ofd, tfd, pfd, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	errno = rc ? ENOMEM : e;
	return rc;
}

void stats_snap_free(struct stats_snap *sn)
{
	free(sn->rows);
	free(sn->pids);
	memset(sn, 0, sizeof(*sn));
}

/* The temporary file stays beside path (same filesystem: rename() is
 * atomic) and does not end in .prom, which the textfile collector reads. */
int stats_write(const char *path, int (*render)(FILE *, const void *),
		const void *arg)
{
	if (!path)
		return render(stdout, arg) || fflush(stdout) ? 1 : 0;
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    (int)sizeof(tmp))
		return stats_fail("--output %s: path too long", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return stats_fail("--output %s: %s", path, strerror(errno));
	FILE *f = fdopen(fd, "w");
	int bad = !f || fchmod(fd, 0644) || render(f, arg) || fflush(f) ||
		  ferror(f) || fsync(fd);
	int e = errno;
	if (f ? fclose(f) : close(fd))
		bad = 1;
	if (!bad && rename(tmp, path) == 0)
		return 0;
	e = bad ? e : errno;
	unlink(tmp);
	return stats_fail("--output %s: %s", path, strerror(e));
}
