#!/bin/sh
# Runs a Criterion test binary under valgrind memcheck (meson test --setup
# valgrind) and fails when valgrind reported anything in any process: an
# invalid read or write, a use of uninitialised memory, a definite leak.
# As in lsan-check.sh, a worker's report at exit comes after Criterion has
# counted its test as passed, so the reports go to files, read here.
dir=$(mktemp -d "${TMPDIR:-/tmp}/ktls-vg.XXXXXX") || exit 99
valgrind -q --trace-children=yes --log-file="$dir/vg.%p" \
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
