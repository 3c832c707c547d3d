#!/usr/bin/env bash
# Checks, inside the VM, that the kernel does kTLS with Debian's own OpenSSL
# (no ktls-shim involved): tests/vm/ktls-vm -- tests/vm/selftest.sh
# KTLS_SELFTEST_MB (default 16) sizes the timed transfer; 0 skips it.
set -uo pipefail

[[ -r /proc/net/tls_stat ]] || { echo "selftest: not in a kTLS VM" >&2; exit 2; }
mb=${KTLS_SELFTEST_MB:-16}
w=$(mktemp -d)
cd "$w" || exit 2
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
counter() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }
now() { date +%s.%N; }

echo "kernel $(uname -r), $(openssl version)"

# Debian's OpenSSL 3.0 has no -ktls switch; SSL_OP_ENABLE_KTLS comes from
# the configuration instead.
cat >ktls.cnf <<'EOF'
openssl_conf = conf
[conf]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
Options = KTLS
EOF
: >plain.cnf
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout key.pem -out cert.pem -days 2 -subj /CN=localhost 2>/dev/null

port=4430
# xfer CNF FILE TLSVERSION CIPHER: the server sends FILE (s_server -WWW),
# the client stores the reply in got; sets $secs.
xfer() {
	local cnf=$1 file=$2 ver=$3 cipher=$4 spid t0
	port=$((port + 1))
	local copt=(-cipher "$cipher")
	[[ $ver == -tls1_3 ]] && copt=(-ciphersuites "$cipher")
	OPENSSL_CONF=$cnf openssl s_server -accept "127.0.0.1:$port" -cert cert.pem \
		-key key.pem "$ver" "${copt[@]}" -naccept 1 -quiet -WWW \
		</dev/null >srv.out 2>srv.err &
	spid=$!
	for _ in $(seq 50); do
		ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.1
	done
	t0=$(now)
	printf 'GET /%s HTTP/1.0\r\n\r\n' "$file" |
		OPENSSL_CONF=$cnf timeout 600 openssl s_client -connect "127.0.0.1:$port" \
			"$ver" "${copt[@]}" -quiet -ign_eof >got 2>cli.err
	secs=$(echo "$(now) - $t0" | bc)
	wait "$spid"
	# -WWW puts a 3-line HTTP header before the file.
	tail -n +4 got >body
	cmp -s body "$file"
}

head -c 1048576 /dev/urandom >small
# name version cipher expect-rx (OpenSSL 3.0 does TLS 1.3 kTLS for TX only)
while read -r name ver cipher rx; do
	tx0=$(counter TlsTxSw) rx0=$(counter TlsRxSw)
	if ! xfer ktls.cnf small "$ver" "$cipher"; then
		ko "$name: data differs ($(cat srv.err cli.err | tr '\n' ' '))"
		continue
	fi
	dtx=$(($(counter TlsTxSw) - tx0)) drx=$(($(counter TlsRxSw) - rx0))
	if ((dtx >= 1 && drx >= rx)); then
		ok "$name: 1 MiB via kTLS (TlsTxSw +$dtx, TlsRxSw +$drx)"
	else
		ko "$name: TlsTxSw +$dtx TlsRxSw +$drx; $(grep -h Kernel srv.err cli.err | tr '\n' ' ')"
	fi
done <<'EOF'
tls1.2-aes128gcm -tls1_2 ECDHE-ECDSA-AES128-GCM-SHA256 1
tls1.2-aes256gcm -tls1_2 ECDHE-ECDSA-AES256-GCM-SHA384 1
tls1.2-chacha20 -tls1_2 ECDHE-ECDSA-CHACHA20-POLY1305 1
tls1.3-aes128gcm -tls1_3 TLS_AES_128_GCM_SHA256 0
tls1.3-aes256gcm -tls1_3 TLS_AES_256_GCM_SHA384 0
tls1.3-chacha20 -tls1_3 TLS_CHACHA20_POLY1305_SHA256 0
EOF

# CMD runs chrooted, but module autoload must still reach the initramfs'
# modprobe: AF_ALG is not preloaded, so this socket loads af_alg on demand.
if [[ -d /sys/module/af_alg ]]; then
	echo "SKIP: module autoload: af_alg already loaded"
elif /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET)
s.bind(("aead", "gcm(aes)"))' 2>err && [[ -d /sys/module/af_alg ]]; then
	ok "module autoload from the chroot (af_alg, algif_aead)"
else
	ko "module autoload: $(cat err)"
fi

if [[ $(uname -r) == [7-9].* ]] || grep -q TlsTxRekeyOk /proc/net/tls_stat; then
	if grep -q TlsTxRekeyOk /proc/net/tls_stat; then
		ok "TlsTxRekeyOk counter present"
	else
		ko "no TlsTxRekeyOk counter on $(uname -r)"
	fi
fi

if ((mb > 0)); then
	head -c $((mb << 20)) /dev/urandom >big
	for mode in ktls plain; do
		if xfer "$mode.cnf" big -tls1_2 ECDHE-ECDSA-AES128-GCM-SHA256; then
			ok "$mode: $mb MiB TLS 1.2 AES-128-GCM in $secs s" \
				"($(echo "scale=1; $mb / $secs" | bc) MiB/s, emulated CPU)"
		else
			ko "$mode: $mb MiB transfer"
		fi
	done
fi

cat /proc/net/tls_stat
rm -rf "$w"
echo "selftest: $pass passed, $fail failed"
((fail == 0))
