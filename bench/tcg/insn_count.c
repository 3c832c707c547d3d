/* insn_count: a QEMU TCG plugin (QEMU 7.2 plugin API, version 1) that counts
 * the guest instructions executed, split into user and kernel, and writes a
 * snapshot of the counts each time the guest executes the marker instruction
 * `xchg %bx,%bx` (bytes 66 87 db; bench/tcg/tcg_mark.h). The guest brackets
 * a measurement with two markers; the difference of the two snapshots is
 * the work done in between, the same on any host and under any host load.
 *
 *   qemu-system-x86_64 ... -plugin PATH/libinsn_count.so,out=FILE
 *
 * FILE gets one line per marker, flushed before the guest goes on:
 *   mark SEQ VCPU USER KERNEL
 * (cumulative, all vCPUs summed; VCPU is the one that ran the marker) and
 * one `exit 0 -1 USER KERNEL` line when QEMU ends.
 *
 * User or kernel is decided per translation block by the virtual address of
 * its first instruction: x86-64 kernel text lives in the upper canonical
 * half (>= 0xffff800000000000), user code in the lower half. A block never
 * spans both. Counted on the user side: the vDSO (kernel-provided code in
 * user space). Counted on the kernel side: every kernel path on any CPU in
 * the window (interrupts, softirqs, other processes' system calls, the idle
 * loop up to hlt), and the legacy vsyscall page (none of our programs use
 * it). Not per process: the plugin API of 7.2 cannot read registers (CR3).
 *
 * Counting is per executed translation block (one callback per block, with
 * the block's instruction count as its data), per vCPU (each vCPU thread
 * adds only to its own, cache-line sized slot: no shared writes under
 * multi-threaded TCG). A block left early (a fault in its middle) still
 * counts whole. A `rep movs`/`rep stos` is re-executed by TCG once per
 * iteration, so it counts as many instructions as it moves elements
 * (measured: `tcg-mark copy 1048576`, one 1 MiB `rep movsb` between two
 * markers, = 1,048,578 user instructions; `copy 4096` = 4,098).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define KERNEL_HALF 0xffff800000000000ULL

struct vcpu_count {
	uint64_t n[2]; /* [0] user, [1] kernel */
	char pad[64 - 2 * sizeof(uint64_t)];
};

static struct vcpu_count *g_count;
static int g_ncpu;
static FILE *g_out;
static uint64_t g_seq;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const unsigned char MARK[3] = { 0x66, 0x87, 0xdb };

/* The block's instruction count and side, packed into the callback's data. */
static void tb_exec(unsigned int vcpu, void *data)
{
	uintptr_t d = (uintptr_t)data;
	if (vcpu >= (unsigned int)g_ncpu)
		return;
	uint64_t *c = &g_count[vcpu].n[d & 1];
	/* Only this vCPU's thread writes it; relaxed stores keep a reader on
	 * another thread (a marker) from seeing a torn value. */
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + (d >> 1),
			 __ATOMIC_RELAXED);
}

static void totals(uint64_t t[2])
{
	t[0] = t[1] = 0;
	for (int i = 0; i < g_ncpu; i++)
		for (int k = 0; k < 2; k++)
			t[k] += __atomic_load_n(&g_count[i].n[k],
						__ATOMIC_RELAXED);
}

static void write_line(const char *what, long vcpu)
{
	uint64_t t[2];
	pthread_mutex_lock(&g_lock);
	totals(t);
	fprintf(g_out, "%s %" PRIu64 " %ld %" PRIu64 " %" PRIu64 "\n", what,
		g_seq++, vcpu, t[0], t[1]);
	fflush(g_out);
	pthread_mutex_unlock(&g_lock);
}

static void mark_exec(unsigned int vcpu, void *data)
{
	(void)data;
	write_line("mark", (long)vcpu);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	size_t n = qemu_plugin_tb_n_insns(tb);
	uintptr_t kernel = qemu_plugin_tb_vaddr(tb) >= KERNEL_HALF;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec,
					     QEMU_PLUGIN_CB_NO_REGS,
					     (void *)((n << 1) | kernel));
	if (kernel)
		return; /* the marker is a user-space instruction */
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
		if (qemu_plugin_insn_size(in) == sizeof(MARK) &&
		    !memcmp(qemu_plugin_insn_data(in), MARK, sizeof(MARK)))
			qemu_plugin_register_vcpu_insn_exec_cb(
				in, mark_exec, QEMU_PLUGIN_CB_NO_REGS, NULL);
	}
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	(void)id;
	(void)p;
	write_line("exit", -1);
	fclose(g_out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
					   const qemu_info_t *info, int argc,
					   char **argv)
{
	const char *out = NULL;
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			out = argv[i] + 4;
	if (!out || info->system_emulation == false) {
		fprintf(stderr, "insn_count: needs out=FILE, system mode\n");
		return -1;
	}
	g_ncpu = info->system.max_vcpus;
	g_count = calloc((size_t)g_ncpu, sizeof(*g_count));
	g_out = fopen(out, "w");
	if (!g_count || !g_out) {
		perror("insn_count");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
