/* Fault injection at raw bpf(2) (bpf/register.c). Only in
 * libktls-shim-fault.so. */
#define _GNU_SOURCE
#include <linux/bpf.h>

#include "core/fault.h"

int ktls_fault_bpf(int cmd)
{
	switch (cmd) {
	case BPF_OBJ_GET:
		return ktls_fault_hit(FP_BPF_OBJ_GET);
	case BPF_MAP_UPDATE_ELEM:
		return ktls_fault_hit(FP_BPF_MAP_UPDATE);
	case BPF_MAP_LOOKUP_ELEM:
		return ktls_fault_hit(FP_BPF_MAP_LOOKUP);
	default:
		return 0;
	}
}
