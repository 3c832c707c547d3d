"""An unshimmed TLS server that sends --send bytes and then resets the
connection (SO_LINGER 0, no close_notify): the abortive close a crashed or
killed peer produces.

  pyssl_abort.py --cert C --key K --send N --tls 1.2|1.3
Prints "PORT n" when listening.
"""
import argparse
import socket
import ssl
import struct
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--send", type=int, required=True)
ap.add_argument("--tls", default="1.3")
a = ap.parse_args()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
v = ssl.TLSVersion.TLSv1_3 if a.tls == "1.3" else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = ctx.maximum_version = v
ctx.load_cert_chain(a.cert, a.key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(f"PORT {srv.getsockname()[1]}", flush=True)
raw, _ = srv.accept()
tls = ctx.wrap_socket(raw, server_side=True)
block = bytes(range(256)) * 64
left = a.send
while left > 0:
    left -= tls.send(block[:min(left, len(block))])
# Wait for the client to have read some of it, then reset.
tls.settimeout(30)
try:
    tls.recv(1)  # the client sends one byte once it has read everything
except OSError:
    pass
# SSLSocket.close() sends no close_notify (only unwrap() does).
tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
tls.close()
print("reset", flush=True)
sys.exit(0)
