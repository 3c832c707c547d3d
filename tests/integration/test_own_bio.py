"""OpenSSL sessions over the program's own BIO (issue 17): unmodified curl
(7.88 on Debian 12, 8.14 on 13), shimmed, downloading a file and then
uploading one (PUT) over the same kept-alive connection, against an
unshimmed CPython HTTPS peer (pyssl_httpd.py) that hashes what it gets.

curl hands OpenSSL its own BIO (connection filters). The shim proves it
during the handshake (every record went, within the call and unchanged,
to and from one TCP socket, nothing read ahead, TCP's count agreeing) and
then, with any libssl 3 (3.0 on Debian 12, 3.5 on 13), installs both
directions with its own engine on that socket and serves the session with its own record layer (the one for
a libssl without kTLS), bypassing curl's BIO from then on: session line
engine=shim,record-layer:shim transport=own. TLS 1.3 only where the kernel
can follow a KeyUpdate (both directions or neither: on 6.1 it stays,
kernel-cannot-rekey-tls13); custom_transports = no turns it all off. Every case: sha256 at both ends both ways, the shim's session
line and summary, /proc/net/tls_stat deltas where the kernel has kTLS."""
import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import (ASAN_RT, BIG, HERE, KERNEL, PG_BIN, PY, REKEY,
                      XFER, MiB, Proc, delta, free_port, make_file,
                      one_conn_intact,
                      own_bio_moves, plain_env, sha256_file, shim_env,
                      shim_summary, tls_stat)
from test_custom_transport import sessions

# Each way: the VM's CPU is emulated, and curl runs twice per TLS version.
N = min(BIG // 4, 4 * MiB)

no_asan = pytest.mark.skipif(
    bool(ASAN_RT), reason="curl 7.88 with the ASan runtime preloaded hangs in "
    "setlocale() at start-up, shim or not; covered by the non-sanitizer run")


@pytest.fixture(scope="module")
def files(workdir):
    d = workdir / "own-bio"
    d.mkdir(exist_ok=True)
    down, up = d / "down.bin", workdir / "own-bio-up.bin"
    return d, down, make_file(down, N, seed=21), up, make_file(up, N, seed=22)


def peer(certs, d, tls, conns=1):
    srv = Proc([PY, os.path.join(HERE, "pyssl_httpd.py"), "--dir", str(d),
                "--cert", certs["ec"][0], "--key", certs["ec"][1], "--tls",
                tls, "--requests", str(conns)], plain_env())
    return srv, srv.read_port()


def curl_down_up(port, tls, files, out, env):
    """One curl process: GET the file, then PUT one over the same
    connection (--next; curl reuses it: num_connects 1 then 0)."""
    d, down, _, up, _ = files
    v = [f"--tlsv{tls}", "--tls-max", tls]
    base = f"https://127.0.0.1:{port}"
    w = ["-w", "connects=%{num_connects}\\n"]
    r = subprocess.run(
        ["curl", "-sS", "-k", *v, *w, "-o", str(out),
         f"{base}/{down.name}", "--next", "-sS", "-k", *v, *w,
         "-H", "Expect:", "-T", str(up), f"{base}/up"],
        env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def run(certs, files, workdir, tls, env):
    """curl_down_up against an unshimmed peer: curl's output and stderr
    and the tls_stat delta, once both ends agree on every byte."""
    d, down, down_sha, up, up_sha = files
    srv, port = peer(certs, d, tls)
    before = tls_stat()
    out = workdir / f"own-bio-{tls}.out"
    r = curl_down_up(port, tls, files, out, env)
    assert srv.wait() == 0, srv.err[-3000:]
    after = tls_stat()
    assert sha256_file(out) == down_sha
    # The peer's own hash of what it received, and curl's copy of it.
    assert f"put len={N} sha256={up_sha}" in srv.out, srv.out
    assert f"{N} {up_sha}" in r.stdout, r.stdout
    # One connection carried both: a second session would be two moves.
    assert r.stdout.count("connects=1") == 1, r.stdout
    assert r.stdout.count("connects=0") == 1, r.stdout
    return r, delta(before, after)


def one_session(stderr):
    sess = sessions(stderr)
    assert len(sess) == 1, stderr[-3000:]
    s = sess[0]
    assert "transport=own" in s["rest"].split(), s
    return s


def expected(tls):
    """(tx, rx) of an own-BIO session of this version here."""
    if own_bio_moves(tls):
        return ("kernel", "kernel")
    if not KERNEL:
        return ("kernel-has-no-tls",) * 2
    # TLS 1.3 on a kernel that cannot rekey: both directions or neither.
    assert tls == "1.3" and not REKEY
    return ("other-direction-stays", "kernel-cannot-rekey-tls13")


def check_curl_session(stderr, d, tls, n, slack):
    """curl's one session, moved (n bytes each way and up to slack of
    protocol around them through the kernel, tls_stat delta d) or not,
    as this libssl and kernel should."""
    s = one_session(stderr)
    summ = shim_summary(stderr)
    assert s["version"] == f"TLSv{tls}", s
    assert summ["sessions"] == 1, summ
    if own_bio_moves(tls):
        assert s["tx"] == s["rx"] == "kernel", s
        assert s["engine"] == "shim,record-layer:shim", s
        assert summ["tx_kernel"] == summ["rx_kernel"] == 1, summ
        assert n <= summ["bytes_rx"] < n + slack, summ
        assert n <= summ["bytes_tx"] < n + slack, summ
        # One socket, both directions in the kernel's software kTLS.
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        assert (s["tx"], s["rx"]) == expected(tls), s
        assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
        assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


@no_asan
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_curl_own_bio_moves(tls, certs, shim_config, workdir, files):
    r, d = run(certs, files, workdir, tls, shim_env(shim_config))
    # What curl read and wrote went through the kernel: the file each way
    # and some HTTP around it.
    check_curl_session(r.stderr, d, tls, N, 4096)


@no_asan
@pytest.mark.parametrize("how", ["config", "env"])
def test_curl_custom_transports_off(how, certs, shim_config, workdir, files,
                                    tmp_path):
    """custom_transports = no: curl's BIO is not watched, nothing moves,
    curl works as without the shim."""
    if how == "config":
        conf = tmp_path / "off.conf"
        conf.write_text("custom_transports = no\n")
        env = shim_env(str(conf))
    else:
        env = shim_env(shim_config, KTLS_SHIM_CUSTOM_TRANSPORTS="no")
    r, d = run(certs, files, workdir, "1.2", env)
    summ = shim_summary(r.stderr)
    assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
    assert "tx:custom-transports-off=1" in summ["rest"], summ
    assert not any(d.values()), d


def xfer_pair(role, certs, mode, tls, env, extra=(), peer_extra=(),
              sent=N, back=N):
    """tls_xfer --own-bio MODE in role (env: shimmed) against an unshimmed
    tls_xfer over a socket BIO, `sent` bytes to the peer and `back` from it:
    the shimmed end's conn line and stderr and the tls_stat delta, once
    both agree on every byte."""
    cert, key = certs["ec"]
    vers = ["--tls", tls] if tls else []
    own = vers + ["--send", str(sent), "--seed", "5", "--own-bio", mode,
                  *extra]
    other = vers + ["--send", str(back), "--seed", "6", *peer_extra]
    srv = ["--role", "server", "--port", "0", "--cert", cert, "--key", key]
    before = tls_stat()
    if role == "server":
        me = Proc([XFER, *srv, *own], env)
        peer = Proc([XFER, "--role", "client", "--port",
                     str(me.read_port()), *other], plain_env())
    else:
        peer = Proc([XFER, *srv, *other], plain_env())
        me = Proc([XFER, "--role", "client", "--port",
                   str(peer.read_port()), *own], env)
    assert me.wait() == 0, me.err[-3000:]
    assert peer.wait() == 0, peer.err[-3000:]
    d = delta(before, tls_stat())
    c, _ = one_conn_intact(me.out, peer.out, sent, back)
    return c, me.err, d


# (tls, io): TLS 1.2 and 1.3 non-blocking (curl's, libpq's and
# PostgreSQL's sockets), and a blocking socket once.
XFER_MOVES = [("1.2", "nonblocking"), ("1.3", "nonblocking"),
              ("1.3", "blocking")]


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("tls,io", XFER_MOVES,
                         ids=[f"{t}-{i}" for t, i in XFER_MOVES])
def test_own_bio_send_recv_moves(tls, io, role, certs, shim_config):
    """A BIO of send(MSG_NOSIGNAL)/recv() (curl's, libpq's and the
    PostgreSQL server's shape), both roles: a TLS 1.3 server has written
    its tickets by the time the session moves. The socket the shim learned
    is the one tls_xfer used: the kernel's own answer (getsockopt) and the
    shim's public query on it agree with the session line."""
    c, err, d = xfer_pair(role, certs, "send", tls, shim_env(shim_config),
                          ["--blocking"] if io == "blocking" else [])
    s = one_session(err)
    assert (s["version"], s["cipher"]) == (c["version"], c["cipher"]), s
    tx, rx = expected(tls)
    assert (s["tx"], s["rx"]) == (tx, rx), s
    moved = own_bio_moves(tls)
    assert c["kernel_tx"] == c["kernel_rx"] == str(int(moved)), c
    # OpenSSL itself never had kTLS here: the shim's record layer ran it.
    assert c["lib_tx"] == c["lib_rx"] == "0", c
    summ = shim_summary(err)
    assert summ["sessions"] == 1, summ
    assert summ["tx_kernel"] == summ["rx_kernel"] == int(moved), summ
    if moved:
        assert s["engine"] == "shim,record-layer:shim", s
        assert c["shim"] == f"kernel=3,tracked=1,tx={tx},rx={rx}", c
        assert summ["bytes_tx"] == summ["bytes_rx"] == N, summ
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


KU = 6  # KeyUpdates in a transfer; every other one asks the other side


@pytest.mark.parametrize("updater", ["program", "peer"])
def test_own_bio_key_updates(updater, certs, shim_config):
    """TLS 1.3 KeyUpdates on a moved own-BIO session (the shim's record
    layer follows them, whatever libssl): KU from the shimmed program
    (SSL_key_update) or from the unshimmed peer, half asking for an answer.
    The one sending the KeyUpdates sends N, the other 2 N, so it is still
    writing when the update_requested ones arrive. Every byte arrives, and
    the kernel's rekey counters moved by exactly what the shim did."""
    ku = ["--key-updates", str(KU)]
    prog = updater == "program"
    c, err, d = xfer_pair(
        "client", certs, "send", "1.3", shim_env(shim_config),
        ku if prog else (), () if prog else ku,
        sent=N if prog else 2 * N, back=2 * N if prog else N)
    s = one_session(err)
    summ = shim_summary(err)
    assert summ["sessions"] == 1, summ
    if not own_bio_moves("1.3"):  # OpenSSL's own KeyUpdates, in userspace
        assert (s["tx"], s["rx"]) == expected("1.3"), s
        assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d
        return
    assert s["tx"] == s["rx"] == "kernel", s
    assert "SSL_key_update refused" not in err, err[-3000:]
    rest = summ["rest"]
    got = {k: int(rest.split(f"{k}=")[1].split()[0]) if k in rest else 0
           for k in ("rekeys_tx", "rekeys_rx")}
    mine, answers = ("rekeys_tx", "rekeys_rx") if prog else ("rekeys_rx",
                                                             "rekeys_tx")
    assert got[mine] == KU, (got, err[-3000:])
    assert got[answers] >= 1, (got, err[-3000:])
    assert d.get("TlsTxRekeyOk", 0) == got["rekeys_tx"], (got, d)
    assert d.get("TlsRxRekeyOk", 0) == got["rekeys_rx"], (got, d)
    assert d.get("TlsTxRekeyError", 0) == d.get("TlsRxRekeyError", 0) == 0
    assert d.get("TlsDecryptError", 0) == 0, d


# mode -> the reason both directions give: what the shim must refuse.
REFUSED = {"readahead": "transport-reads-ahead",
           "queue": "transport-queues-writes"}


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("mode", list(REFUSED))
def test_own_bio_refused(mode, role, certs, shim_config):
    """A BIO that reads ahead (curl 8's receive buffer) or writes later
    (Apache's output filter) fails the proof: the session stays with
    OpenSSL, intact, with the reason, and nothing reaches the kernel."""
    c, err, d = xfer_pair(role, certs, mode, None, shim_env(shim_config))
    s = one_session(err)
    assert (s["tx"], s["rx"]) == (REFUSED[mode],) * 2, s
    assert c["kernel_tx"] == c["kernel_rx"] == "0", c
    summ = shim_summary(err)
    assert summ["sessions"] == 1, summ
    assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
    assert f"tx:{REFUSED[mode]}=1" in summ["rest"], summ
    assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


# ---- psql (libpq) and the PostgreSQL server --------------------------------
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture(scope="module")
def pg_cluster(shim_config):
    """A PostgreSQL cluster (initdb, trust auth) owned by nobody, with a
    self-signed certificate: (data dir, socket and home dir, a copy of
    the shim's config that nobody can read)."""
    top = tempfile.mkdtemp(prefix="ktls-pg.")
    os.chmod(top, 0o755)
    data = os.path.join(top, "data")
    for d in (data, os.path.join(top, "run")):
        os.mkdir(d)
        os.chown(d, 65534, 65534)
    conf = os.path.join(top, "shim.conf")
    shutil.copyfile(shim_config, conf)
    os.chmod(conf, 0o644)
    subprocess.run(NOBODY + [f"{PG_BIN}/initdb", "-D", data, "-U", "pg",
                             "--auth=trust"], check=True,
                   capture_output=True, env=dict(plain_env(), HOME=top))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    f"{data}/server.key", "-out", f"{data}/server.crt",
                    "-days", "2", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    for f in ("server.key", "server.crt"):
        os.chown(f"{data}/{f}", 65534, 65534)
    os.chmod(f"{data}/server.key", 0o600)
    yield data, top, conf
    shutil.rmtree(top, ignore_errors=True)


def pg_start(cluster, tls, env):
    data, top, _ = cluster
    run = os.path.join(top, "run")
    port = free_port()
    v = f"TLSv{tls}"
    srv = Proc(NOBODY + [f"{PG_BIN}/postgres", "-D", data, "-c", "ssl=on",
                         "-c", f"ssl_min_protocol_version={v}", "-c",
                         f"ssl_max_protocol_version={v}", "-c",
                         "listen_addresses=127.0.0.1", "-c", f"port={port}",
                         "-c", f"unix_socket_directories={run}"],
               dict(env, HOME=top))
    # Ready over the Unix socket: no TLS session of its own.
    for _ in range(240):
        if srv.p.poll() is not None:
            break
        if subprocess.run([f"{PG_BIN}/pg_isready", "-q", "-h", run, "-p",
                           str(port)]).returncode == 0:
            return srv, port
        time.sleep(0.5)
    srv.p.kill()
    srv.wait()
    raise AssertionError(f"postgres never became ready:\n{srv.err[-3000:]}")


def pg_copy_both_ways(cluster, tls, server_env, client_env, workdir):
    """psql (client_env) against postgres (server_env): N bytes COPYed up
    into a table, hashed by the server, and \\copy'd back down. Returns
    psql's stderr, the server's and the tls_stat delta, once the server's
    hash and the file copied back both match what was sent."""
    blob = workdir / f"pg-{tls}.txt"
    raw = hashlib.sha256(b"pg").digest() * (N // 32 + 1)
    blob.write_bytes(base64.b64encode(raw)[:N])
    want = sha256_file(blob)
    back = workdir / f"pg-{tls}.back"
    sql = workdir / f"pg-{tls}.sql"
    sql.write_bytes(b"CREATE TABLE t(b text); COPY t FROM STDIN;\n" +
                    blob.read_bytes() + b"\n\\.\nSELECT encode(sha256("
                    b"convert_to(b, 'UTF8')), 'hex') FROM t;\n"
                    b"\\copy (SELECT b FROM t) TO '" + str(back).encode() +
                    b"'\nDROP TABLE t;\n")
    srv, port = pg_start(cluster, tls, server_env)
    before = tls_stat()
    r = subprocess.run(["psql", f"host=127.0.0.1 port={port} user=pg "
                        "dbname=postgres sslmode=require gssencmode=disable",
                        "-At", "-v", "ON_ERROR_STOP=1", "-f", str(sql)],
                       env=client_env, capture_output=True, text=True,
                       timeout=900)
    after = tls_stat()
    srv.p.terminate()  # smart shutdown: the backend has exited already
    srv.wait()
    assert r.returncode == 0, r.stderr[-3000:]
    assert want in r.stdout.split(), (want, r.stdout[-500:])
    assert back.read_bytes().rstrip(b"\n") == blob.read_bytes()
    return r.stderr, srv.err, delta(before, after)


# psql and postgres 15 with nothing but the ASan runtime preloaded hang
# (psql at exit, in p11-kit's destructor waiting on glibc's setlocale
# lock): measured with `LD_PRELOAD=libasan.so psql --version` and
# `... postgres --version`, no shim: neither returns.
PSQL_ASAN = ("psql and postgres with the ASan runtime preloaded hang, "
             "shim or not")


@pytest.mark.skipif(not PG_BIN, reason="postgresql not installed")
@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs root (runs PostgreSQL as nobody)")
@pytest.mark.needs_postgresql
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("side", ["psql", "postgres"])
def test_postgres_own_bio(side, tls, pg_cluster, workdir):
    """psql (libpq's own socket BIO) shimmed against an unshimmed server,
    and the PostgreSQL server (its own BIO too) shimmed against an
    unshimmed psql: the shimmed end's one session moves as curl's does, and
    every byte of a COPY each way arrives."""
    if ASAN_RT:
        pytest.skip(PSQL_ASAN)
    shimmed = shim_env(pg_cluster[2])  # a config nobody can read
    cli_err, srv_err, d = pg_copy_both_ways(
        pg_cluster, tls, shimmed if side == "postgres" else plain_env(),
        shimmed if side == "psql" else plain_env(), workdir)
    err = cli_err if side == "psql" else srv_err
    s = one_session(err)
    assert s["version"] == f"TLSv{tls}", s
    assert (s["tx"], s["rx"]) == expected(tls), s
    if own_bio_moves(tls):
        assert s["engine"] == "shim,record-layer:shim", s
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


@pytest.mark.skipif(not PG_BIN, reason="postgresql not installed")
@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs root (runs PostgreSQL as nobody)")
@pytest.mark.needs_postgresql
def test_postgres_custom_transports_off(pg_cluster, workdir):
    """custom_transports = no, TLS 1.2: psql's BIO unwatched, nothing moves,
    and OpenSSL's own installer stays off it too (libpq's BIO method
    copies the socket BIO's ctrl: turned on by the shim, OpenSSL's kTLS
    put TLS_TX on the socket at the CCS and the Finished left as
    application data)."""
    if ASAN_RT:
        pytest.skip(PSQL_ASAN)
    env = shim_env(pg_cluster[2], KTLS_SHIM_CUSTOM_TRANSPORTS="no")
    cli_err, _, d = pg_copy_both_ways(pg_cluster, "1.2", plain_env(), env,
                                      workdir)
    summ = shim_summary(cli_err)
    assert summ["sessions"] == 1, summ
    assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
    assert "tx:custom-transports-off=1" in summ["rest"], summ
    assert not any(d.values()), d


@pytest.mark.parametrize("engine", ["shim", "openssl"])
def test_own_bio_engines(engine, certs, shim_config):
    """engine = shim moves a proven own BIO as auto does; engine = openssl
    turns the shim's engine off, so the session stays with OpenSSL
    (own-bio-not-moved)."""
    c, err, d = xfer_pair("client", certs, "send", "1.2",
                          shim_env(shim_config, KTLS_SHIM_ENGINE=engine))
    s = one_session(err)
    if engine == "shim":
        want = expected("1.2")
    else:
        want = ("own-bio-not-moved",) * 2
    assert (s["tx"], s["rx"]) == want, s
    moved = want == ("kernel", "kernel")
    assert c["kernel_tx"] == c["kernel_rx"] == str(int(moved)), c
    assert d.get("TlsTxSw", 0) == d.get("TlsRxSw", 0) == int(moved), d
