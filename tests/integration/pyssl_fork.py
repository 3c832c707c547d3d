"""After the handshake (session moved), fork: the child sends the payload on
the inherited TLS socket and exits; the parent closes its copy and waits.
Then exec a shimmed program from the parent (the shim stays preloaded).
  pyssl_fork.py PORT NBYTES"""
import hashlib
import os
import socket
import ssl
import subprocess
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
data = hashlib.sha256(b"fork").digest() * (n // 32)
pid = os.fork()
if pid == 0:
    s.sendall(data)
    while s.recv(65536):
        pass
    s.unwrap()
    sys.exit(0)  # a normal exit: the child's own summary line
s.detach()  # the parent's copy goes without a close_notify
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), hashlib.sha256(data).hexdigest())
r = subprocess.run(["openssl", "version"], capture_output=True, text=True)
print("exec", r.returncode, r.stdout.strip())
