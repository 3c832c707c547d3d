"""OpenSSL sessions over the program's own BIO (issue 17): unmodified curl
(7.88 on Debian 12, 8.14 on 13), shimmed, downloading a file and then
uploading one (PUT) over the same kept-alive connection, against an
unshimmed CPython HTTPS peer (pyssl_httpd.py) that hashes what it gets.

curl hands OpenSSL its own BIO (connection filters). The shim proves it
during the handshake (every record went, within the call and unchanged,
to and from one TCP socket, nothing read ahead, TCP's count agreeing) and
then, with libssl 3.0/3.1, installs both directions with its own engine on
that socket and serves the session with its own record layer (the one for
a libssl without kTLS), bypassing curl's BIO from then on: session line
engine=shim,record-layer:shim transport=own. TLS 1.3 only where the kernel
can follow a KeyUpdate (both directions or neither: on 6.1 it stays,
kernel-cannot-rekey-tls13). With libssl 3.2+ the proven session stays in
userspace (own-bio-needs-openssl-3.0), and custom_transports = no turns it
all off. Every case: sha256 at both ends both ways, the shim's session
line and summary, /proc/net/tls_stat deltas where the kernel has kTLS."""
import os
import subprocess

import pytest

from conftest import (ASAN_RT, BIG, HERE, KERNEL, OSSL_REKEYS, PY, REKEY,
                      MiB, Proc, delta, make_file, own_moves, plain_env,
                      sha256_file, shim_env, shim_summary, tls_stat)
from test_custom_transport import sessions

# Each way: the VM's CPU is emulated, and curl runs twice per TLS version.
N = min(BIG // 4, 4 * MiB)

pytestmark = pytest.mark.skipif(
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


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_curl_own_bio_moves(tls, certs, shim_config, workdir, files):
    r, d = run(certs, files, workdir, tls, shim_env(shim_config))
    s = one_session(r.stderr)
    summ = shim_summary(r.stderr)
    assert s["version"] == f"TLSv{tls}", s
    assert summ["sessions"] == 1, summ
    if own_moves(tls):
        assert s["tx"] == s["rx"] == "kernel", s
        assert s["engine"] == "shim,record-layer:shim", s
        assert summ["tx_kernel"] == summ["rx_kernel"] == 1, summ
        # What curl read and wrote went through the kernel: the file
        # each way and some HTTP around it.
        assert N <= summ["bytes_rx"] < N + 4096, summ
        assert N <= summ["bytes_tx"] < N + 4096, summ
        # One socket, both directions in the kernel's software kTLS.
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        if OSSL_REKEYS:
            why = ("own-bio-needs-openssl-3.0",) * 2
        elif not KERNEL:
            why = ("kernel-has-no-tls",) * 2
        else:  # TLS 1.3 on a kernel that cannot rekey: both or neither
            assert tls == "1.3" and not REKEY
            why = ("other-direction-stays", "kernel-cannot-rekey-tls13")
        assert (s["tx"], s["rx"]) == why, s
        assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
        assert not d.get("TlsTxSw") and not d.get("TlsRxSw"), d


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
