"""HAProxy 2.6 and Apache httpd 2.4 mod_ssl under the shim (issue 17),
Debian 12: both hand OpenSSL their own BIO.

HAProxy's BIO method (ssl_sock.c's ha_ssl_read/ha_ssl_write over its raw
socket layer) reads exactly what OpenSSL asks for and writes each record in
the call, so the shim proves it a pass-through to one TCP socket and moves
the session as curl's (test_own_bio.py): engine=shim,record-layer:shim
transport=own, as a TLS server (frontend `bind ... ssl`, a plain backend)
and as a TLS client (`server ... ssl`) alike, against unshimmed curl and
CPython. HAProxy runs one thread here (nbthread 1) on its own epoll loop:
a read that blocked, or an SSL_ERROR other than WANT_READ for a partial
record, would stall or drop every other connection.

Apache's mod_ssl reads through its input filter chain, whose core filter
reads the socket in 8,000-byte buckets and keeps the rest (APR's
APR_BUCKET_BUFF_SIZE): a pull returns fewer bytes than it read from the
socket, so the proof refuses it (transport-reads-ahead) and the session
stays with OpenSSL, intact.

Every case: sha256 at both ends, the shim's session lines and summary,
/proc/net/tls_stat deltas; HAProxy's own byte counters (its log's %B/%U)
still count every byte after the move."""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import (BIG, FIGURES, HERE, PY, MiB, Proc, delta,
                      free_port, make_file, own_bio_moves, plain_env,
                      sha256_file, shim_env, shim_summary, tls_stat,
                      wait_port)
from test_custom_transport import sessions
from test_own_bio import expected

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
HAPROXY = shutil.which("haproxy", path=SBIN)
APACHE = shutil.which("apache2", path=SBIN)
N = min(BIG // 4, 4 * MiB)
PARALLEL = 200
SMALL = 40 * 1024  # HAProxy serves it from its buffer: 3 records

need_haproxy = pytest.mark.skipif(not HAPROXY, reason="haproxy not installed")
need_apache = pytest.mark.skipif(not APACHE, reason="apache2 not installed")


@pytest.fixture(scope="module")
def site(workdir):
    """A directory readable by anyone (Apache serves it as nobody): the big
    file, the small one, an upload per TLS version (the backend, shared,
    prints each hash it got)."""
    d = tempfile.mkdtemp(prefix="ktls-hpx.")
    os.chmod(d, 0o755)
    files = {}
    for name, size, seed in (("big.bin", N, 31), ("small.bin", SMALL, 32),
                             ("up-1.2.bin", N, 33), ("up-1.3.bin", N, 34)):
        files[name] = make_file(os.path.join(d, name), size, seed)
        os.chmod(os.path.join(d, name), 0o644)
    yield d, files
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_backend(site, certs):
    """An unshimmed CPython HTTPS server (pyssl_httpd.py, a thread per
    connection until killed, TLS 1.2 and 1.3: HAProxy's server line picks)
    for the module: Python starts in 8-10 s in the VM. (Proc, port)."""
    srv = Proc([PY, os.path.join(HERE, "pyssl_httpd.py"), "--dir", site[0],
                "--requests", "0", "--cert", certs["ec"][0], "--key",
                certs["ec"][1]], plain_env(), reap=False)
    try:
        yield srv, srv.read_port()
    finally:
        srv.p.kill()
        srv.wait()


# HAProxy's own per-request counts, and whether its server connection's
# TLS session was resumed.
LOG_FORMAT = ("hplog fe=%f st=%ST bytes_out=%B bytes_in=%U "
              "resumed=%[ssl_bc_is_resumed]")


class HAProxy:
    """HAProxy in the foreground (-db), one thread: a TLS frontend to a
    plain backend and a plain frontend to a TLS backend, each logging one
    line per request with HAProxy's own byte counts. Its stderr (the
    shim's lines too, a few hundred with 200 connections) goes to a file:
    a pipe nobody reads until the end would fill and block it."""

    def __init__(self, workdir, certs, tls, env, site, tls_be=1):
        self.tls_port, self.plain_port = free_port(), free_port()
        pem = workdir / "haproxy.pem"
        pem.write_text(open(certs["ec"][0]).read() +
                       open(certs["ec"][1]).read())
        v = f"ssl-min-ver TLSv{tls} ssl-max-ver TLSv{tls}"
        small = os.path.join(site[0], "small.bin")
        cfg = workdir / f"haproxy-{tls}.cfg"
        # tls_in -> plain_in -> the TLS backend: one request crosses
        # HAProxy as a TLS server and as a TLS client. /small.bin HAProxy
        # answers itself, from memory (no backend to wait for: the 200
        # parallel connections cost HAProxy's and curl's handshakes only).
        cfg.write_text(f"""global
    nbthread 1
    hard-stop-after 60s
    tune.bufsize 65536
    log stderr format raw local0 info
defaults
    mode http
    log global
    log-format "{LOG_FORMAT}"
    timeout connect 10s
    timeout client 600s
    timeout server 600s
frontend tls_in
    bind 127.0.0.1:{self.tls_port} ssl crt {pem} {v}
    acl small path /small.bin
    http-request return status 200 content-type bytes file {small} if small
    default_backend via_plain
frontend plain_in
    bind 127.0.0.1:{self.plain_port}
    default_backend tls_be
backend via_plain
    server s1 127.0.0.1:{self.plain_port}
backend tls_be
    # A connection per request: none left idle to hold the soft stop.
    option http-server-close
    server s1 127.0.0.1:{tls_be} ssl verify none {v}
""")
        self.log = workdir / f"haproxy-{tls}.log"
        self.f = open(self.log, "w")
        self.p = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], env=env,
                                  stdin=subprocess.DEVNULL, stdout=self.f,
                                  stderr=subprocess.STDOUT)
        # Both listeners are bound together: probing the plain one makes
        # no TLS session. A config HAProxy refuses fails here, not later.
        end = time.time() + 60
        while True:
            assert self.p.poll() is None, self.log.read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", self.plain_port),
                                         1).close()
                break
            except OSError:
                assert time.time() < end, "HAProxy never listened"
                time.sleep(0.05)

    def stop(self):
        """Soft stop (SIGUSR1): HAProxy finishes, exits 0, and the shim
        writes its summary. Returns the log."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGUSR1)
        try:
            rc = self.p.wait(120)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.f.close()
        text = self.log.read_text()
        assert rc == 0, text[-3000:]
        return text


@pytest.fixture
def haproxy_procs():
    """Kills whatever HAProxy a failed test left."""
    made = []
    yield made
    for h in made:
        if h.p.poll() is None:
            h.p.kill()
            h.p.wait()
        h.f.close()


def hplog(text):
    """HAProxy's own per-request counters: [(frontend, status, out, in,
    resumed)], less the readiness probe (a connection that sent nothing)."""
    return [(fe, int(st), int(o), int(i), r) for fe, st, o, i, r in
            re.findall(r"hplog fe=(\S+) st=(-?\d+) bytes_out=(\d+) "
                       r"bytes_in=(\d+) resumed=(\d)", text) if int(i)]


def curl_opts(url, tls):
    """Per URL group (curl's --next resets them): the same TLS options
    in every group, or curl will not reuse the connection."""
    v = [f"--tlsv{tls}", "--tls-max", tls] if url.startswith("https") else []
    return ["-sS", "-k", "-H", "Expect:", *v]


def curl(url, tls, args, timeout=900):
    r = subprocess.run(["curl", *curl_opts(url, tls), *args],
                       env=plain_env(), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def get_put(base, tls, site, out):
    """GET big.bin, then PUT up-TLS.bin on the same connection: both
    hashes checked at the receiving end (the backend prints what it got)."""
    d, files = site
    up = f"up-{tls}.bin"
    w = ["-w", "connects=%{num_connects}\\n"]
    r = curl(base, tls, ["-o", str(out), *w, f"{base}/big.bin", "--next",
                         *curl_opts(base, tls), *w, "-T",
                         os.path.join(d, up), f"{base}/up"])
    assert sha256_file(out) == files["big.bin"]
    assert f"{N} {files[up]}" in r.stdout, r.stdout
    assert r.stdout.count("connects=1") == 1, r.stdout
    assert r.stdout.count("connects=0") == 1, r.stdout


def check_moved(sess, tls, d, count=1):
    """Each of the shimmed end's sessions: over its own BIO, with the
    outcome of this version on this kernel; tls_stat agrees."""
    assert len(sess) == count, sess
    want = expected(tls)
    for s in sess:
        assert "transport=own" in s["rest"].split(), s
        assert s["version"] == f"TLSv{tls}", s
        assert (s["tx"], s["rx"]) == want, s
    if own_bio_moves(tls):
        assert {s["engine"] for s in sess} == {"shim,record-layer:shim"}
        assert d["TlsTxSw"] == count and d["TlsRxSw"] == count, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


@need_haproxy
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_haproxy_server_and_client(tls, certs, shim_config, workdir, site,
                                   tls_backend, haproxy_procs):
    """HAProxy (shimmed) terminating TLS for unshimmed curl and passing the
    request on, as a TLS client (`server ... ssl verify none`), to an
    unshimmed CPython HTTPS server: one kept-alive connection from curl,
    GET then PUT of N bytes, a server connection for each (the second
    resumes the first's TLS session). HAProxy's three sessions move; curl
    hashes what it got, the server what it got."""
    srv, bport = tls_backend
    before = tls_stat()
    h = HAProxy(workdir, certs, tls, shim_env(shim_config), site,
                tls_be=bport)
    haproxy_procs.append(h)
    get_put(f"https://127.0.0.1:{h.tls_port}", tls, site,
            workdir / f"hpx-{tls}.out")
    srv.wait_line(f"put len={N} sha256={site[1][f'up-{tls}.bin']}")
    log = h.stop()
    d = delta(before, tls_stat())
    sess = sessions(log)
    check_moved(sess, tls, d, 3)
    summ = shim_summary(log)
    if own_bio_moves(tls):
        # Each way the file crossed both sessions, once each.
        assert 2 * N <= summ["bytes_tx"] < 2 * N + 8192, summ
        assert 2 * N <= summ["bytes_rx"] < 2 * N + 8192, summ
    # What HAProxy counts is above its BIO: it still sees every byte.
    reqs = hplog(log)
    assert sorted((fe, st) for fe, st, *_ in reqs) == \
        [("plain_in", 200)] * 2 + [("tls_in", 200)] * 2, log
    for fe in ("plain_in", "tls_in"):
        (o1, i1), (o2, i2) = [(o, i) for f, _, o, i, _ in reqs if f == fe]
        assert o1 > N and i2 > N, reqs
    # The PUT's server connection resumed the GET's TLS session (a
    # ticket from the TLS 1.2 handshake; TLS 1.3's come after it, read by
    # the kernel once moved, and dropped, as without kTLS in libssl).
    resumed = [r for f, *_, r in reqs if f == "plain_in"]
    assert resumed == ["0", "0" if tls == "1.3" and own_bio_moves(tls)
                       else "1"], reqs
    FIGURES.append(
        f"haproxy TLS {tls} server+client: " + ", ".join(
            f"{s['tx']}/{s['rx']} {s['engine']}" for s in sess) +
        f"; through the kernel {summ['bytes_tx']} B out, {summ['bytes_rx']}"
        f" B in; tls_stat TlsTxSw +{d.get('TlsTxSw', 0)} TlsRxSw "
        f"+{d.get('TlsRxSw', 0)}; HAProxy's own counts (out, in): {reqs}")


@need_haproxy
def test_haproxy_parallel(certs, shim_config, workdir, site, haproxy_procs):
    """200 connections at once (curl --parallel, unshimmed) to HAProxy's
    TLS frontend, TLS 1.2: every session moves, every file arrives whole,
    on HAProxy's one thread and epoll loop."""
    out = workdir / "hpx-par"
    out.mkdir(exist_ok=True)
    before = tls_stat()
    h = HAProxy(workdir, certs, "1.2", shim_env(shim_config), site)
    haproxy_procs.append(h)
    url = f"https://127.0.0.1:{h.tls_port}/small.bin"
    args = ["--parallel", "--parallel-immediate", "--parallel-max",
            str(PARALLEL), "-w", "%{http_code} %{num_connects}\\n"]
    for i in range(PARALLEL):
        args += ["-o", str(out / f"{i}.bin"), f"{url}?{i}"]
    r = curl(url, "1.2", args)
    # Each transfer its own connection, each answered.
    assert r.stdout.split("\n").count("200 1") == PARALLEL, r.stdout
    log = h.stop()
    d = delta(before, tls_stat())
    for i in range(PARALLEL):
        assert sha256_file(out / f"{i}.bin") == site[1]["small.bin"], i
    check_moved(sessions(log), "1.2", d, PARALLEL)
    summ = shim_summary(log)
    assert summ["sessions"] == PARALLEL, summ
    if own_bio_moves("1.2"):
        assert summ["tx_kernel"] == summ["rx_kernel"] == PARALLEL, summ
        assert summ["bytes_tx"] >= PARALLEL * SMALL, summ
    assert len(hplog(log)) == PARALLEL, log[-3000:]
    FIGURES.append(
        f"haproxy {PARALLEL} parallel TLS 1.2: tx_kernel "
        f"{summ['tx_kernel']} rx_kernel {summ['rx_kernel']}, "
        f"{summ['bytes_tx']} B out through the kernel; tls_stat TlsTxSw "
        f"+{d.get('TlsTxSw', 0)} TlsRxSw +{d.get('TlsRxSw', 0)}")


def tls_over(sock, ctx):
    """A CPython TLS client over memory BIOs on a raw socket: the test
    decides when each byte of a record goes out."""
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outg.read())
            data = sock.recv(65536)
            assert data, "EOF during the handshake"
            inc.write(data)
    sock.sendall(outg.read())
    return obj, inc, outg


def read_to_end(sock, obj, inc):
    """The plaintext until the server closes (close_notify or EOF)."""
    got = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return got
        inc.write(data)
        try:
            while chunk := obj.read(65536):
                got += chunk
            return got  # b"": close_notify
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return got


@need_haproxy
def test_haproxy_partial_record_nonblocking(certs, shim_config, workdir,
                                            site, haproxy_procs):
    """After the move, half of a request's record reaches HAProxy's
    socket: its SSL_read must say WANT_READ (the kernel holds a partial
    record; 6.1 even polls it readable) and go back to epoll, not block
    or fail. Meanwhile a whole other connection is served on the same one
    thread; then the rest of the record arrives and the request is
    answered, intact."""
    before = tls_stat()
    h = HAProxy(workdir, certs, "1.2", shim_env(shim_config), site)
    haproxy_procs.append(h)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", h.tls_port), 30) as sock:
        obj, inc, outg = tls_over(sock, ctx)
        obj.write(b"GET /small.bin HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        rec = outg.read()
        sock.sendall(rec[:len(rec) // 2])
        time.sleep(1)  # HAProxy has seen the half record by now
        other = workdir / "hpx-other.out"
        curl(f"https://127.0.0.1:{h.tls_port}", "1.2",
             ["-o", str(other), f"https://127.0.0.1:{h.tls_port}/small.bin"],
             timeout=120)
        assert sha256_file(other) == site[1]["small.bin"]
        sock.sendall(rec[len(rec) // 2:])
        got = read_to_end(sock, obj, inc)
    log = h.stop()
    d = delta(before, tls_stat())
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), got[:500]
    assert hashlib.sha256(body).hexdigest() == site[1]["small.bin"]
    check_moved(sessions(log), "1.2", d, 2)


# ---- Apache httpd mod_ssl ---------------------------------------------------
APACHE_CONF = """ServerRoot {d}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule socache_shmcb_module {mods}/mod_socache_shmcb.so
LoadModule ssl_module {mods}/mod_ssl.so
ServerName localhost
Listen 127.0.0.1:{port} https
DefaultRuntimeDir {d}
PidFile {d}/httpd.pid
ErrorLog {d}/error.log
LogLevel warn
User nobody
Group nogroup
DocumentRoot {www}
<Directory {www}>
  Require all granted
</Directory>
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
SSLProtocol -all +TLSv{tls}
SSLSessionCache none
"""


@need_apache
@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs root (Apache serves as nobody)")
def test_apache_stays_intact(certs, shim_config, site):
    """Apache httpd 2.4 mod_ssl (shimmed, one process: -X) serving N bytes
    to unshimmed curl twice over one connection, TLS 1.2: its input
    filters read ahead of OpenSSL, so the proof refuses the session
    (transport-reads-ahead): it stays with OpenSSL, intact, and nothing
    reaches the kernel."""
    d = tempfile.mkdtemp(prefix="ktls-apache.")
    os.chmod(d, 0o755)
    for kind, src in zip(("cert", "key"), certs["ec"]):
        shutil.copyfile(src, os.path.join(d, kind + ".pem"))
    conf = os.path.join(d, "shim.conf")
    shutil.copyfile(shim_config, conf)
    os.chmod(conf, 0o644)
    port = free_port()
    with open(os.path.join(d, "httpd.conf"), "w") as f:
        f.write(APACHE_CONF.format(
            d=d, mods="/usr/lib/apache2/modules", port=port, www=site[0],
            cert=os.path.join(d, "cert.pem"), key=os.path.join(d, "key.pem"),
            tls="1.2"))
    before = tls_stat()
    p = Proc([APACHE, "-X", "-DFOREGROUND", "-f",
              os.path.join(d, "httpd.conf")], shim_env(conf))
    try:
        wait_port(port, 60)  # a probe without TLS: no session
        outs = [os.path.join(d, f"{i}.out") for i in range(2)]
        base = f"https://127.0.0.1:{port}/big.bin"
        w = ["-w", "connects=%{num_connects}\\n"]
        r = curl(base, "1.2", [*w, "-o", outs[0], base, "--next",
                               *curl_opts(base, "1.2"), *w, "-o", outs[1],
                               base])
        assert r.stdout.split() == ["connects=1", "connects=0"], r.stdout
        for o in outs:
            assert sha256_file(o) == site[1]["big.bin"]
    finally:
        p.p.terminate()
        p.wait()
        # The shim writes where Apache's stderr goes once it runs: its log.
        err = open(os.path.join(d, "error.log")).read()
        shutil.rmtree(d, ignore_errors=True)
    d_ = delta(before, tls_stat())
    sess = sessions(err)
    assert len(sess) == 1, err[-3000:]
    s = sess[0]
    assert "transport=own" in s["rest"].split(), s
    assert (s["tx"], s["rx"]) == ("transport-reads-ahead",) * 2, s
    summ = shim_summary(err)
    assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
    assert "tx:transport-reads-ahead=1" in summ["rest"], summ
    assert not d_.get("TlsTxSw") and not d_.get("TlsRxSw"), d_
