/* tcg-mark: executes the window marker of bench/tcg/insn_count.c once, for
 * scripts that bracket a whole command (bench/nginx-bench, nbd-bench).
 * `tcg-mark copy N` also copies N bytes with one `rep movsb` between two
 * markers: how TCG counts a string copy (bench/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcg_mark.h"

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "copy")) {
		size_t n = strtoull(argv[2], NULL, 0);
		char *a = malloc(n), *b = malloc(n);
		if (!a || !b)
			return 1;
		memset(a, 1, n);
		memset(b, 2, n);
		tcg_mark();
#if defined(__x86_64__)
		__asm__ volatile("rep movsb"
				 : "+D"(b), "+S"(a), "+c"(n)
				 :
				 : "memory");
#endif
		tcg_mark();
		return 0;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: tcg-mark [copy N]\n");
		return 2;
	}
	tcg_mark();
	return 0;
}
