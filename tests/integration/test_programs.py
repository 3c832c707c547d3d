"""Unmodified real programs under the shim, against unshimmed peers:
openssl s_server -WWW serving curl, openssl s_client fetching from an
unshimmed s_server, CPython's ssl module in both roles, many sequential
connections in one process (fd reuse), blocking and non-blocking sockets.
TLS 1.3 KeyUpdate: test_keyupdate.py."""
import os
import re
import subprocess

import pytest

from conftest import (ASAN_RT, BIG, ENGINES_HERE, HERE, KERNEL,
                      PY, PY_VER,
                      XFER, MiB, Proc, delta, engine_label,
                      no_ktls_env, one_conn_intact,
                      own_bio_moves, own_moves, free_port, make_file,
                      parse_conns,
                      plain_env, rx_moves, rx_state, sha256_file, shim_env,
                      shim_sessions, shim_summary, tls_stat)
from test_load import LOAD


@pytest.fixture(scope="module")
def big_file(workdir):
    path = workdir / "big.bin"
    return path, make_file(path, BIG)


def s_server(port, certs, env, workdir, extra=()):
    p = Proc(["openssl", "s_server", "-WWW", "-accept", str(port),
              "-naccept", "1", "-cert", certs["rsa"][0],
              "-key", certs["rsa"][1], *extra], env, cwd=str(workdir),
             stdin=subprocess.DEVNULL)
    p.wait_line("ACCEPT")
    return p


def curl_get(port, name, out, tls):
    """An unshimmed curl fetching https://127.0.0.1:PORT/NAME into out."""
    vflag = ["--tlsv1.2", "--tls-max", "1.2"] if tls == "1.2" else ["--tlsv1.3"]
    return subprocess.run(["curl", "-sS", "-k", *vflag, "-o", str(out),
                           f"https://127.0.0.1:{port}/{name}"],
                          env=plain_env(), capture_output=True, text=True,
                          timeout=900)


def s_client_get(port, name, tls, env):
    """openssl s_client (env: shimmed) fetching /NAME over HTTP/1.0:
    the finished process and the response body."""
    r = subprocess.run(["openssl", "s_client", "-quiet",
                        f"-tls{tls.replace('.', '_')}",
                        "-connect", f"127.0.0.1:{port}"],
                       input=f"GET /{name} HTTP/1.0\r\n\r\n".encode(),
                       env=env, capture_output=True, timeout=900)
    return r, r.stdout.split(b"\r\n\r\n", 1)[1]


def sha256(b):
    import hashlib
    return hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_curl_downloads_from_shimmed_s_server(tls, certs, shim_config,
                                              workdir, big_file):
    path, digest = big_file
    port = free_port()
    before = tls_stat()
    srv = s_server(port, certs, shim_env(shim_config), workdir)
    before = tls_stat()
    out = workdir / f"curl-{tls}.out"
    r = curl_get(port, path.name, out, tls)
    assert r.returncode == 0, r.stderr
    assert srv.wait() == 0, srv.err
    assert sha256_file(out) == digest
    sess = shim_sessions(srv.err)
    assert len(sess) == 1, srv.err
    summ = shim_summary(srv.err)
    d = delta(before, tls_stat())
    if KERNEL:
        assert sess[0]["tx"] == "kernel"
        assert sess[0]["rx"] == rx_state(tls)
        assert summ["bytes_tx"] >= BIG
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == rx_moves(tls)
    else:
        assert sess[0]["tx"] == "kernel-has-no-tls"
        assert "tx:kernel-has-no-tls=1" in summ["rest"]


@pytest.mark.skipif(
    bool(ASAN_RT), reason="curl 7.88 with the ASan runtime preloaded hangs in "
    "setlocale() at start-up, shim or not; covered by the non-sanitizer run")
@pytest.mark.parametrize("custom", ["yes", "no"])
def test_shimmed_curl_falls_back_and_works(custom, certs, shim_config,
                                           workdir, big_file):
    """curl (7.88, 8.14) does its socket I/O through its own BIO, which the
    shim watches during the handshake: it hands OpenSSL's records to one
    TCP socket unchanged, nothing read ahead, so the session moves (the
    shim's engine and record layer, transport=own; test_own_bio.py has the
    details); with custom_transports = no it is not watched at all. Here against openssl s_server -WWW (TLS 1.3, HTTP/1.0
    to EOF without close_notify): curl gets every byte either way."""
    path, digest = big_file
    port = free_port()
    srv = s_server(port, certs, plain_env(), workdir)
    before = tls_stat()
    out = workdir / "curl-shimmed.out"
    r = subprocess.run(["curl", "-sS", "-k", "-o", str(out),
                        f"https://127.0.0.1:{port}/{path.name}"],
                       env=shim_env(shim_config, KTLS_SHIM_LOG_LEVEL="debug",
                                    KTLS_SHIM_CUSTOM_TRANSPORTS=custom),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    srv.wait()
    assert sha256_file(out) == digest
    summ = shim_summary(r.stderr)
    d = delta(before, tls_stat())
    assert summ["sessions"] == 1
    if custom == "no":  # no socket was watched: the line has fd=-1
        assert summ["tx_kernel"] == 0
        assert "tx:custom-transports-off=1" in summ["rest"], summ
        assert not any(d.values())
        return
    sess = shim_sessions(r.stderr)
    assert len(sess) == 1, r.stderr[-3000:]
    if own_bio_moves("1.3"):
        assert sess[0]["tx"] == sess[0]["rx"] == "kernel", sess
        assert sess[0]["engine"] == "shim,record-layer:shim", sess
        assert summ["bytes_rx"] >= BIG, summ
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
        return
    reason = "kernel-has-no-tls" if not KERNEL else None
    if reason:
        assert sess[0]["tx"] == sess[0]["rx"] == reason, sess
    else:  # TLS 1.3 where the kernel cannot rekey: both or neither
        assert (sess[0]["tx"], sess[0]["rx"]) == (
            "other-direction-stays", "kernel-cannot-rekey-tls13"), sess
    assert summ["tx_kernel"] == 0
    assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_shimmed_s_client_fetches(tls, certs, shim_config, workdir,
                                  big_file):
    path, digest = big_file
    port = free_port()
    srv = s_server(port, certs, plain_env(), workdir)
    before = tls_stat()
    r, body = s_client_get(port, path.name, tls, shim_env(shim_config))
    srv.wait()
    assert len(body) == BIG and sha256(body) == digest
    err = r.stderr.decode(errors="replace")
    sess = shim_sessions(err)
    assert len(sess) == 1, err
    d = delta(before, tls_stat())
    if KERNEL:
        assert sess[0]["tx"] == "kernel"
        assert sess[0]["rx"] == rx_state(tls)
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == rx_moves(tls)
        if rx_moves(tls):
            assert shim_summary(err)["bytes_rx"] == len(r.stdout)
    else:
        assert sess[0]["rx"] == "kernel-has-no-tls"


@pytest.mark.parametrize("engine", ENGINES_HERE)
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("shimmed_role", ["server", "client"])
def test_python_ssl(shimmed_role, tls, engine, certs, shim_config):
    """CPython's ssl module (settimeout: non-blocking underneath: WANT_READ
    and WANT_WRITE, SSL_read_ex/SSL_write_ex, close_notify both ways)
    against an unshimmed tls_xfer, with each engine; no-ktls: a libssl
    without kTLS, run by the shim's own record layer."""
    size = BIG // 4
    if engine == "no-ktls":
        py_env = no_ktls_env(shim_config)
    else:
        py_env = shim_env(shim_config, KTLS_SHIM_ENGINE=engine)
    before = tls_stat()
    if shimmed_role == "server":
        py = Proc([PY, os.path.join(HERE, "pyssl_peer.py"), "server",
                   "--cert", certs["ec"][0], "--key", certs["ec"][1],
                   "--send", str(size), "--tls", tls], py_env)
        port = py.read_port()
        other = Proc([XFER, "--role", "client", "--port", str(port),
                      "--tls", tls, "--send", str(size // 2)], plain_env())
    else:
        other = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                      "--cert", certs["ec"][0], "--key", certs["ec"][1],
                      "--send", str(size // 2)], plain_env())
        port = other.read_port()
        py = Proc([PY, os.path.join(HERE, "pyssl_peer.py"), "client",
                   "--port", str(port), "--send", str(size), "--tls", tls],
                  py_env)
    assert py.wait() == 0, py.err
    assert other.wait() == 0, other.err
    one_conn_intact(py.out, other.out, size, back=size // 2)
    (sess,) = shim_sessions(py.err)
    summ = shim_summary(py.err)
    d = delta(before, tls_stat())
    if engine == "no-ktls":
        if own_moves(tls):
            assert sess["engine"] == "shim,record-layer:shim", py.err
            assert sess["tx"] == sess["rx"] == "kernel", py.err
            assert summ["bytes_tx"] == size, summ
            assert summ["bytes_rx"] == size // 2, summ
            assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
        elif KERNEL:
            assert sess["tx"] == "other-direction-stays", py.err
            assert d.get("TlsTxSw", 0) == 0, d
        else:
            assert sess["tx"] == "kernel-has-no-tls", py.err
        return
    assert sess["engine"] == engine_label(tls, engine), py.err
    if KERNEL:
        assert sess["tx"] == "kernel"
        assert sess["rx"] == rx_state(tls)
        assert summ["bytes_tx"] == size
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == rx_moves(tls)
    else:
        assert sess["tx"] == "kernel-has-no-tls"


def test_many_sequential_connections_reuse_fds(certs, shim_config):
    n = 25
    before = tls_stat()
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", "1.2",
                "--conns", str(n), "--send", str(MiB), "--cert",
                certs["ec"][0], "--key", certs["ec"][1]], plain_env())
    port = srv.read_port()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", "1.2",
                "--conns", str(n), "--send", str(MiB // 2)],
               shim_env(shim_config))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    cs, ss = parse_conns(cli.out), parse_conns(srv.out)
    assert len(cs) == len(ss) == n
    for c, s in zip(cs, ss):
        assert c["sent_sha256"] == s["recv_sha256"]
        assert s["sent_sha256"] == c["recv_sha256"]
    sess = shim_sessions(cli.err)
    assert len(sess) == n
    assert len({x["fd"] for x in sess}) == 1  # the same fd, reused
    summ = shim_summary(cli.err)
    assert summ["sessions"] == n
    d = delta(before, tls_stat())
    if KERNEL:
        assert summ["tx_kernel"] == summ["rx_kernel"] == n
        assert summ["bytes_tx"] == n * (MiB // 2)
        assert summ["bytes_rx"] == n * MiB
        assert d["TlsTxSw"] == d["TlsRxSw"] == n
        assert all(c["kernel_tx"] == c["kernel_rx"] == "1" for c in cs)
    else:
        assert summ["tx_kernel"] == 0


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_blocking_socket_one_way(tls, certs, shim_config):
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1]],
               plain_env())
    port = srv.read_port()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", tls,
                "--blocking", "--send", str(BIG // 4), "--chunk", "100000"],
               shim_env(shim_config))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"]
    assert int(s["recv"]) == BIG // 4
    assert c["kernel_tx"] == ("1" if KERNEL else "0")


def test_python_unix_socket_and_memory_bio_stay_in_userspace(certs,
                                                             shim_config):
    r = subprocess.run([PY, os.path.join(HERE, "pyssl_edge.py"),
                        certs["ec"][0], certs["ec"][1]],
                       env=shim_env(shim_config), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    unix, membio = r.stdout.splitlines()
    _, srv, cli, sent = unix.split()
    assert srv == cli == sent
    _, got, want = membio.split()
    assert got == want
    summ = shim_summary(r.stderr)
    # Two sessions on the socketpair (both ends), two on memory BIOs.
    assert summ["sessions"] == 4 and summ["tx_kernel"] == 0
    assert "tx:not-tcp=2" in summ["rest"], summ
    assert "tx:not-a-socket-bio=2" in summ["rest"], summ


def test_fork_after_move_and_exec(certs, shim_config):
    """pyssl_fork.py: two sessions moved, fork, the child goes on with one
    and the parent with the other at the same time; then an exec'd tls_xfer
    (shim still in LD_PRELOAD) moves its own session. The peer, an
    unshimmed tls_load server, checks every byte of all three."""
    n = 4 * MiB
    srv = Proc([LOAD, "--role", "server", "--cert", certs["ec"][0],
                "--key", certs["ec"][1], "--conns", "3", "--min", str(n),
                "--max", str(n)], plain_env())
    port = srv.read_port()
    before = tls_stat()
    py = subprocess.run([PY, os.path.join(HERE, "pyssl_fork.py"), str(port),
                         str(n), XFER], env=shim_env(shim_config),
                        capture_output=True, text=True, timeout=600)
    assert py.returncode == 0, py.stderr
    assert srv.wait() == 0, srv.err
    d = delta(before, tls_stat())
    ours = {c["conn"]: c for c in parse_conns(py.stdout)}
    theirs = {s["port"]: s for s in parse_conns(srv.out)}
    assert sorted(ours) == ["0", "child", "parent"] and len(theirs) == 3
    xfer_port = (set(theirs) - {ours["child"]["port"],
                                ours["parent"]["port"]}).pop()
    for c, s in ((ours["child"], theirs[ours["child"]["port"]]),
                 (ours["parent"], theirs[ours["parent"]["port"]]),
                 (ours["0"], theirs[xfer_port])):
        assert int(c["sent"]) == int(s["recv"]) == n
        assert int(c["recv"]) == int(s["sent"]) == n
        assert c["sent_sha256"] == s["recv_sha256"]
        assert c["recv_sha256"] == s["sent_sha256"]
    assert theirs[ours["child"]["port"]]["version"] == "TLSv1.2"
    assert theirs[ours["parent"]["port"]]["version"] == "TLSv1.3"
    # The parent moved both sessions before the fork; the child moved none
    # of its own; the exec'd tls_xfer moved its session itself.
    summaries = re.findall(r"summary (\S+) sessions=(\d+) tx_kernel=(\d+) "
                           r"rx_kernel=(\d+)", py.stderr)
    k = KERNEL
    assert sorted(summaries) == sorted([
        (f"python{PY_VER}", "2", str(2 * k), str(k + rx_moves("1.3"))),
        (f"python{PY_VER}", "0", "0", "0"),
        ("tls_xfer", "1", str(int(k)), str(int(k)))]), py.stderr
    # The sockets stayed in the kernel in the process that used them.
    assert ours["child"]["kernel_tx"] == ours["child"]["kernel_rx"] == str(
        int(k))
    assert ours["parent"]["kernel_tx"] == str(int(k))
    assert ours["parent"]["kernel_rx"] == str(int(rx_moves("1.3")))
    assert ours["0"]["kernel_tx"] == ours["0"]["kernel_rx"] == str(int(k))
    if k:
        assert d["TlsTxSw"] == 3 and d["TlsRxSw"] == 2 + rx_moves("1.3"), d


def test_python_https_file_server(certs, shim_config, workdir):
    """CPython's http.server over ssl (no sendfile(): its writes go through
    SSL_write, which the kernel encrypts once TX has moved) serving curl
    over TLS 1.3 and 1.2: bytes intact, sessions moved."""
    (workdir / "www").mkdir(exist_ok=True)
    path = workdir / "www" / "pyhttpd.bin"
    digest = make_file(path, BIG // 4, seed=8)
    before = tls_stat()
    srv = Proc([PY, os.path.join(HERE, "pyssl_httpd.py"), "--dir",
                str(path.parent), "--cert", certs["ec"][0], "--key",
                certs["ec"][1], "--requests", "2"], shim_env(shim_config))
    port = srv.read_port()
    for tls in ("1.3", "1.2"):
        out = workdir / f"pyhttpd-{tls}.out"
        r = subprocess.run(["curl", "-sS", "-k", f"--tlsv{tls}", "--tls-max",
                            tls, "-o", str(out),
                            f"https://127.0.0.1:{port}/{path.name}"],
                           env=plain_env(), capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, r.stderr
        assert sha256_file(out) == digest
    assert srv.wait() == 0, srv.err
    sess = shim_sessions(srv.err)
    assert sorted(s["version"] for s in sess) == ["TLSv1.2", "TLSv1.3"]
    summ = shim_summary(srv.err)
    assert "sendfile" not in summ["rest"], summ  # none was called
    d = delta(before, tls_stat())
    if KERNEL:
        assert all(s["tx"] == "kernel" for s in sess), srv.err
        assert summ["bytes_tx"] >= 2 * (BIG // 4)
        assert d["TlsTxSw"] == 2, d
    else:
        assert all(s["tx"] == "kernel-has-no-tls" for s in sess), srv.err
        assert summ["tx_kernel"] == 0
