"""fork() after sessions moved, then exec with the shim still preloaded.
Opens two TLS sessions to a tls_load server (A: TLS 1.2, B: TLS 1.3), both
moved by the shim, then forks: the child carries on with A and the parent
with B at the same time, each sending NBYTES and reading to the peer's
close_notify, each dropping its copy of the other's socket without a
close_notify. Then the parent runs XFER (a fork and exec: the shim comes
along in LD_PRELOAD) as a client on a third connection.
  pyssl_fork.py PORT NBYTES XFER
Prints one line per connection, like tls_xfer's:
  conn=child|parent port=P sent=N sent_sha256=H recv=M recv_sha256=H
  kernel_tx=0|1 kernel_rx=0|1
then XFER's own line."""
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys

SOL_TLS, TLS_TX, TLS_RX = 282, 1, 2
port, n, xfer = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def connect(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))


def in_kernel(s, direction):
    """getsockopt(SOL_TLS): the header only, no key comes back."""
    try:
        _, cipher = struct.unpack("HH", s.getsockopt(SOL_TLS, direction, 4))
        return int(cipher != 0)
    except OSError:
        return 0


def work(name, s):
    data = hashlib.sha256(name.encode()).digest() * (n // 32)
    s.sendall(data)
    h, got = hashlib.sha256(), 0
    while chunk := s.recv(65536):
        h.update(chunk)
        got += len(chunk)
    tx, rx = in_kernel(s, TLS_TX), in_kernel(s, TLS_RX)
    p = s.getsockname()[1]
    s.unwrap()
    # One write(2) per line: child and parent share the pipe, and print()
    # may write the text and its newline apart (unbuffered stdout), so
    # the other's line could land in between and be lost to the parser.
    line = (f"conn={name} port={p} sent={len(data)} "
            f"sent_sha256={hashlib.sha256(data).hexdigest()} recv={got} "
            f"recv_sha256={h.hexdigest()} kernel_tx={tx} kernel_rx={rx}\n")
    os.write(1, line.encode())


a = connect(ssl.TLSVersion.TLSv1_2)
b = connect(ssl.TLSVersion.TLSv1_3)
pid = os.fork()
if pid == 0:
    b.detach()
    work("child", a)
    sys.exit(0)  # a normal exit: the child's own summary line
a.detach()
work("parent", b)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
r = subprocess.run([xfer, "--role", "client", "--port", str(port), "--tls",
                    "1.2", "--send", str(n)], stdout=subprocess.PIPE,
                   text=True)
print(r.stdout, end="", flush=True)
sys.exit(r.returncode)
