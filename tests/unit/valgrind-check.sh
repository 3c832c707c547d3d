#!/bin/sh
# Runs a Criterion test binary under valgrind memcheck (meson test --setup
# valgrind) and fails when valgrind reported anything in any process: an
# invalid read or write, a use of uninitialised memory, a definite leak.
# As in lsan-check.sh, a worker's report at exit comes after Criterion has
# counted its test as passed, so the reports go to files, read here.
# Criterion runs each test in a worker of its own, exec()ed afresh, so the
# time goes to memcheck starting up over and over, not to the tests. Hence:
# --read-inline-info=no (stack traces show no inlined frames; what is
# detected is the same) and KTLS_VG_PRELOAD (meson.build sets it; see
# vg_no_ca_bundle.c), each of which saves a tenth or so.
dir=$(mktemp -d "${TMPDIR:-/tmp}/ktls-vg.XXXXXX") || exit 99
if [ -n "${KTLS_VG_PRELOAD:-}" ]; then
	LD_PRELOAD="$KTLS_VG_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}"
	export LD_PRELOAD
fi
valgrind -q --trace-children=yes --log-file="$dir/vg.%p" \
	--read-inline-info=no \
	--leak-check=full --show-leak-kinds=definite \
	--errors-for-leak-kinds=definite --error-exitcode=42 "$@"
rc=$?
for f in "$dir"/*; do
	[ -s "$f" ] || continue
	cat "$f" >&2
	echo "Bail out! valgrind report from a test process (see stderr)"
	rc=1
done
rm -rf "$dir"
exit "$rc"
