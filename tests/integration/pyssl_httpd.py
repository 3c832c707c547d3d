"""CPython's http.server behind its ssl module, unmodified library code: it
copies files through SSLSocket writes (CPython never calls sendfile() on an
SSL socket). Serves --requests requests from --dir, then exits (so the
shim's exit summary is written), printing PORT n first.

  pyssl_httpd.py --dir D --cert C --key K --requests N
"""
import argparse
import functools
import http.server
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--requests", type=int, default=1)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=args.dir)
    handler.func.log_message = lambda *a: None
    srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"PORT {srv.server_address[1]}", flush=True)
    for _ in range(args.requests):
        srv.handle_request()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
