/*
 * ktls-shim-stats check, the kernel's half: the tls module, whether the
 * kernel takes the TLS ULP and which AEADs (asked the way the shim and
 * OpenSSL ask: setsockopt on an established loopback TCP socket), rekey,
 * and whether the eBPF accounting can load.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bpf/ktls_stats.h"
#include "core/cipher.h"
#include "stats.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#define BPF_FS_MAGIC 0xcafe4a11

/* Whether a line of the file (after leading blanks) starts with word. */
static int file_has_line(const char *path, const char *word)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[512];
	int found = 0;
	size_t n = strlen(word);
	while (!found && fgets(line, sizeof(line), f)) {
		const char *p = line + strspn(line, " \t");
		found = strncmp(p, word, n) == 0 &&
			strchr(" \t\n:", p[n] ? p[n] : '\n') != NULL;
	}
	fclose(f);
	return found;
}

/* The modules-load.d (or /etc/modules) file that loads tls at boot. */
static int boot_loads_tls(char *which, size_t len)
{
	static const char *const pats[] = {
		"/etc/modules-load.d/*.conf", "/run/modules-load.d/*.conf",
		"/usr/lib/modules-load.d/*.conf", "/lib/modules-load.d/*.conf",
		"/etc/modules",
	};
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		glob_t g;
		if (glob(pats[i], 0, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++) {
			if (file_has_line(g.gl_pathv[j], "tls")) {
				snprintf(which, len, "%s", g.gl_pathv[j]);
				globfree(&g);
				return 1;
			}
		}
		globfree(&g);
	}
	return 0;
}

void check_tls_module(void)
{
	struct utsname u;
	uname(&u);
	check_line(CHECK_INFO, "kernel", "%s %s", u.sysname, u.release);
	char dir[300], path[400], boot[300];
	snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
	snprintf(path, sizeof(path), "%s/modules.builtin", dir);
	int builtin = file_has_line(path, "kernel/net/tls/tls.ko");
	snprintf(path, sizeof(path), "%s/modules.dep", dir);
	int avail = file_has_line(path, "kernel/net/tls/tls.ko");
	int loaded = access("/sys/module/tls", F_OK) == 0;
	int at_boot = boot_loads_tls(boot, sizeof(boot));
	if (!loaded && !builtin && !avail) {
		check_line(CHECK_FAIL, "tls-module",
			   "none: not loaded, not built in, not in %s%s", dir,
			   access(dir, F_OK) ? " (no such directory)" : "");
		return;
	}
	check_line(CHECK_OK, "tls-module", "%s",
		   loaded ? "loaded" : builtin ? "built in"
					  : "available, not loaded");
	if (loaded || builtin)
		check_line(CHECK_OK, "unprivileged",
			   "every process can use it (%s)",
			   loaded ? "module loaded" : "built in");
	else
		check_line(CHECK_WARN, "unprivileged",
			   "the kernel loads tls on demand only for "
			   "CAP_NET_ADMIN callers: unprivileged ones get "
			   "kernel-has-no-tls until it is loaded%s%s",
			   at_boot ? "; at boot by " : " (add tls to "
			   "/etc/modules-load.d/)", at_boot ? boot : "");
}

/* An established loopback TCP connection: *fds = listener, client,
 * accepted. -1 with errno on failure. */
static int tcp_pair(int fds[3])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[2] = -1;
	if (fds[0] < 0 || fds[1] < 0 ||
	    bind(fds[0], (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fds[0], 1) ||
	    getsockname(fds[0], (struct sockaddr *)&a, &al) ||
	    connect(fds[1], (struct sockaddr *)&a, sizeof(a)))
		return -1;
	fds[2] = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC);
	return fds[2] < 0 ? -1 : 0;
}

static void close_pair(int fds[3])
{
	int e = errno;
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	errno = e;
}

/* Asks for TX with an all-zero key of cipher c, `times` times (twice: a
 * rekey). 0, or the errno of the step that failed. */
static int try_tx(enum ktls_cipher c, unsigned version, int times)
{
	const struct ktls_cipher_desc *d = ktls_cipher_desc(c);
	unsigned char info[64] = { 0 };
	struct tls_crypto_info *h = (struct tls_crypto_info *)info;
	h->version = (unsigned short)version;
	h->cipher_type = d->kernel_type;
	socklen_t len = (socklen_t)(sizeof(*h) + d->iv_len + d->key_len +
				    d->salt_len + TLS_CIPHER_AES_GCM_128_REC_SEQ_SIZE);
	int fds[3], err = 0;
	if (tcp_pair(fds) ||
	    setsockopt(fds[1], SOL_TCP, TCP_ULP, "tls", sizeof("tls")))
		err = errno;
	for (int i = 0; !err && i < times; i++)
		if (setsockopt(fds[1], SOL_TLS, TLS_TX, info, len))
			err = errno;
	close_pair(fds);
	return err;
}

/* Whether this process's CapEff holds any of mask's capabilities. */
static int has_cap(unsigned long long mask)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long eff = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	if (f)
		fclose(f);
	return (eff & mask) != 0;
}

#define CAP_BIT(n) (1ull << (n))
#define CAP_NET_ADMIN_BIT CAP_BIT(12)
#define CAP_BPF_BITS (CAP_BIT(39) | CAP_BIT(21)) /* CAP_BPF, CAP_SYS_ADMIN */

static int check_ulp(void)
{
	int fds[3], err = 0;
	if (tcp_pair(fds))
		err = errno;
	else if (setsockopt(fds[1], SOL_TCP, TCP_ULP, "tls", sizeof("tls")))
		err = -errno;
	close_pair(fds);
	if (err > 0) {
		check_line(CHECK_FAIL, "tls-ulp",
			   "cannot make a loopback TCP connection: %s",
			   strerror(err));
		return 1;
	}
	if (err < 0) {
		check_line(CHECK_FAIL, "tls-ulp",
			   "setsockopt(TCP_ULP, \"tls\") refused: %s: no kTLS "
			   "for this process%s", strerror(-err),
			   -err != ENOENT ? ""
			   : has_cap(CAP_NET_ADMIN_BIT)
				   ? " (this kernel has no tls: CONFIG_TLS off "
				     "or tls.ko missing)"
				   : " (tls not loaded, and only CAP_NET_ADMIN "
				     "callers load it)");
		return 1;
	}
	check_line(CHECK_OK, "tls-ulp", "the kernel takes the TLS ULP");
	return 0;
}

static int check_aeads(void)
{
	static const unsigned versions[2] = { KTLS_TLS12, KTLS_TLS13 };
	char out[512] = "", no[512] = "";
	size_t o = 0, n = 0;
	int offered = 0;
	for (int v = 0; v < 2; v++) {
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%sTLS 1.%d:",
				      v ? "; " : "", v ? 3 : 2);
		for (int c = 1; c < KTLS_CIPHER_COUNT; c++) {
			const char *name = ktls_cipher_desc(c)->name;
			int err = try_tx(c, versions[v], 1);
			if (!err) {
				offered++;
				o += (size_t)snprintf(out + o, sizeof(out) - o,
						      " %s", name);
			} else if (n < sizeof(no))
				n += (size_t)snprintf(no + n, sizeof(no) - n,
						      "%s%s/1.%d %s", n ? ", " : "",
						      name, v ? 3 : 2,
						      strerrorname_np(err));
		}
	}
	check_line(offered ? CHECK_OK : CHECK_FAIL, "aeads", "%s%s%s%s",
		   offered ? out : "none", n ? " (refused: " : "", no,
		   n ? ")" : "");
	return !offered;
}

static void check_rekey(void)
{
	int err = try_tx(KTLS_CIPHER_AES_128_GCM, KTLS_TLS13, 2);
	if (!err)
		check_line(CHECK_OK, "rekey",
			   "yes: TLS 1.3 KeyUpdates follow into the kernel");
	else
		check_line(CHECK_WARN, "rekey",
			   "no (a second TLS 1.3 TX key: %s): kernel before "
			   "6.14; TLS 1.3 RX stays in userspace unless "
			   "tls13_rx_without_rekey = yes", strerrorname_np(err));
}

int check_ulp_and_aeads(void)
{
	if (check_ulp())
		return 1;
	if (check_aeads())
		return 1;
	check_rekey();
	return 0;
}

int check_ebpf(void)
{
	struct statfs fs;
	const char *why = NULL;
	if (access(KTLS_BPF_SOCKETS_PIN, F_OK) == 0) {
		check_line(CHECK_OK, "ebpf", "loaded (%s)", KTLS_BPF_PIN_DIR);
		return 0;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		why = "no kernel BTF (/sys/kernel/btf/vmlinux)";
	else if (statfs("/sys/fs/bpf", &fs) || fs.f_type != BPF_FS_MAGIC)
		why = "no bpffs mounted at /sys/fs/bpf";
	else if (!has_cap(CAP_BPF_BITS))
		why = "this process lacks CAP_BPF/CAP_SYS_ADMIN";
	else if (access("/sys/kernel/btf/tls", R_OK))
		why = "no BTF for tls (/sys/kernel/btf/tls: module not loaded)";
	if (why)
		check_line(CHECK_WARN, "ebpf", "accounting cannot load: %s", why);
	else
		check_line(CHECK_OK, "ebpf",
			   "accounting loadable (" ME " load), not loaded");
	return 0;
}
