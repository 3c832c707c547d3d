"""Sessions the shim cannot move, in one CPython process under the shim:
TLS over an AF_UNIX socketpair (not TCP) and over memory BIOs (SSLObject).
Both ends live here; prints the sha256 of what each side received."""
import hashlib
import socket
import ssl
import sys
import threading

cert, key = sys.argv[1], sys.argv[2]
N = 1 << 20
data = hashlib.sha256(b"edge").digest() * (N // 32)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False
cctx.verify_mode = ssl.CERT_NONE

# AF_UNIX stream pair: OpenSSL tries the TLS ULP, the kernel says no.
a, b = socket.socketpair()
got = {}


def serve():
    s = sctx.wrap_socket(a, server_side=True)
    buf = b""
    while len(buf) < N:
        buf += s.recv(65536)
    s.sendall(buf)
    got["server"] = hashlib.sha256(buf).hexdigest()


t = threading.Thread(target=serve)
t.start()
c = cctx.wrap_socket(b)
c.sendall(data)
back = b""
while len(back) < N:
    back += c.recv(65536)
t.join()
print("unix", got["server"], hashlib.sha256(back).hexdigest(),
      hashlib.sha256(data).hexdigest())

# Memory BIOs: no fd at all.
ci, co, si, so = (ssl.MemoryBIO() for _ in range(4))
cobj = cctx.wrap_bio(ci, co)
sobj = sctx.wrap_bio(si, so, server_side=True)
for _ in range(20):
    for obj in (cobj, sobj):
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
    si.write(co.read())
    ci.write(so.read())
cobj.write(data[:65536])
si.write(co.read())
rx = b""
while len(rx) < 65536:
    rx += sobj.read(65536 - len(rx))
print("membio", hashlib.sha256(rx).hexdigest(),
      hashlib.sha256(data[:65536]).hexdigest())
