"""Session resumption across connections, for test_programs.py.

  pyssl_resume.py server --cert C --key K --tls 1.2|1.3 --conns N
  pyssl_resume.py client --port P --tls 1.2|1.3 --conns N

The server (run unshimmed) answers each connection: it reads SIZE bytes,
then sends their sha256 in hex and SIZE bytes of its own. The client (run
under the shim) offers the first connection's session on every later one,
and prints per connection: conn=i reused=0|1 ok=0|1. With TLS 1.3 the
session comes from the NewSessionTickets the server sends after the
handshake: under the shim, those arrive on a socket whose receive side may
already be in the kernel."""
import argparse
import hashlib
import socket
import ssl
import sys

SIZE = 1 << 20


def version(ctx, tls):
    v = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = ctx.maximum_version = v


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(65536, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def server(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    version(ctx, a.tls)
    ls = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {ls.getsockname()[1]}", flush=True)
    for i in range(a.conns):
        conn, _ = ls.accept()
        with ctx.wrap_socket(conn, server_side=True) as s:
            got = recv_exact(s, SIZE)
            s.sendall(hashlib.sha256(got).hexdigest().encode() + b"\n")
            s.sendall(hashlib.sha256(b"srv%d" % i).digest() * (SIZE // 32))
            s.unwrap()


def client(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    version(ctx, a.tls)
    session = None
    for i in range(a.conns):
        raw = socket.create_connection(("127.0.0.1", a.port))
        with ctx.wrap_socket(raw, session=session) as s:
            data = hashlib.sha256(b"cli%d" % i).digest() * (SIZE // 32)
            s.sendall(data)
            line = recv_exact(s, 65)
            theirs = recv_exact(s, SIZE)
            ok = (line.decode().strip() == hashlib.sha256(data).hexdigest()
                  and theirs == hashlib.sha256(b"srv%d" % i).digest()
                  * (SIZE // 32))
            print(f"conn={i} reused={int(s.session_reused)} ok={int(ok)}",
                  flush=True)
            if session is None:
                session = s.session
            s.unwrap()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--port", type=int)
    p.add_argument("--tls", default="1.3")
    p.add_argument("--conns", type=int, default=3)
    a = p.parse_args()
    (server if a.role == "server" else client)(a)


if __name__ == "__main__":
    sys.exit(main())
