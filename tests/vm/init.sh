#!/bin/sh
# PID 1 of the ktls-vm guest (busybox sh, runs from the initramfs).
#
# Contract with tests/vm/ktls-vm (the host side), all through the 9p share
# tagged "ktlsctl" (a per-run host directory):
#   in:  cmd.sh   bash script that sets the environment, cds, execs CMD
#        shares   "TAG PATH" lines: read-write 9p shares to mount at PATH
#   out: stdout, stderr   CMD's output (the host follows them with tail -f)
#        rc       CMD's exit status, written only once CMD has finished
#        error    one line, why the VM could not run CMD
# Messages of this script go to the serial console (a log file on the host).
#
# CMD runs in a chroot of the host's / or of a --userland root (read-only 9p;
# tag "hostroot" either way) but this script stays in
# the initramfs root on purpose: the kernel runs /proc/sys/kernel/modprobe
# (usermode helper) relative to PID 1's root, so module autoload keeps using
# the initramfs' busybox modprobe and module tree even while CMD runs.

export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1

ctl=/ctl
new=/newroot

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 60
}

fail() {
	echo "ktls-vm-init: ERROR: $*"
	grep -q " $ctl 9p " /proc/mounts && echo "$*" >"$ctl/error"
	poweroff_now
}

# 9p over virtio first: without it nothing can be reported back but the
# console. Newer kernels build some of these in (and sid ships no
# modules.builtin), so a failed modprobe only matters if the mount fails.
for m in virtio_pci 9pnet_virtio 9p; do
	modprobe "$m" 2>/dev/null || echo "ktls-vm-init: note: modprobe $m failed"
done

# cache=none: every write of CMD's output reaches the host file before write()
# returns, so nothing is lost at power-off.
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 ktlsctl "$ctl" ||
	fail "cannot mount the control share"

modprobe tls || fail "modprobe tls failed: this kernel cannot do kTLS"
[ -e /proc/net/tls_stat ] || fail "no /proc/net/tls_stat after modprobe tls"

# TLS_TX/TLS_RX need these AEADs; loading them now spares depending on
# autoload. Which ones exist differs between kernels, so failures are fine.
for m in gcm ccm aesni_intel ghash_clmulni_intel chacha20poly1305 \
	chacha_x86_64 poly1305_x86_64 chacha20_x86_64 libchacha20poly1305; do
	modprobe -q "$m" 2>/dev/null
done

# sock_diag for TCP (built in on some kernels): what `ss` and the shim's
# per-socket software/device query (INET_DIAG_ULP_INFO) use.
for m in inet_diag tcp_diag; do
	modprobe -q "$m" 2>/dev/null
done

hostname ktls-vm
ip link set lo up || fail "cannot bring up lo"

# The host root, read-only. cache=loose is safe because the host does not
# change it during the run, and it makes exec and library loads fast.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot "$new" ||
	fail "cannot mount the host root"

mount -t proc proc "$new/proc" || fail "mount proc"
mount -t sysfs sysfs "$new/sys" || fail "mount sysfs"
mount -t devtmpfs devtmpfs "$new/dev" || fail "mount devtmpfs"
mkdir -p "$new/dev/pts" "$new/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$new/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$new/dev/shm"
# devtmpfs lacks the /dev/fd family that bash process substitution needs.
ln -sfn /proc/self/fd "$new/dev/fd"
ln -sfn /proc/self/fd/0 "$new/dev/stdin"
ln -sfn /proc/self/fd/1 "$new/dev/stdout"
ln -sfn /proc/self/fd/2 "$new/dev/stderr"
mount -t bpf bpf "$new/sys/fs/bpf" || fail "mount bpffs"
mount -t debugfs debugfs "$new/sys/kernel/debug" 2>/dev/null
mount -t tracefs tracefs "$new/sys/kernel/tracing" 2>/dev/null
for d in tmp run var/tmp; do
	mount -t tmpfs -o mode=1777 tmpfs "$new/$d" || fail "mount tmpfs on /$d"
done
chmod 0755 "$new/run"

# Read-write shares, parents before children (the host sorts them). A share
# under one of the tmpfs needs its mount point created first.
while read -r tag path; do
	[ -n "$tag" ] || continue
	mkdir -p "$new$path" 2>/dev/null
	# cache=mmap: writable shared mmap (some linkers) needs it; otherwise
	# as uncached as cache=none.
	mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=512000 "$tag" "$new$path" ||
		fail "cannot mount share $path"
done <"$ctl/shares"

mkdir -p "$new/run/ktls-vm"
mount --bind "$ctl" "$new/run/ktls-vm" || fail "cannot bind the control share"

# From here on CMD may have side effects: the host must not boot again.
: >"$ctl/started"
# A clean environment; cmd.sh adds the host's whitelisted variables.
chroot "$new" /usr/bin/env -i \
	HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	KTLS_VM_KERNEL="$(uname -r)" \
	/bin/bash /run/ktls-vm/cmd.sh </dev/null >>"$ctl/stdout" 2>>"$ctl/stderr"
rc=$?

# Flush the read-write shares before the host is told that CMD is done.
sync
echo "$rc" >"$ctl/rc.tmp" && mv "$ctl/rc.tmp" "$ctl/rc"
poweroff_now
