"""NBD over TLS with X.509 certificates (test_gnutls.py covers PSK): nbdkit
--tls=require --tls-certificates=DIR serving an image, nbdcopy reading and
writing it (the client verifies the server against a test CA), each side
shimmed in turn, and qemu-img convert reading from a shimmed nbdkit.
Checksums must be equal; the shimmed side's kernel counters must show its
sessions moved. TLS 1.3 (what both sides negotiate by default): RX moves
where the kernel can rekey (REKEY), TX everywhere."""
import os
import shutil
import subprocess

import pytest

from conftest import (BIG, KERNEL, REKEY, REQUIRE_ALL, Proc, delta,
                      free_port, make_file, plain_env, sha256_file, shim_env, shim_sessions,
                      shim_summary, tls_stat, wait_port, x509_dirs)

NBD_BYTES = min(BIG // 4, 8 << 20)  # small: CI time, the VM's tmpfs
# By hand a machine without them skips; under the project's runner
# (KTLS_REQUIRE_ALL=1) their absence is a failure.
need_nbd = pytest.mark.skipif(
    not REQUIRE_ALL
    and not (shutil.which("nbdkit") and shutil.which("nbdcopy")),
    reason="nbdkit/nbdcopy not installed (scripts/install-deps)")


@pytest.fixture(scope="module")
def x509(workdir):
    """conftest.x509_dirs's server and client directories (the client's
    certificate there goes unused: nbdkit does not ask for it)."""
    srv, cli = x509_dirs(workdir, "nbd-x509")
    img = workdir / "nbd-x509.img"
    digest = make_file(img, NBD_BYTES, seed=9)
    return srv, cli, img, digest


def nbdkit(port, certdir, img, env):
    p = Proc(["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port),
              "--tls=require", f"--tls-certificates={certdir}", "file",
              str(img)], env, quiet=True)
    wait_port(port)
    return p


def check_shimmed(log, before, sender):
    d = delta(before, tls_stat())
    text = log.read_text()
    sess = shim_sessions(text)
    assert sess, text
    summ = shim_summary(text)
    for s in sess:
        assert s["engine"] == "gnutls" and s["version"] == "TLSv1.3", s
        if KERNEL:
            assert s["tx"] == "kernel", s
            assert s["rx"] == ("kernel" if REKEY
                               else "kernel-cannot-rekey-tls13"), s
    if KERNEL:
        n = len(sess)
        assert d.get("TlsTxSw", 0) == n, d
        assert d.get("TlsRxSw", 0) == (n if REKEY else 0), d
        assert d.get("TlsDecryptError", 0) == 0, d
        if sender or REKEY:
            moved = summ["bytes_tx"] if sender else summ["bytes_rx"]
            assert moved >= NBD_BYTES, summ
    else:
        assert summ["tx_kernel"] == 0, summ


@need_nbd
@pytest.mark.parametrize("shimmed", ["server", "client"])
@pytest.mark.parametrize("op", ["read", "write"])
def test_nbdcopy_x509(op, shimmed, x509, shim_config, workdir):
    srvdir, clidir, img, digest = x509
    port = free_port()
    log = workdir / f"nbd-x509-{op}-{shimmed}.shimlog"
    if log.exists():
        log.unlink()
    senv = shim_env(shim_config, KTLS_SHIM_LOG=f"file:{log}")
    target = workdir / f"nbd-x509-target-{op}-{shimmed}.img"
    if target.exists():
        target.unlink()
    if op == "write":
        with open(target, "wb") as f:
            f.truncate(NBD_BYTES)
    srv = nbdkit(port, srvdir, img if op == "read" else target,
                 senv if shimmed == "server" else plain_env())
    uri = f"nbds://127.0.0.1:{port}/?tls-certificates={clidir}"
    before = tls_stat()
    argv = (["nbdcopy", uri, str(target)] if op == "read"
            else ["nbdcopy", str(img), uri])
    r = subprocess.run(argv, env=senv if shimmed == "client" else plain_env(),
                       capture_output=True, text=True, timeout=600)
    srv.p.terminate()
    srv.p.wait(timeout=30)
    assert r.returncode == 0, r.stderr
    assert sha256_file(target) == digest
    target.unlink()
    check_shimmed(log, before, (op == "read") == (shimmed == "server"))


@need_nbd
def test_qemu_img_reads_from_shimmed_nbdkit(x509, shim_config, workdir):
    """qemu-img (QEMU's own TLS channel, unshimmed: test_qemu.py shims it)
    converts the image served by a shimmed nbdkit."""
    if not shutil.which("qemu-img"):
        assert not REQUIRE_ALL, "qemu-img missing (scripts/install-deps)"
        pytest.skip("qemu-img not installed")
    srvdir, clidir, img, digest = x509
    port = free_port()
    log = workdir / "nbd-x509-qemu.shimlog"
    if log.exists():
        log.unlink()
    srv = nbdkit(port, srvdir, img,
                 shim_env(shim_config, KTLS_SHIM_LOG=f"file:{log}"))
    out = workdir / "nbd-x509-qemu.raw"
    before = tls_stat()
    r = subprocess.run(
        ["qemu-img", "convert", "-O", "raw", "--object",
         f"tls-creds-x509,id=tls0,endpoint=client,dir={clidir}",
         "--image-opts",
         f"driver=nbd,host=127.0.0.1,port={port},tls-creds=tls0",
         str(out)], env=plain_env(), capture_output=True, text=True,
        timeout=600)
    srv.p.terminate()
    srv.p.wait(timeout=30)
    assert r.returncode == 0, r.stderr
    assert sha256_file(out) == digest
    out.unlink()
    check_shimmed(log, before, True)
