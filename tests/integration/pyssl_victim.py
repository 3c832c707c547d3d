"""CPython's ssl module as the victim of hostile_peer.py: --conns
connections one after another, each sending "!" and then reading until the
end; what each delivered goes to PREFIX.I.

  pyssl_victim.py server|client [--port P] [--cert C --key K]
                  --tls 1.2|1.3 --conns N --recv-prefix PREFIX
One line per connection: conn=I outcome=ok|<exception class> recv=N
reason=<SSLError reason or errno>.
"""
import argparse
import socket
import ssl
import sys


def read_all(tls, path):
    n = 0
    with open(path, "wb", buffering=0) as f:
        while True:
            b = tls.recv(1 << 16)
            if not b:
                return n
            f.write(b)
            n += len(b)


def one(ctx, sock, server, path):
    sock.settimeout(60)  # a hang fails the test instead of the suite
    recv, outcome, reason = 0, "ok", "-"
    tls = None
    try:
        tls = ctx.wrap_socket(sock, server_side=server)
        tls.sendall(b"!")  # the peer faults only once it has this
        recv = read_all(tls, path)
    except Exception as e:  # the class is what the test compares
        outcome = type(e).__name__
        reason = getattr(e, "reason", None) or getattr(e, "errno", None)
        try:
            with open(path, "rb") as f:
                recv = len(f.read())
        except FileNotFoundError:
            pass
    finally:
        (tls or sock).close()
    return f"outcome={outcome} recv={recv} reason={reason}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", default="1.3")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--recv-prefix", required=True)
    a = ap.parse_args()
    server = a.role == "server"
    if server:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_3 if a.tls == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    ls = None
    if server:
        ls = socket.create_server(("127.0.0.1", a.port))
        print(f"PORT {ls.getsockname()[1]}", flush=True)
    for i in range(a.conns):
        sock = (ls.accept()[0] if server
                else socket.create_connection(("127.0.0.1", a.port)))
        print(f"conn={i} " + one(ctx, sock, server, f"{a.recv_prefix}.{i}"),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
