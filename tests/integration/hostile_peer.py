"""A hostile TLS peer: a real handshake (CPython ssl over memory BIOs, so
it holds the keys and every record passes through here), then a few intact
application data records and one fault written straight to the socket.

  hostile_peer.py --role server|client [--ports P[,P...]] --cert C --key K
                  --tls 1.2|1.3 --faults F[@GOOD],...

One connection per fault, in order (a server accepts them one after
another; a client connects to each port in turn, or to the one port again).
Faults, after GOOD bytes (default 3 records and a bit) of intact records:
  badmac      one record with a byte of its tag flipped
  truncate    half a record, then FIN
  oversize    a record of 2^14+256+1 bytes, one more than any TLS version
              allows (all of it sent: OpenSSL's TLS 1.2 reader checks the
              length only once the record is complete)
  alert       a fatal alert (bad_record_mac), encrypted by OpenSSL itself,
              then FIN
  plainalert  an unencrypted fatal alert record where records are encrypted
  closenotify close_notify, then FIN: the one clean end
  reset       half a record, then RST (SO_LINGER 0)
  hsalert     a plaintext handshake_failure alert in place of our next
              handshake flight
Then it reads until the victim closes, 30 s at most, and prints
"conn=I fault=F good=N drained|victim-hung|reset": a victim that would
wait forever is seen.
"""
import argparse
import hashlib
import socket
import ssl
import struct
import sys
import time

GOOD_DEFAULT = 3 * 16384 + 1000
TLS_MAX_CIPHERTEXT = (1 << 14) + 256  # RFC 8446 5.2, RFC 5246 6.2.3


def payload(n, seed=7):
    """The intact bytes: 16 KiB chunks, each one different."""
    i = 0
    while n > 0:
        block = hashlib.sha256(f"hostile{seed}.{i}".encode()).digest() * 512
        yield block[:min(n, len(block))]
        n -= len(block)
        i += 1


def split_records(buf):
    recs, i = [], 0
    while i + 5 <= len(buf):
        n = struct.unpack(">H", buf[i + 3:i + 5])[0]
        recs.append(buf[i:i + 5 + n])
        i += 5 + n
    assert i == len(buf), "partial record from our own SSLObject"
    return recs


class Peer:
    def __init__(self, sock, ctx, server):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=server)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("victim closed during the handshake")
        self.inc.write(data)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()

    def seal(self, data):
        self.obj.write(data)
        return split_records(self.out.read())

    def own_fatal_alert(self):
        """OpenSSL's own bad_record_mac alert, under the current key and
        sequence number: fed a forged record, it answers with one.
        Whatever the victim sent behind its handshake (a close_notify,
        tickets) is dropped unread first, or OpenSSL would stop there."""
        self.inc.read()
        self.inc.write(b"\x17\x03\x03\x00\x20" + bytes(32))
        try:
            self.obj.read(1)
        except ssl.SSLError:
            pass
        alert = self.out.read()
        assert alert, "OpenSSL sent no alert"
        return alert


def hs_alert(peer, server):
    """Plaintext handshake_failure where our next flight would be."""
    if not server:
        try:
            peer.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        peer.flush()  # ClientHello
    peer.sock.recv(65536)  # ClientHello, or the server's first flight
    peer.sock.sendall(b"\x15\x03\x03\x00\x02\x02\x28")


def fault(peer, kind, good):
    sock = peer.sock
    recs = [r for c in payload(good) for r in peer.seal(c)]
    extra = peer.seal(b"x" * 1000)[0] if kind in (
        "badmac", "truncate", "reset") else b""
    tail = b""
    if kind == "badmac":
        tail = extra[:-1] + bytes([extra[-1] ^ 0x01])
    elif kind in ("truncate", "reset"):
        tail = extra[:len(extra) // 2]
    elif kind == "oversize":
        tail = (b"\x17\x03\x03" + struct.pack(">H", TLS_MAX_CIPHERTEXT + 1)
                + bytes(TLS_MAX_CIPHERTEXT + 1))
    elif kind == "alert":
        tail = peer.own_fatal_alert()
    elif kind == "plainalert":
        tail = b"\x15\x03\x03\x00\x02\x02\x28"
    elif kind == "closenotify":
        try:
            peer.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        tail = peer.out.read()
        assert tail, "no close_notify"
    else:
        raise SystemExit(f"unknown fault {kind}")
    try:
        sock.sendall(b"".join(recs) + tail)
    except ConnectionError:
        return  # the victim gave up early; what it saw is what counts
    if kind == "reset":
        time.sleep(0.2)  # the records before it are in the victim's queue
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        sock.close()
        return
    if kind in ("truncate", "alert", "closenotify", "plainalert"):
        shut_wr(sock)


def shut_wr(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the victim gave up first and reset the connection


def drain(sock):
    sock.settimeout(30)
    try:
        while sock.recv(65536):
            pass
    except socket.timeout:
        return "victim-hung"
    except OSError:
        pass  # a reset from a victim that closed with bytes unread
    return "drained"


# A TLS 1.3 NewSessionTicket record from OpenSSL is 250+ bytes; the
# victim's first record after its move is tls_xfer's close_notify (24 bytes
# in TLS 1.3, 31 in TLS 1.2 AES-GCM) or pyssl_victim's "!" (23 or 30).
SHORT_RECORD = 64


def await_victim_record(sock):
    """Read (and drop) the victim's records up to its first short one.
    A TLS 1.3 server victim sends its tickets before SSL_accept()
    returns, i.e. before the shim's record layer (libssl without kTLS)
    moves the session: taking a ticket for the sign would send the fault
    and a FIN into that race, and the kernel takes no ULP once the peer
    has closed its side."""
    sock.settimeout(30)
    while True:
        hdr = recv_exact(sock, 5)
        n = struct.unpack(">H", hdr[3:5])[0]
        recv_exact(sock, n)
        if 5 + n < SHORT_RECORD:
            return


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("victim closed before its first record")
        buf += chunk
    return buf


def one(sock, ctx, server, spec):
    """One connection: SPEC is FAULT or FAULT@GOOD."""
    kind, _, good = spec.partition("@")
    good = int(good) if good else GOOD_DEFAULT
    peer = Peer(sock, ctx, server)
    if kind == "hsalert":
        hs_alert(peer, server)
        shut_wr(sock)
        good = 0
    else:
        peer.handshake()
        # The victim's first record after its handshake (tls_xfer's
        # close_notify, pyssl_victim's "!") follows the shim's move: a
        # FIN before it would leave the session in userspace (the kernel
        # takes no TLS ULP once the peer has closed its side).
        # Already here if it came with the end of the handshake.
        if not peer.inc.pending:
            await_victim_record(sock)
        elif kind == "closenotify":
            # Read it here: unwrap() would read it after our close_notify,
            # which OpenSSL calls an error.
            try:
                while peer.obj.read(65536):
                    pass
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        fault(peer, kind, good)
    state = "reset" if kind == "reset" else drain(sock)
    sock.close()
    return f"fault={spec} good={good} {state}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=("server", "client"), required=True)
    ap.add_argument("--ports", default="0",
                    help="client: the victims' ports, one per fault")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", default="1.3")
    ap.add_argument("--faults", required=True,
                    help="FAULT[@GOOD],...: one connection each, in order")
    a = ap.parse_args()
    server = a.role == "server"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server
                         else ssl.PROTOCOL_TLS_CLIENT)
    if server:
        ctx.load_cert_chain(a.cert, a.key)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_3 if a.tls == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    faults = a.faults.split(",")
    ports = [int(p) for p in a.ports.split(",")]
    ls = None
    if server:
        ls = socket.create_server(("127.0.0.1", ports[0]))
        print(f"PORT {ls.getsockname()[1]}", flush=True)
    for i, spec in enumerate(faults):
        if server:
            sock, _ = ls.accept()
        else:
            sock = socket.create_connection(
                ("127.0.0.1", ports[i if len(ports) > 1 else 0]))
        print(f"conn={i} " + one(sock, ctx, server, spec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
