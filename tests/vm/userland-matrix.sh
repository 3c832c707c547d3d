#!/usr/bin/env bash
# What the shim moves on this userland and kernel, one line per case: TLS
# 1.2/1.3 x shimmed side (client/server) x KeyUpdates (none, sent by the
# shimmed program, sent by the unshimmed peer, every other one asking for an
# update back). The peer is tests/tls_xfer without the shim (a real OpenSSL).
# KTLS_MATRIX_NOSHIM=1: the same cases without the shim, the "shimmed" side
# asking OpenSSL for its own kTLS instead (Options = KTLS in its config):
# what the library alone does with this kernel. KTLS_MATRIX_CIPHER13: a TLS
# 1.3 suite for every TLS 1.3 case (default: the library's choice).
# Run inside the VM, from the work tree:
#   tests/vm/ktls-vm --kernel trixie --userland trixie -- \
#       tests/vm/userland-matrix.sh build-trixie
# A measurement (issue 15), not a test: it never fails on what it finds.
set -euo pipefail

build=$(realpath -- "${1:?usage: userland-matrix.sh BUILD_DIR}")
xfer=$build/tests/tls_xfer shim=$build/shim/libktls-shim.so
[[ -x $xfer && -f $shim ]] || { echo "userland-matrix: no tls_xfer or shim in $build" >&2; exit 2; }
[[ -r /proc/net/tls_stat ]] || { echo "userland-matrix: no /proc/net/tls_stat (not in a kTLS VM)" >&2; exit 2; }
size=${KTLS_MATRIX_BYTES:-1048576}
nku=4
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$w/key.pem" -out "$w/cert.pem" -days 2 -subj /CN=localhost 2>/dev/null
: >"$w/empty.conf"
printf 'openssl_conf = c\n[c]\nssl_conf = s\n[s]\nsystem_default = d\n[d]\nOptions = KTLS\n' \
	>"$w/ktls.cnf"

echo "noshim=${KTLS_MATRIX_NOSHIM:-0} kernel=$(uname -r) userland=$(cat /etc/debian_version) $(openssl version | cut -d' ' -f1-2)" \
	"rekey_counters=$(grep -c Rekey /proc/net/tls_stat || true)"
stat_counters() { awk '{ printf "%s=%s ", $1, $2 }' /proc/net/tls_stat; }
# Nonzero deltas of /proc/net/tls_stat between two stat_counters outputs.
stat_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); o[kv[1]] = kv[2] }
		n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "=");
			d = kv[2] - o[kv[1]]; if (d && kv[1] !~ /^TlsCurr/) printf "%s+%d ", kv[1], d } }'
}
field() { grep -o "$1=[^ ]*" <<<"$2" | head -n1 | cut -d= -f2; }

for tls in 1.2 1.3; do
	for side in client server; do
		for ku in none shimmed peer; do
			[[ $tls == 1.3 || $ku == none ]] || continue
			updater=
			case $ku in
			shimmed) updater=$side ;;
			peer) if [[ $side == client ]]; then updater=server; else updater=client; fi ;;
			esac
			args() { # $1=role
				local a=(--role "$1" --tls "$tls")
				if [[ $tls == 1.3 && -n ${KTLS_MATRIX_CIPHER13:-} ]]; then
					a+=(--cipher "$KTLS_MATRIX_CIPHER13")
				fi
				if [[ $1 == "$updater" || -z $updater ]]; then
					a+=(--send "$size")
				else
					a+=(--send $((2 * size))) # still sending when updates come
				fi
				[[ $1 != "$updater" ]] || a+=(--key-updates "$nku")
				[[ $1 != server ]] || a+=(--cert "$w/cert.pem" --key "$w/key.pem" --port 0)
				printf '%s\n' "${a[@]}"
			}
			envs() { # $1=role
				if [[ $1 == "$side" && ${KTLS_MATRIX_NOSHIM:-0} == 1 ]]; then
					echo "OPENSSL_CONF=$w/ktls.cnf"
				elif [[ $1 == "$side" ]]; then
					echo "LD_PRELOAD=$shim KTLS_SHIM_LOG_LEVEL=debug KTLS_SHIM_CONFIG=$w/empty.conf"
				fi
			}
			# The server's redirection happens in the background: an old
			# s.out would show the previous server's port.
			rm -f "$w"/[cs].out "$w"/[cs].err
			before=$(stat_counters)
			mapfile -t sa < <(args server)
			# shellcheck disable=SC2046 # envs is words by design
			env -u LD_PRELOAD $(envs server) timeout 120 "$xfer" "${sa[@]}" \
				>"$w/s.out" 2>"$w/s.err" &
			spid=$!
			for _ in $(seq 100); do grep -q '^PORT ' "$w/s.out" && break; sleep 0.1; done
			port=$(awk '/^PORT / { print $2; exit }' "$w/s.out")
			mapfile -t ca < <(args client)
			crc=0 src=0
			# shellcheck disable=SC2046
			env -u LD_PRELOAD $(envs client) timeout 120 "$xfer" "${ca[@]}" --port "${port:-1}" \
				>"$w/c.out" 2>"$w/c.err" || crc=$?
			wait "$spid" || src=$?
			d=$(stat_delta "$before" "$(stat_counters)")
			co=$(grep '^conn=' "$w/c.out" || true) so=$(grep '^conn=' "$w/s.out" || true)
			intact=no
			if [[ -n $co && -n $so && $(field sent_sha256 "$co") == "$(field recv_sha256 "$so")" &&
				$(field sent_sha256 "$so") == "$(field recv_sha256 "$co")" ]]; then intact=yes; fi
			if [[ $side == client ]]; then me=$co err=$w/c.err; else me=$so err=$w/s.err; fi
			sess=$(grep -o 'session fd=.*' "$err" | sed 's/^session fd=[0-9]* //' | paste -sd'|' || true)
			summ=$(grep -o 'summary .*' "$err" | head -n1 || true)
			errs=$(grep -iE 'error|refused' "$err" | grep -v 'summary' | head -n2 | cut -c1-200 | paste -sd'|' || true)
			refused=$(grep -c 'SSL_key_update refused' "$err" || true)
			echo "tls=$tls shimmed=$side keyupdates=$ku rc=c$crc/s$src intact=$intact refused=$refused" \
				"lib_tx=$(field lib_tx "$me") lib_rx=$(field lib_rx "$me")" \
				"kernel_tx=$(field kernel_tx "$me") kernel_rx=$(field kernel_rx "$me")"
			echo "    session: ${sess:-none}"
			echo "    $summ"
			echo "    tls_stat: $d"
			[[ -z $errs ]] || echo "    errors: $errs"
		done
	done
done
