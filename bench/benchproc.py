"""What the process-level benches (nginx-bench, nbd-bench, ebpf-cost,
migration-bench, curl-bench, scale-bench) share: whether this kernel has
kTLS, an environment without the shim, a loopback port and waiting for it,
a process's CPU time, a file of known content, a self-signed certificate,
and the shim's summary line."""
import hashlib
import os
import re
import socket
import subprocess
import sys
import time


def has_ktls():
    """Whether this kernel takes the "tls" ULP on a connected socket."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    s, _ = srv.accept()
    try:
        c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
        return True
    except OSError:
        return False
    finally:
        for x in (c, s, srv):
            x.close()


def plain_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("KTLS_SHIM") and k != "LD_PRELOAD"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, who, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{who} never listened on {port}")


def cpu_s(pid):
    """utime + stime of one process (all its threads), seconds."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path, size, seed):
    """size bytes, each 64 KiB block numbered; returns their sha256."""
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(0, size, len(block)):
            b = (i.to_bytes(8, "little") + block[8:])[:size - i]
            f.write(b)
            h.update(b)
    return h.hexdigest()


SUMMARY_RE = re.compile(r"summary \S+ sessions=(\d+) tx_kernel=(\d+) "
                        r"rx_kernel=(\d+) kernel_bytes_tx=(\d+) "
                        r"kernel_bytes_rx=(\d+)")


def shim_summary(path):
    """The shim's exit summary in a log file, as a dict (zeros if none)."""
    text = open(path).read() if os.path.exists(path) else ""
    m = SUMMARY_RE.search(text)
    keys = ("sessions", "tx_kernel", "rx_kernel", "bytes_tx", "bytes_rx")
    return {k: int(m.group(i + 1)) if m else 0 for i, k in enumerate(keys)}


def where():
    return ("emulated (QEMU TCG)" if os.environ.get("KTLS_VM_KERNEL")
            else "native")


def self_signed(d):
    """A P-256 certificate for localhost and its key in d: (cert, key)."""
    cert, key = f"{d}/c.crt", f"{d}/c.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key
