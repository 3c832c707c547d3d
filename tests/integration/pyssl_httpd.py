"""CPython's http.server behind its ssl module, unmodified library code: it
copies files through SSLSocket writes (CPython never calls sendfile() on an
SSL socket). HTTP/1.1 keep-alive; GET serves files from --dir, PUT/POST
bodies are hashed and answered with "LEN SHA256HEX" (also printed as
"put len=N sha256=HEX"). Serves --requests connections (each with every
request the client makes on it) from --dir, then exits (so the shim's exit
summary is written), printing PORT n first. --tls 1.2|1.3: only that
version. --requests 0: a thread per connection until killed (HAProxy's
backend, whose connection count is HAProxy's to choose).

  pyssl_httpd.py --dir D --cert C --key K --requests N [--tls V]
"""
import argparse
import functools
import hashlib
import http.server
import ssl
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _take_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        h, left = hashlib.sha256(), n
        while left:
            b = self.rfile.read(min(left, 1 << 16))
            if not b:
                break
            h.update(b)
            left -= len(b)
        body = f"{n - left} {h.hexdigest()}\n".encode()
        print(f"put len={n - left} sha256={h.hexdigest()}", flush=True)
        self.send_response(200 if not left else 400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = _take_body
    do_POST = _take_body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--tls", choices=["1.2", "1.3"])
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls:
        ctx.minimum_version = ctx.maximum_version = (
            ssl.TLSVersion.TLSv1_2 if args.tls == "1.2"
            else ssl.TLSVersion.TLSv1_3)
    handler = functools.partial(Handler, directory=args.dir)
    cls = (http.server.ThreadingHTTPServer if not args.requests
           else http.server.HTTPServer)
    srv = cls(("127.0.0.1", 0), handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"PORT {srv.server_address[1]}", flush=True)
    if not args.requests:
        srv.serve_forever()
    for _ in range(args.requests):
        srv.handle_request()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
