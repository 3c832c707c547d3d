"""The shim under valgrind memcheck, preloaded into real programs that move
their sessions into the kernel: tls_xfer with each engine (OpenSSL's own
kTLS, the shim's key installer, the shim's record layer for a libssl
without kTLS), sendfile and KeyUpdates, and gnutls_xfer (the GnuTLS
engine). The peer is an unshimmed tls_xfer; bytes are hashed at both ends
and the session must have moved where the kernel can take it.

Memcheck runs the whole program: any invalid access or use of
uninitialised memory anywhere in it fails the test (including what the
shim hands the kernel: setsockopt's crypto_info, sendmsg's cmsg), and so
does a definite or indirect leak with a frame in the shim. Leaks of the
programs themselves are not ours to judge.

Under QEMU/TCG this is two emulators deep: transfers are small
(KTLS_VG_BYTES, 1 MiB by default, 256 KiB in the VM suites) and the
suites run it on sid only (tests/meson.build)."""
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from conftest import (GXFER, KERNEL, NO_KTLS, OSSL_REKEYS, REKEY, SHIM, XFER,
                      MiB, Proc, delta, one_conn_intact, own_moves, plain_env, shim_env,
                      shim_sessions, shim_summary, tls_stat)

VALGRIND = shutil.which("valgrind")
SIZE = int(os.environ.get("KTLS_VG_BYTES", str(MiB)))

pytestmark = pytest.mark.skipif(
    os.environ.get("KTLS_ASAN_RUNTIME") is not None,
    reason="the ASan build cannot run under valgrind (its own suites)")


@pytest.fixture
def vg(tmp_path):
    """The valgrind command line, and after the test the check of what it
    wrote (one XML file per process)."""
    assert VALGRIND, "valgrind is not installed (scripts/install-deps)"
    out = tmp_path / "vg"
    out.mkdir()
    argv = [VALGRIND, "-q", "--xml=yes", f"--xml-file={out}/vg.%p.xml",
            "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--read-inline-info=no", "--num-callers=30"]
    yield argv
    findings = []
    files = sorted(out.iterdir())
    assert files, "valgrind wrote no report: did it run?"
    for f in files:
        findings += vg_findings(f)
    assert not findings, "\n\n".join(findings)


def vg_findings(path):
    """The reports in one memcheck XML file that fail a test."""
    root = ET.parse(path).getroot()
    status = [s.findtext("state") for s in root.iter("status")]
    assert "FINISHED" in status, f"{path}: memcheck did not finish"
    found = []
    for err in root.iter("error"):
        kind = err.findtext("kind")
        frames = [(f.findtext("obj") or "", f.findtext("fn") or "?",
                   f.findtext("file") or "", f.findtext("line") or "")
                  for f in err.iter("frame")]
        if kind.startswith("Leak_"):
            if not any("libktls-shim" in obj for obj, *_ in frames):
                continue
        what = (err.findtext("what") or
                err.findtext("xwhat/text") or kind)
        stack = "\n".join(f"    {fn} ({os.path.basename(obj)}"
                          f"{' ' + file + ':' + line if file else ''})"
                          for obj, fn, file, line in frames)
        found.append(f"{path.name}: {kind}: {what}\n{stack}")
    return found


ENGINES = {
    "auto": lambda cfg: shim_env(cfg),
    "shim": lambda cfg: shim_env(cfg, KTLS_SHIM_ENGINE="shim"),
    "no-ktls": lambda cfg: shim_env(cfg, LD_PRELOAD=f"{SHIM}:{NO_KTLS}"),
    "gnutls": lambda cfg: shim_env(cfg),
}


def expect(engine, tls):
    """(tx, rx) the shim must report for tls_xfer's session."""
    if not KERNEL:
        return "kernel-has-no-tls", "kernel-has-no-tls"
    if engine == "no-ktls":
        return ("kernel", "kernel") if own_moves(tls) else (None, None)
    return "kernel", ("kernel" if tls == "1.2" or REKEY else None)


# (shimmed role, TLS version, engine, extra options of that side): each
# engine once, with KeyUpdates where it rekeys (15-45 s each in the VM).
# TLS 1.2's key block: the no-ktls server (the shim's engine installs both
# directions there). The record layer's TLS 1.3 client with KeyUpdates
# (38 s) went for CI's time: its post-handshake steps are
# session/keyupdate.c's, which the auto and GnuTLS cases run, and its
# reads and writes are the 1.2 server's.
CASES = [
    ("client", "1.3", "auto", ["--key-updates", "2"]),
    ("server", "1.3", "shim", ["--key-updates", "2"]),
    ("server", "1.2", "no-ktls", ["--sendfile", "@"]),
    # The GnuTLS engine: gnutls_xfer, tls_xfer's GnuTLS twin, over its own
    # push/pull (qemu's shape): the transport's proof (session/xwatch.c,
    # the watching libc hooks) under memcheck too.
    ("client", "1.3", "gnutls", ["--key-updates", "2", "--transport", "vec"]),
]
# The shim's engine and record layer need OpenSSL 3.0/3.1.
if OSSL_REKEYS:
    CASES = [c for c in CASES if c[2] not in ("shim", "no-ktls")]


@pytest.mark.parametrize("role,tls,engine,extra", CASES,
                         ids=[f"{r}-tls{t}-{e}" for r, t, e, _ in CASES])
def test_transfer_under_memcheck(role, tls, engine, extra, vg, certs,
                                 shim_config, tmp_path):
    if "@" in extra:
        payload = tmp_path / "payload.bin"
        with open(payload, "wb") as f:
            f.write(os.urandom(SIZE))
        extra = [str(payload) if a == "@" else a for a in extra]
    env = ENGINES[engine](shim_config)
    prog = GXFER if engine == "gnutls" else XFER
    server_opts = ["--cert", certs["ec"][0], "--key", certs["ec"][1]]
    before = tls_stat()
    if role == "server":
        me = Proc(vg + [prog, "--role", "server", "--port", "0", "--tls",
                        tls, "--send", str(SIZE), *server_opts, *extra], env)
        port = me.read_port(timeout=300)
        peer = Proc([XFER, "--role", "client", "--port", str(port), "--tls",
                     tls, "--send", str(SIZE // 2)], plain_env())
    else:
        peer = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                     "--send", str(SIZE // 2), *server_opts], plain_env())
        port = peer.read_port()
        me = Proc(vg + [prog, "--role", "client", "--port", str(port),
                        "--tls", tls, "--send", str(SIZE), *extra], env)
    assert me.wait(timeout=1200) == 0, me.err
    assert peer.wait(timeout=120) == 0, peer.err
    m, _ = one_conn_intact(me.out, peer.out, SIZE, back=SIZE // 2)
    (sess,) = shim_sessions(me.err)
    assert sess["engine"].startswith(
        {"auto": "openssl", "shim": "shim", "no-ktls": "shim",
         "gnutls": "gnutls"}[engine]), sess
    want_tx, want_rx = expect(engine, tls)
    if want_tx:
        assert sess["tx"] == want_tx, me.err
    if want_rx:
        assert sess["rx"] == want_rx, me.err
    assert m["kernel_tx"] == str(int(sess["tx"] == "kernel"))
    assert m["kernel_rx"] == str(int(sess["rx"] == "kernel"))
    summ = shim_summary(me.err)
    if sess["tx"] == "kernel":
        assert summ["bytes_tx"] == SIZE, summ
    if sess["rx"] == "kernel":
        assert summ["bytes_rx"] == SIZE // 2, summ
    if KERNEL:
        d = delta(before, tls_stat())
        assert d.get("TlsTxSw", 0) == (sess["tx"] == "kernel"), d
        assert d.get("TlsRxSw", 0) == (sess["rx"] == "kernel"), d
        assert d.get("TlsDecryptError", 0) == 0, d
