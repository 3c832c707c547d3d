"""A plain TCP peer for TLS proxies (stunnel): sends --send bytes while it
reads --expect bytes, then closes (no half-close: a TLS 1.2 proxy may end
both directions on the first close_notify), and prints the same conn= line
as tls_xfer.

  plain_peer.py server --send N --expect M   (prints PORT n; one connection)
  plain_peer.py client --port P --send N --expect M
"""
import argparse
import hashlib
import socket
import sys
import threading

from pyssl_peer import payload  # the same bytes generator


def run(sock, args):
    sent = hashlib.sha256()

    def send():
        for chunk in payload(args.send, args.seed):
            sock.sendall(chunk)
            sent.update(chunk)

    t = threading.Thread(target=send)
    t.start()
    recv, nrecv = hashlib.sha256(), 0
    while nrecv < args.expect:
        b = sock.recv(min(1 << 16, args.expect - nrecv))
        if not b:
            break
        recv.update(b)
        nrecv += len(b)
    t.join()
    sock.close()
    print(f"conn=0 sent={args.send} sent_sha256={sent.hexdigest()} "
          f"recv={nrecv} recv_sha256={recv.hexdigest()}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    if args.role == "server":
        ls = socket.create_server(("127.0.0.1", args.port))
        print(f"PORT {ls.getsockname()[1]}", flush=True)
        conn, _ = ls.accept()
        ls.close()
        run(conn, args)
    else:
        run(socket.create_connection(("127.0.0.1", args.port)), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
