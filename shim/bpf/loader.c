/*
 * See loader.h. Attaches only what the running kernel has (the sendpage
 * functions exist up to 6.4), checked against tls.ko's BTF before loading,
 * so a missing function is a skipped program, not a failed load.
 */
#define _GNU_SOURCE
#include "bpf/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf/ktls_stats.h"
#include "ktls_stats.skel.h"

#define BPFFS "/sys/fs/bpf"
#define BPFFS_MAGIC 0xcafe4a11

/* Program -> the tls.ko function it attaches to. */
static const struct {
	const char *prog, *func;
} targets[] = {
	{ "sw_sendmsg", "tls_sw_sendmsg" },
	{ "device_sendmsg", "tls_device_sendmsg" },
	{ "sw_sendpage", "tls_sw_sendpage" },
	{ "device_sendpage", "tls_device_sendpage" },
	{ "sw_recvmsg_entry", "tls_sw_recvmsg" },
	{ "sw_recvmsg", "tls_sw_recvmsg" },
	{ "sw_splice_read", "tls_sw_splice_read" },
	{ "sk_proto_close", "tls_sk_proto_close" },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static const char *const map_names[] = { "sockets", "owners", "totals",
					 "pid_totals", "rx_inflight" };
#define NMAPS (sizeof(map_names) / sizeof(map_names[0]))

static int verbosity;

static int print_libbpf(enum libbpf_print_level lvl, const char *fmt,
			va_list ap)
{
	if (!verbosity || (lvl == LIBBPF_DEBUG && verbosity < 2))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

__attribute__((format(printf, 3, 4))) static int
failed(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return KTLS_BPF_LOAD_FAILED;
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* The bpffs mount, locked; -1 with why when there is none. */
static int lock_bpffs(char *why, size_t whylen)
{
	struct statfs sf;
	if (statfs(BPFFS, &sf) != 0 || (unsigned long)sf.f_type != BPFFS_MAGIC)
		return failed(why, whylen,
			      "cannot load: no bpffs at " BPFFS
			      " (mount -t bpf bpf " BPFFS ")");
	int fd = open(BPFFS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return failed(why, whylen, "cannot open " BPFFS ": %s",
			      strerror(errno));
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return failed(why, whylen, "cannot lock " BPFFS ": %s",
				      strerror(e));
		}
	}
	return fd; /* close() drops the lock */
}

static int unpin_all(void)
{
	char path[256];
	int removed = 0;
	for (size_t i = 0; i < NTARGETS; i++) {
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/link_%s",
			 targets[i].prog);
		removed += unlink(path) == 0;
	}
	for (size_t i = 0; i < NMAPS; i++) {
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/%s",
			 map_names[i]);
		removed += unlink(path) == 0;
	}
	return removed;
}

int ktls_bpf_unload(char *why, size_t whylen)
{
	int lk = lock_bpffs(why, whylen);
	if (lk < 0)
		return lk;
	int removed = unpin_all();
	int rc = removed;
	if (rmdir(KTLS_BPF_PIN_DIR) != 0 && errno != ENOENT)
		rc = failed(why, whylen, "cannot remove %s: %s",
			    KTLS_BPF_PIN_DIR, strerror(errno));
	close(lk);
	return rc;
}

/* Which programs to load: those whose function tls.ko has. */
static int choose(struct ktls_stats *skel, char *why, size_t whylen)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return failed(why, whylen,
			      "cannot load: the kernel has no usable BTF "
			      "(/sys/kernel/btf/vmlinux missing or unreadable; "
			      "CONFIG_DEBUG_INFO_BTF)");
	struct btf *tls = btf__load_module_btf("tls", vmlinux);
	if (!tls) {
		btf__free(vmlinux);
		return failed(why, whylen,
			      "cannot attach: the kernel has no 'tls' module "
			      "BTF (/sys/kernel/btf/tls missing: kernel without "
			      "CONFIG_TLS, or tls.ko not loaded: modprobe tls)");
	}
	int want = 0;
	for (size_t i = 0; i < NTARGETS; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(
			skel->obj, targets[i].prog);
		int has = btf__find_by_name_kind(tls, targets[i].func,
						 BTF_KIND_FUNC) > 0;
		if (p)
			bpf_program__set_autoload(p, has);
		want += has;
		if (verbosity)
			fprintf(stderr, "ktls-bpf: %s: %s\n", targets[i].func,
				has ? "attach" : "absent, skipped");
	}
	btf__free(tls);
	btf__free(vmlinux);
	if (!want)
		return failed(why, whylen,
			      "cannot attach: tls.ko has none of the functions "
			      "this program knows");
	return 0;
}

static struct bpf_link *link_of(struct ktls_stats *skel, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(skel->obj,
								 name);
	/* The skeleton keeps the links in its own array, in program order. */
	for (int j = 0; p && j < skel->skeleton->prog_cnt; j++)
		if (*skel->skeleton->progs[j].prog == p)
			return *skel->skeleton->progs[j].link;
	return NULL;
}

static int pin(struct ktls_stats *skel, int *attached, char *why,
	       size_t whylen)
{
	char path[256];
	int err;
	if (mkdir(KTLS_BPF_PIN_DIR, 0700) && errno != EEXIST)
		return failed(why, whylen, "cannot create %s: %s",
			      KTLS_BPF_PIN_DIR, strerror(errno));
	for (size_t i = 0; i < NMAPS; i++) {
		struct bpf_map *m =
			bpf_object__find_map_by_name(skel->obj, map_names[i]);
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/%s",
			 map_names[i]);
		if (!m)
			return failed(why, whylen, "no map %s", map_names[i]);
		if ((err = bpf_map__pin(m, path)))
			return failed(why, whylen, "cannot pin %s: %s", path,
				      strerror(-err));
	}
	for (size_t i = 0; i < NTARGETS; i++) {
		struct bpf_link *l = link_of(skel, targets[i].prog);
		if (!l)
			continue;
		snprintf(path, sizeof(path), KTLS_BPF_PIN_DIR "/link_%s",
			 targets[i].prog);
		if ((err = bpf_link__pin(l, path)))
			return failed(why, whylen, "cannot pin %s: %s", path,
				      strerror(-err));
		(*attached)++;
	}
	return 0;
}

static int load_locked(int *attached, char *why, size_t whylen)
{
	if (exists(KTLS_BPF_SOCKETS_PIN))
		return KTLS_BPF_LOAD_ALREADY;
	struct ktls_stats *skel = ktls_stats__open();
	if (!skel)
		return failed(why, whylen, "cannot open the eBPF object: %s",
			      strerror(errno));
	int rc = choose(skel, why, whylen);
	if (rc)
		goto out;
	int err = ktls_stats__load(skel);
	if (err) {
		rc = failed(why, whylen,
			    "cannot load the eBPF programs: %s (ktls-shim-stats "
			    "-v -v load shows the verifier log)",
			    strerror(-err));
		goto out;
	}
	if ((err = ktls_stats__attach(skel))) {
		rc = failed(why, whylen, "cannot attach: %s", strerror(-err));
		goto out;
	}
	if ((rc = pin(skel, attached, why, whylen))) {
		unpin_all();
		rmdir(KTLS_BPF_PIN_DIR);
	}
out:
	ktls_stats__destroy(skel); /* the pins keep the rest alive */
	return rc;
}

int ktls_bpf_load(int verbose, int *attached, char *why, size_t whylen)
{
	*attached = 0;
	if (whylen)
		why[0] = '\0';
	int lk = lock_bpffs(why, whylen);
	if (lk < 0)
		return lk;
	verbosity = verbose;
	libbpf_print_fn_t old = libbpf_set_print(print_libbpf);
	int rc = load_locked(attached, why, whylen);
	libbpf_set_print(old);
	close(lk);
	return rc;
}
