"""GnuTLS programs under the shim (shim/gnutls/), against unshimmed
OpenSSL and GnuTLS peers: gnutls-serv --echo and gnutls-cli over the
version x cipher matrix, then NBD over TLS with PSK (nbdkit serving an
image, nbdcopy reading and writing it), each side shimmed in turn.

Debian's GnuTLS 3.7.9 has no kTLS of its own, so every session that moves
here was moved by the shim. TLS 1.3 RX moves where the kernel can follow a
peer's KeyUpdate (6.14+: the shim learns the traffic secrets from GnuTLS's
keylog function); elsewhere it stays in GnuTLS unless
tls13_rx_without_rekey = yes, and those runs check it too. KeyUpdates
themselves: test_gnutls_keyupdate.py."""
import os
import shutil
import subprocess

import pytest

from conftest import (BIG, KERNEL, REKEY, REQUIRE_ALL, XFER, MiB, Proc,
                      delta, free_port, gnutls_xfer_pair, make_file,
                      parse_conns, plain_env, sha256_file, shim_env,
                      shim_sessions, shim_summary, tls_stat, wait_port)
from test_programs import s_server

# Echo through gnutls-serv is line by line in userspace on the peer side:
# a few MiB is plenty to cross many records and both directions.
ECHO = min(BIG, 2 * MiB)

CIPHERS = {"aes-128-gcm": "AES-128-GCM", "aes-256-gcm": "AES-256-GCM",
           "chacha20-poly1305": "CHACHA20-POLY1305"}


def priority(tls, cipher):
    return (f"NORMAL:-VERS-ALL:+VERS-TLS{tls}:-CIPHER-ALL:"
            f"+{CIPHERS[cipher]}")


def expect_rx(tls, rx13):
    """What the shim must report for RX of a GnuTLS session here."""
    if not KERNEL:
        return "kernel-has-no-tls"
    if tls == "1.2" or rx13 or REKEY:
        return "kernel"
    return "kernel-cannot-rekey-tls13"


def check_session(s, tls, rx13):
    assert s["engine"] == "gnutls", s
    assert s["version"] == f"TLSv{tls}", s
    assert s["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls"), s
    assert s["rx"] == expect_rx(tls, rx13), s


def shim_log(workdir, name):
    p = workdir / f"{name}.shimlog"
    if p.exists():
        p.unlink()
    return p


def gnutls_env(config, log, rx13=False):
    extra = {"KTLS_SHIM_LOG": f"file:{log}"}
    if rx13:
        extra["KTLS_SHIM_TLS13_RX_WITHOUT_REKEY"] = "yes"
    return shim_env(config, **extra)


@pytest.mark.parametrize("cipher", list(CIPHERS))
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_gnutls_serv_echo_shimmed(tls, cipher, certs, shim_config, workdir):
    """Shimmed gnutls-serv --echo; an unshimmed OpenSSL client sends text
    and must get every byte back (the server's recv and send both run
    over the kernel where they moved)."""
    _echo(tls, cipher, certs, shim_config, workdir, rx13=False)


@pytest.mark.parametrize("cipher", ["aes-128-gcm", "chacha20-poly1305"])
def test_gnutls_serv_echo_tls13_rx_in_kernel(cipher, certs, shim_config,
                                             workdir):
    _echo("1.3", cipher, certs, shim_config, workdir, rx13=True)


def _echo(tls, cipher, certs, shim_config, workdir, rx13):
    port = free_port()
    log = shim_log(workdir, f"serv-{tls}-{cipher}-{rx13}")
    before = tls_stat()
    srv = Proc(["gnutls-serv", "--echo", "-p", str(port),
                "--x509certfile", certs["ec"][0],
                "--x509keyfile", certs["ec"][1],
                "--priority", priority(tls, cipher)],
               gnutls_env(shim_config, log, rx13), quiet=True)
    wait_port(port)
    before = tls_stat()  # the probe connection above is not ours
    cli = subprocess.run([XFER, "--role", "client", "--port", str(port),
                          "--tls", tls, "--send", str(ECHO), "--recv-until",
                          str(ECHO), "--text"], env=plain_env(),
                         capture_output=True, text=True, timeout=600)
    d = delta(before, tls_stat())
    srv.p.terminate()
    srv.p.wait(timeout=30)
    assert cli.returncode == 0, cli.stderr
    (c,) = parse_conns(cli.stdout)
    assert int(c["sent"]) == int(c["recv"]) == ECHO
    assert c["sent_sha256"] == c["recv_sha256"]
    sess = [s for s in shim_sessions(log.read_text())]
    # The readiness probe is a session too (one that never completes a
    # handshake does not count); the transfer's is the last.
    assert sess, log.read_text()
    check_session(sess[-1], tls, rx13)
    if KERNEL:
        assert d.get("TlsTxSw", 0) == 1, d
        assert d.get("TlsRxSw", 0) == (1 if tls == "1.2" or rx13 or REKEY
                                       else 0), d
        assert d.get("TlsDecryptError", 0) == 0, d


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_gnutls_cli_shimmed_receives(tls, certs, shim_config, workdir):
    """Shimmed gnutls-cli reads what an unshimmed OpenSSL server sends; its
    stdout must hash to what the server reports it sent. gnutls-cli exits
    on the server's close_notify without sending its own, so the server's
    report comes from a second, plain run with the same stream."""
    want = _reference_stream(certs)
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--send", str(ECHO), "--text", "--cert", certs["ec"][0],
                "--key", certs["ec"][1]], plain_env())
    port = srv.read_port()
    log = shim_log(workdir, f"cli-{tls}")
    out = workdir / f"gnutls-cli-{tls}.out"
    before = tls_stat()
    with open(out, "wb") as f:
        cli = subprocess.Popen(
            ["gnutls-cli", "--insecure", "-p", str(port), "127.0.0.1",
             "--priority", priority(tls, "aes-256-gcm"),
             f"--logfile={workdir / f'gnutls-cli-{tls}.info'}"],
            env=gnutls_env(shim_config, log), stdin=subprocess.PIPE,
            stdout=f, stderr=subprocess.DEVNULL)
        # stdin stays open (no data, no EOF) until the server closes.
        assert cli.wait(timeout=600) == 0
        cli.stdin.close()
    srv.wait(timeout=60)
    d = delta(before, tls_stat())
    assert sha256_file(out) == want
    (s,) = shim_sessions(log.read_text())
    check_session(s, tls, False)
    summ = shim_summary(log.read_text())
    if KERNEL:
        assert d.get("TlsTxSw", 0) == 1 and d.get("TlsDecryptError", 0) == 0
        if tls == "1.2" or REKEY:
            assert summ["bytes_rx"] == ECHO, summ


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("role", ["client", "server"])
def test_gnutls_xfer_both_ways(role, tls, certs, shim_config):
    """Shimmed gnutls_xfer against an unshimmed OpenSSL tls_xfer, up to 8
    MiB each way at once: every byte intact both ways,
    and the shim's session, the kernel's view and its counters agree on
    what moved."""
    n = min(BIG // 4, 8 * MiB)
    gx, peer, d = gnutls_xfer_pair(
        role, certs, ["--tls", tls, "--send", str(n), "--seed", "5"],
        ["--tls", tls, "--send", str(n), "--seed", "6"],
        shim_env(shim_config))
    (g,), (p,) = parse_conns(gx.out), parse_conns(peer.out)
    assert g["version"] == p["version"] == f"TLSv{tls}", (g, p)
    assert int(g["sent"]) == int(p["recv"]) == n
    assert int(p["sent"]) == int(g["recv"]) == n
    assert g["sent_sha256"] == p["recv_sha256"]
    assert p["sent_sha256"] == g["recv_sha256"]
    assert g["sent_sha256"] != p["sent_sha256"]  # two streams, two seeds
    (s,) = shim_sessions(gx.err)
    assert s["engine"] == "gnutls", s
    assert s["version"] == f"TLSv{tls}", s
    rx_moved = KERNEL and (tls == "1.2" or REKEY)
    assert s["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls"), s
    assert s["rx"] == ("kernel" if rx_moved else
                       "kernel-cannot-rekey-tls13" if KERNEL
                       else "kernel-has-no-tls"), s
    assert g["kernel_tx"] == str(int(KERNEL)), g
    assert g["kernel_rx"] == str(int(rx_moved)), g
    summ = shim_summary(gx.err)
    if KERNEL:
        assert d.get("TlsTxSw", 0) == 1, d
        assert d.get("TlsRxSw", 0) == int(rx_moved), d
        assert d.get("TlsDecryptError", 0) == 0, d
        assert summ["bytes_tx"] == n, summ
    if rx_moved:
        assert summ["bytes_rx"] == n, summ


_ref = {}


def _reference_stream(certs):
    if "text" not in _ref:
        srv = Proc([XFER, "--role", "server", "--port", "0", "--send",
                    str(ECHO), "--text", "--cert", certs["ec"][0], "--key",
                    certs["ec"][1]], plain_env())
        port = srv.read_port()
        cli = subprocess.run([XFER, "--role", "client", "--port", str(port),
                              "--send", "0"], env=plain_env(),
                             capture_output=True, text=True, timeout=300)
        assert cli.returncode == 0, cli.stderr
        assert srv.wait(timeout=60) == 0, srv.err
        (c,) = parse_conns(cli.stdout)
        assert int(c["recv"]) == ECHO
        _ref["text"] = c["recv_sha256"]
    return _ref["text"]


# ---- wget -----------------------------------------------------------------

@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_shimmed_wget_downloads(tls, certs, shim_config, workdir):
    """Shimmed wget (Debian builds it on GnuTLS: 1.21 on Debian 12, 1.25
    on 13) downloads a file from an unshimmed openssl s_server -WWW: the
    file arrives intact, and where RX moved every body byte came through
    the kernel (the shim's bytes_rx counts the whole response)."""
    assert shutil.which("wget"), "wget is not installed (scripts/install-deps)"
    src = workdir / f"wget-src-{tls}.bin"
    digest = make_file(src, min(BIG, 8 * MiB), seed=11)
    port = free_port()
    srv = s_server(port, certs, plain_env(), workdir)
    log = shim_log(workdir, f"wget-{tls}")
    out = workdir / f"wget-out-{tls}.bin"
    before = tls_stat()
    r = subprocess.run(["wget", "-q", "--no-check-certificate",
                        # A GnuTLS priority string: its --secure-protocol
                        # TLSv1_2 means "1.2 or later".
                        f"--ciphers={priority(tls, 'aes-128-gcm')}",
                        "-O", str(out), f"https://127.0.0.1:{port}/{src.name}"],
                       env=gnutls_env(shim_config, log), capture_output=True,
                       text=True, timeout=600)
    srv.wait(timeout=60)
    d = delta(before, tls_stat())
    assert r.returncode == 0, r.stderr
    assert sha256_file(out) == digest
    (s,) = shim_sessions(log.read_text())
    check_session(s, tls, False)
    if KERNEL:
        rx_moved = s["rx"] == "kernel"
        assert d.get("TlsTxSw", 0) == 1, d
        assert d.get("TlsRxSw", 0) == int(rx_moved), d
        assert d.get("TlsDecryptError", 0) == 0, d
        if rx_moved:
            # The response: s_server's HTTP/1.0 header, then the file.
            assert shim_summary(log.read_text())["bytes_rx"] > \
                src.stat().st_size, log.read_text()


# ---- NBD over TLS ---------------------------------------------------------

# Half the big transfer size (32 MiB on 6.1): four copies, CI's time.
NBD_BYTES = BIG // 2
# By hand a machine without them skips; under the project's runner
# (KTLS_REQUIRE_ALL=1; test-all installs them) their absence is a failure.
need_nbd = pytest.mark.skipif(
    not REQUIRE_ALL
    and not (shutil.which("nbdkit") and shutil.which("nbdcopy")),
    reason="nbdkit/nbdcopy not installed (scripts/install-deps)")


@pytest.fixture(scope="module")
def nbd_setup(workdir):
    psk = workdir / "nbd.psk"
    psk.write_text("alice:" + "5a" * 32 + "\n")
    img = workdir / "disk.img"
    digest = make_file(img, NBD_BYTES, seed=7)
    return str(psk), img, digest


def nbdkit(port, psk, img, env):
    p = Proc(["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port),
              "--tls=require", f"--tls-psk={psk}", "file", str(img)],
             env, quiet=True)
    wait_port(port)
    return p


def nbd_uri(port, psk):
    return f"nbds://alice@127.0.0.1:{port}/?tls-psk-file={psk}"


def sessions_of(log):
    return shim_sessions(log.read_text()) if log.exists() else []


@need_nbd
@pytest.mark.parametrize("shimmed", ["server", "client"])
@pytest.mark.parametrize("op", ["read", "write"])
def test_nbd_copy_over_tls(op, shimmed, nbd_setup, shim_config, workdir):
    """nbdcopy reads the image from nbdkit (op=read) or writes a copy into
    it (op=write) over TLS 1.3 with PSK; the shimmed side is nbdkit or
    nbdcopy. The image must arrive intact and the kernel must have
    carried the shimmed side's sending direction (its RX too where
    tls13_rx_without_rekey lets it)."""
    psk, img, digest = nbd_setup
    port = free_port()
    log = shim_log(workdir, f"nbd-{op}-{shimmed}")
    rx13 = op == "write"  # one of the two also moves TLS 1.3 RX
    senv = gnutls_env(shim_config, log, rx13)
    target = workdir / f"nbd-target-{op}-{shimmed}.img"
    if op == "write":
        with open(target, "wb") as f:
            f.truncate(NBD_BYTES)
    srv = nbdkit(port, psk, img if op == "read" else target,
                 senv if shimmed == "server" else plain_env())
    before = tls_stat()
    argv = (["nbdcopy", nbd_uri(port, psk), str(target)] if op == "read"
            else ["nbdcopy", str(img), nbd_uri(port, psk)])
    if op == "read" and target.exists():
        target.unlink()
    r = subprocess.run(argv, env=senv if shimmed == "client" else plain_env(),
                       capture_output=True, text=True, timeout=900)
    d = delta(before, tls_stat())
    srv.p.terminate()
    srv.p.wait(timeout=30)
    assert r.returncode == 0, r.stderr
    assert sha256_file(target) == digest
    target.unlink()  # the VM's /tmp is memory
    sess = sessions_of(log)
    assert sess, log.read_text() if log.exists() else "no shim log"
    for s in sess:
        check_session(s, "1.3", rx13)
    summ = shim_summary(log.read_text())
    assert summ["sessions"] == len(sess), summ
    if KERNEL:
        n = len(sess)
        assert d.get("TlsTxSw", 0) == n, d
        assert d.get("TlsRxSw", 0) == (n if rx13 or REKEY else 0), d
        assert d.get("TlsDecryptError", 0) == 0, d
        # The bulk of the image crossed the kernel on the shimmed side.
        sender = (op == "read") == (shimmed == "server")
        moved = summ["bytes_tx"] if sender else summ["bytes_rx"]
        if sender or rx13 or REKEY:
            assert moved >= NBD_BYTES, summ
    else:
        assert summ["tx_kernel"] == 0 and "tx:kernel-has-no-tls" in \
            summ["rest"], summ
