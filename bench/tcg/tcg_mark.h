/* The window marker of bench/tcg/insn_count.c: `xchg %bx,%bx` (66 87 db),
 * an instruction that changes nothing (compilers never emit it), which the
 * plugin recognises when it translates guest code. Natively, or in a VM
 * without the plugin, it costs one instruction and does nothing. */
#ifndef KTLS_TCG_MARK_H
#define KTLS_TCG_MARK_H
static inline void tcg_mark(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile(".byte 0x66, 0x87, 0xdb" ::: "memory");
#endif
}
#endif
