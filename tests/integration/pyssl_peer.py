"""A Python ssl peer: unmodified CPython ssl module code, run with or
without the shim. Sends --send bytes, reads until the peer's close_notify,
then closes with close_notify; prints the same conn= line as tls_xfer.

  pyssl_peer.py server --cert C --key K --send N [--tls 1.2|1.3]
  pyssl_peer.py client --port P --send N [--tls 1.2|1.3]
"""
import argparse
import hashlib
import socket
import ssl
import sys


def payload(n, seed):
    block = hashlib.sha256(f"py{seed}".encode()).digest() * 512  # 16 KiB
    while n > 0:
        yield block[:min(n, len(block))]
        n -= len(block)


def run(sock, args):
    sock.settimeout(120)  # CPython then drives the socket non-blocking
    sent = hashlib.sha256()
    nsent = 0
    for chunk in payload(args.send, args.seed):
        sock.sendall(chunk)
        sent.update(chunk)
        nsent += len(chunk)
    recv = hashlib.sha256()
    nrecv = 0
    while True:
        b = sock.recv(1 << 16)
        if not b:
            break
        recv.update(b)
        nrecv += len(b)
    version, cipher = sock.version(), sock.cipher()[0]
    sock.unwrap().close()
    print(f"conn=0 version={version} cipher={cipher} sent={nsent} "
          f"sent_sha256={sent.hexdigest()} recv={nrecv} "
          f"recv_sha256={recv.hexdigest()}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tls", default="1.3")
    args = ap.parse_args()
    ver = ssl.TLSVersion.TLSv1_2 if args.tls == "1.2" else ssl.TLSVersion.TLSv1_3
    if args.role == "server":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ver
    if args.role == "server":
        ls = socket.create_server(("127.0.0.1", args.port))
        print(f"PORT {ls.getsockname()[1]}", flush=True)
        conn, _ = ls.accept()
        run(ctx.wrap_socket(conn, server_side=True), args)
    else:
        s = socket.create_connection(("127.0.0.1", args.port))
        run(ctx.wrap_socket(s), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
