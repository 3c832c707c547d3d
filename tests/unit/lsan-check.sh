#!/bin/sh
# Runs a Criterion test binary of a sanitizer build and fails when any
# sanitizer (LeakSanitizer above all) reported in any process. Criterion
# counts a test as passed once it has reported, whatever its worker does at
# exit, which is when LeakSanitizer runs; and with --tap=- the workers'
# stderr is not shown. So the reports go to files, read here.
dir=$(mktemp -d "${TMPDIR:-/tmp}/ktls-san.XXXXXX") || exit 99
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$dir/asan" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$dir/ubsan" \
	"$@"
rc=$?
for f in "$dir"/*; do
	[ -s "$f" ] || continue
	cat "$f" >&2
	echo "Bail out! sanitizer report from a test process (see stderr)"
	rc=1
done
rm -rf "$dir"
exit "$rc"
