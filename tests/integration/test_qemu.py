"""qemu's own TLS under the shim (issue 17): qemu-img, qemu-nbd and
qemu-system-x86_64 run GnuTLS over their own push/pull functions
(QIOChannel), which the shim moves only once it has watched them carry
every handshake byte to and from one TCP socket, unchanged and unbuffered
(custom_transports = yes, the default); their session lines end in
" transport=own".

Each case runs the shimmed qemu program against an unshimmed real peer,
checksums the data at both ends, and checks the shimmed side's session
lines, its summary and (where the kernel has kTLS) /proc/net/tls_stat:
- qemu-img converting from and into an unshimmed nbdkit (--tls=require),
  X.509 and PSK; once with custom_transports = no, which must keep the
  session in userspace, intact;
- a shimmed qemu-nbd serving an image an unshimmed nbdcopy reads and
  writes, X.509 and PSK;
- live migration over TLS between two qemu-system-x86_64 (TCG, stopped
  guests: RAM holds exactly what the loader device put there), the
  destination's RAM checked against the source's: both shimmed, either
  one, and both with two multifd channels.
Everything is TLS 1.3 (what GnuTLS 3.7/3.8 and qemu negotiate): TX moves,
RX where the kernel can follow a KeyUpdate (REKEY)."""
import hashlib
import json
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import (BIG, KERNEL, REKEY, REQUIRE_ALL, MiB, Proc, delta,
                      free_port, make_file, plain_env, rx_state, sha256_file,
                      shim_env, shim_summary, tls_stat,
                      wait_port, x509_dirs)

# Small: CI's time and the VM's tmpfs (4 MiB there, 8 MiB on the host).
NBD_BYTES = min(BIG, 8 * MiB)
# Guest RAM the source loads and migrates: 2,000+ full TLS records.
BLOB = 4 * MiB
BLOB_ADDR = 0x100000  # 1 MiB: above the BIOS areas, below the 32 MiB end
GUEST_MB = 32
TOOLS = ("qemu-img", "qemu-nbd", "nbdkit", "nbdcopy")


@pytest.fixture(autouse=True)
def _tools(request):
    # qemu-system only for the migrations (Debian 13's root has none).
    need = TOOLS + (("qemu-system-x86_64",)
                    if request.node.name.startswith("test_migration") else ())
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        assert not REQUIRE_ALL, f"missing {missing} (scripts/install-deps)"
        pytest.skip(f"qemu/nbd tools not installed: {' '.join(missing)}")


@pytest.fixture(scope="module")
def creds(workdir):
    """Both kinds of credentials, in the forms each program takes them:
    (x509 server dir, x509 client dir) and (PSK dir holding keys.psk,
    which qemu's tls-creds-psk reads, and its file, nbdkit's and
    libnbd's), and a random image."""
    x509 = x509_dirs(workdir, "qemu-x509")
    psk = workdir / "qemu-psk"
    psk.mkdir(exist_ok=True)
    (psk / "keys.psk").write_text("alice:" + "6b" * 32 + "\n")
    img = workdir / "qemu-src.img"
    return {"x509": x509, "psk": (psk, psk / "keys.psk"),
            "img": (img, make_file(img, NBD_BYTES, seed=17))}


def qemu_object(creds, kind, endpoint):
    """qemu's --object/-object for this end's credentials, id tls0."""
    if kind == "x509":
        srv, cli = creds["x509"]
        d = srv if endpoint == "server" else cli
        return f"tls-creds-x509,id=tls0,endpoint={endpoint},dir={d}"
    user = ",username=alice" if endpoint == "client" else ""
    return (f"tls-creds-psk,id=tls0,endpoint={endpoint},"
            f"dir={creds['psk'][0]}{user}")


def fresh(path):
    if path.exists():
        path.unlink()
    return path


def blank(path, size):
    with open(fresh(path), "wb") as f:
        f.truncate(size)
    return path


def log_env(shim_config, log, **extra):
    return shim_env(shim_config, KTLS_SHIM_LOG=f"file:{fresh(log)}", **extra)


# conftest's SESSION_RE, with fd=-1 (a session the shim never tied to a
# socket: custom_transports = no) and the line's tail (transport=own).
SESSION_LINE_RE = re.compile(
    r"session fd=(-?\d+) (\S+) (\S+) tx=(\S+) rx=(\S+) engine=(\S+)(.*)$",
    re.M)


def sessions(text):
    """Each session line as a dict, with its transport= (None where the
    line has none) and the whole line."""
    out = []
    for m in SESSION_LINE_RE.finditer(text):
        s = dict(zip(("fd", "version", "cipher", "tx", "rx", "engine"),
                     m.groups()))
        t = re.search(r" transport=(\S+)", m.group(7))
        s.update(transport=t.group(1) if t else None, line=m.group(0))
        out.append(s)
    return out


def check_moved(before, shimmed, count=None):
    """shimmed: (shim log, bytes the kernel must have sent, bytes it must
    have received) for each shimmed program, after it exited; count: the
    sessions each must have had. Every session is qemu's GnuTLS
    TLS 1.3 over its own transport, proven; TX in the kernel, RX where
    REKEY; the bulk of the data in the summary's kernel bytes; the kernel's
    counters agree (the peers are unshimmed: every kTLS socket is ours)."""
    d = delta(before, tls_stat())
    n = 0
    for log, sent, received in shimmed:
        text = log.read_text() if log.exists() else ""
        sess = sessions(text)
        assert sess, f"{log.name}: no session line:\n{text[-3000:]}"
        if count is not None:
            assert len(sess) == count, text[-3000:]
        for s in sess:
            assert s["engine"] == "gnutls" and s["version"] == "TLSv1.3", s
            assert s["transport"] == "own", s["line"]
            assert s["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls"), \
                s["line"]
            assert s["rx"] == rx_state("1.3"), s["line"]
        summ = shim_summary(text)
        assert summ["sessions"] == len(sess), summ
        n += len(sess)
        if KERNEL:
            assert summ["tx_kernel"] == len(sess), summ
            assert summ["bytes_tx"] >= sent, summ
            if REKEY:
                assert summ["bytes_rx"] >= received, summ
        else:
            assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
    if KERNEL:
        assert d.get("TlsTxSw", 0) == n, d
        assert d.get("TlsRxSw", 0) == (n if REKEY else 0), d
        assert d.get("TlsDecryptError", 0) == 0, d


def stop(proc):
    """SIGTERM (qemu-nbd and nbdkit exit cleanly on it, so the shim writes
    its summary) and reap."""
    proc.p.terminate()
    proc.p.wait(timeout=60)


# ---- qemu-img against an unshimmed nbdkit ---------------------------------

def nbdkit(port, creds, kind, img):
    tls = (f"--tls-certificates={creds['x509'][0]}" if kind == "x509"
           else f"--tls-psk={creds['psk'][1]}")
    p = Proc(["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port),
              "--tls=require", tls, "file", str(img)], plain_env(),
             quiet=True)
    wait_port(port)
    return p


@pytest.mark.parametrize("kind", ["x509", "psk"])
@pytest.mark.parametrize("op", ["read", "write"])
def test_qemu_img_with_nbdkit(op, kind, creds, shim_config, workdir):
    """Shimmed qemu-img convert reads the image nbdkit serves (op=read) or
    writes it into nbdkit's blank one (op=write)."""
    _qemu_img(op, kind, creds, shim_config, workdir)


def test_qemu_img_custom_transports_off(creds, shim_config, workdir):
    """custom_transports = no (here from the environment): qemu-img's
    session stays in userspace, with nothing in the kernel, intact."""
    log = _qemu_img("read", "x509", creds, shim_config, workdir,
                    KTLS_SHIM_CUSTOM_TRANSPORTS="no")
    text = log.read_text()
    (s,) = sessions(text)
    assert s["tx"] == s["rx"] == "custom-transports-off", s["line"]
    summ = shim_summary(text)
    assert summ["sessions"] == 1 and summ["tx_kernel"] == 0 \
        and summ["rx_kernel"] == 0 and summ["bytes_tx"] == 0, summ


def _qemu_img(op, kind, creds, shim_config, workdir, **extra):
    img, digest = creds["img"]
    name = f"qemu-img-{op}-{kind}" + ("-off" if extra else "")
    log = workdir / f"{name}.shimlog"
    env = log_env(shim_config, log, **extra)
    out = fresh(workdir / f"{name}.raw")
    port = free_port()
    srv = nbdkit(port, creds, kind,
                 img if op == "read" else blank(out, NBD_BYTES))
    nbd = f"driver=nbd,host=127.0.0.1,port={port},tls-creds=tls0"
    obj = ["--object", qemu_object(creds, kind, "client")]
    argv = (["qemu-img", "convert", "-O", "raw", *obj, "--image-opts", nbd,
             str(out)] if op == "read" else
            ["qemu-img", "convert", "-n", "-f", "raw", *obj,
             "--target-image-opts", str(img), nbd])
    before = tls_stat()
    r = subprocess.run(argv, env=env, capture_output=True, text=True,
                       timeout=300)
    stop(srv)
    assert r.returncode == 0, r.stderr + log.read_text()
    assert sha256_file(out) == digest
    out.unlink()  # the VM's /tmp is memory
    if not extra:
        check_moved(before, [(log, NBD_BYTES if op == "write" else 0,
                              NBD_BYTES if op == "read" else 0)])
    return log


# ---- a shimmed qemu-nbd, an unshimmed nbdcopy -----------------------------

@pytest.mark.parametrize("kind", ["x509", "psk"])
@pytest.mark.parametrize("op", ["read", "write"])
def test_qemu_nbd_serves_nbdcopy(op, kind, creds, shim_config, workdir):
    """Shimmed qemu-nbd serves the image (op=read: nbdcopy copies it out)
    or a blank one (op=write: nbdcopy copies the image into it), TLS
    required; over X.509 qemu-nbd verifies nbdcopy's client certificate
    (verify-peer, qemu's default)."""
    img, digest = creds["img"]
    name = f"qemu-nbd-{op}-{kind}"
    log = workdir / f"{name}.shimlog"
    out = fresh(workdir / f"{name}.raw")
    served = img if op == "read" else blank(out, NBD_BYTES)
    port = free_port()
    srv = Proc(["qemu-nbd", "--object", qemu_object(creds, kind, "server"),
                "--tls-creds", "tls0", "-f", "raw", "-b", "127.0.0.1",
                "-p", str(port), "-t", "-e", "4", str(served)],
               log_env(shim_config, log))
    wait_port(port)
    if kind == "x509":
        uri = (f"nbds://127.0.0.1:{port}/"
               f"?tls-certificates={creds['x509'][1]}")
    else:
        uri = f"nbds://alice@127.0.0.1:{port}/?tls-psk-file={creds['psk'][1]}"
    before = tls_stat()
    r = subprocess.run(["nbdcopy", uri, str(out)] if op == "read"
                       else ["nbdcopy", str(img), uri], env=plain_env(),
                       capture_output=True, text=True, timeout=300)
    srv.p.terminate()
    rc = srv.wait(timeout=60)
    assert r.returncode == 0, r.stderr + srv.err + log.read_text()
    assert rc == 0, srv.err
    assert sha256_file(out) == digest
    out.unlink()
    check_moved(before, [(log, NBD_BYTES if op == "read" else 0,
                          NBD_BYTES if op == "write" else 0)])


# ---- live migration --------------------------------------------------------

class QMP:
    """A QMP monitor over qemu's unix socket: one command at a time, its
    events passed over."""

    def __init__(self, path, proc, timeout=120):
        self.proc = proc
        end = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.settimeout(timeout)
                self.s.connect(str(path))
                break
            except OSError:
                self.s.close()
                assert proc.p.poll() is None and time.time() < end, \
                    f"{path}: no QMP; {proc.wait(timeout=5)} {proc.err}"
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        assert "QMP" in json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name,
                                 "arguments": args}).encode() + b"\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            assert line, f"{name}: QMP closed"
            r = json.loads(line)
            if "event" not in r:
                assert "error" not in r, f"{name}: {r['error']}"
                return r["return"]


def qemu_system(workdir, name, creds, endpoint, env, extra):
    """A stopped TCG guest with nothing but RAM (and the loader's blob),
    its QMP on a unix socket, credentials tls0."""
    sock = fresh(workdir / f"{name}.qmp")
    p = Proc(["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg",
              "-m", str(GUEST_MB), "-nodefaults", "-display", "none", "-S",
              "-qmp", f"unix:{sock},server=on,wait=off",
              "-object", qemu_object(creds, "x509", endpoint), *extra], env)
    return p, QMP(sock, p)


@pytest.fixture(scope="module")
def blob(workdir):
    path = workdir / "qemu-guest-ram.bin"
    return path, make_file(path, BLOB, seed=23)


def sha256_range(path, offset, size):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        while size:
            chunk = f.read(min(size, MiB))
            assert chunk, f"{path}: short"
            h.update(chunk)
            size -= len(chunk)
    return h.hexdigest()


def _finished(q, what, timeout):
    end = time.time() + timeout
    while True:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            return st
        assert time.time() < end, f"{what}: migration not done: {st}"
        time.sleep(0.1)


@pytest.mark.parametrize("case", ["both", "source", "destination",
                                  "multifd"])
def test_migration(case, blob, creds, shim_config, workdir):
    """The source (loader: the blob at 1 MiB) migrates to a destination
    started with -incoming defer and no loader (its RAM is zero until the
    stream fills it) over TLS with X.509 both ways (the destination
    verifies the source's certificate). The shimmed side(s): case; multifd:
    both, the main channel and two multifd channels each. After the
    migration completes, both guests' whole RAM must hash alike, and the
    blob's range must hash to the blob."""
    path, digest = blob
    shimmed = {"both": ("src", "dst"), "multifd": ("src", "dst"),
               "source": ("src",), "destination": ("dst",)}[case]
    logs = {side: workdir / f"migration-{case}-{side}.shimlog"
            for side in ("src", "dst")}
    env = {side: log_env(shim_config, logs[side]) if side in shimmed
           else plain_env() for side in logs}
    before = tls_stat()
    src, qs = qemu_system(workdir, f"mig-{case}-src", creds, "client",
                          env["src"], ["-device", f"loader,file={path},"
                                        f"addr={BLOB_ADDR:#x},force-raw=on"])
    dst, qd = qemu_system(workdir, f"mig-{case}-dst", creds, "server",
                          env["dst"], ["-incoming", "defer"])
    params = {"tls-creds": "tls0", "max-bandwidth": 1 << 40}
    if case == "multifd":
        params["multifd-channels"] = 2
    for q in (qs, qd):
        if case == "multifd":
            q.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "multifd", "state": True}])
        q.cmd("migrate-set-parameters", **params)
    port = free_port()
    qd.cmd("migrate-incoming", uri=f"tcp:127.0.0.1:{port}")
    qs.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
    ram = {}
    st = _finished(qs, "source", 180)
    assert st["status"] == "completed", st
    assert _finished(qd, "destination", 120)["status"] == "completed"
    for side, q in (("src", qs), ("dst", qd)):
        ram[side] = fresh(workdir / f"migration-{case}-{side}.ram")
        q.cmd("pmemsave", val=0, size=GUEST_MB * MiB,
              filename=str(ram[side]))
        q.cmd("quit")
    # Exited by themselves (the shim's summary is written at exit).
    rcs = {side: (p.wait(timeout=60), p.err)
           for side, p in (("src", src), ("dst", dst))}
    assert all(rc == 0 for rc, _ in rcs.values()), rcs
    assert sha256_range(ram["dst"], BLOB_ADDR, BLOB) == digest
    assert sha256_file(ram["dst"]) == sha256_file(ram["src"])
    for r in ram.values():
        r.unlink()
    check_moved(before, [(logs[side], BLOB if side == "src" else 0,
                          BLOB if side == "dst" else 0) for side in shimmed],
                count=3 if case == "multifd" else 1)
