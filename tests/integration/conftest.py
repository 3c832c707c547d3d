"""Shared fixtures for the integration suites.

Every test runs real programs: one side with libktls-shim.so preloaded, the
peer without it (a real, unshimmed OpenSSL or GnuTLS). KTLS_EXPECT says what
the kernel under us must do: "kernel" (kTLS present: sessions must move) or
"fallback" (no kTLS: sessions must stay in userspace, bytes intact). The VM
runner sets "kernel", so a VM that lost kTLS fails instead of skipping.
"""
import hashlib
import os
import re
import select
import socket
import subprocess
import tempfile
import time

import pytest

BUILD = os.environ.get("KTLS_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
SHIM = os.path.join(BUILD, "shim", "libktls-shim.so")
XFER = os.path.join(BUILD, "tests", "tls_xfer")
# Its GnuTLS twin (tests/tools/gnutls_xfer.c): same stream, same report.
GXFER = os.path.join(BUILD, "tests", "gnutls_xfer")
PY = "/usr/bin/python3"  # Debian's, linked against the system libssl
HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20


def kernel_has_ktls():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    s, _ = srv.accept()
    try:
        c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
        return True
    except OSError:
        return False
    finally:
        for x in (c, s, srv):
            x.close()


EXPECT = os.environ.get("KTLS_EXPECT") or (
    "kernel" if kernel_has_ktls() else "fallback")
assert EXPECT in ("kernel", "fallback"), EXPECT
KERNEL = EXPECT == "kernel"


def kernel_rekeys():
    """TLS 1.3 rekey (6.14+) came with its counters."""
    try:
        with open("/proc/net/tls_stat") as f:
            return "TlsRxRekeyOk" in f.read()
    except FileNotFoundError:
        return False


# Whether the shim's engine moves TLS 1.3 RX by default here: only where a
# KeyUpdate from the peer can be followed (tls13_rx_without_rekey = no).
REKEY = KERNEL and kernel_rekeys()


def rx_moves(tls):
    """Whether a default-config session's RX ends in the kernel here."""
    return KERNEL and (tls == "1.2" or REKEY)


def rx_state(tls):
    """What the shim reports for RX of a default-config session here."""
    if not KERNEL:
        return "kernel-has-no-tls"
    return "kernel" if rx_moves(tls) else "kernel-cannot-rekey-tls13"

# Bytes each way in the big transfers; the VM (software-emulated CPU) is slow.
BIG = int(os.environ.get("KTLS_TEST_BYTES", str(64 * MiB)))


# Figures a test wants in CI's log (load, soak), printed after the results.
FIGURES = []


def pytest_terminal_summary(terminalreporter):
    for line in FIGURES:
        terminalreporter.write_line(line)


def pytest_report_header(config):
    return (f"ktls-shim integration: expect={EXPECT} kernel={os.uname().release}"
            f" bytes={BIG} shim={SHIM}")


def tls_stat():
    try:
        with open("/proc/net/tls_stat") as f:
            return {k: int(v) for k, v in (l.split() for l in f if l.strip())}
    except FileNotFoundError:
        return {}


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("ktls")


@pytest.fixture(scope="session")
def certs(workdir):
    """An ECDSA P-256 and an RSA-2048 self-signed certificate."""
    out = {}
    for kind, args in (("ec", ["-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-256"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        cert, key = workdir / f"{kind}.crt", workdir / f"{kind}.key"
        subprocess.run(["openssl", "req", "-x509", *args, "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=localhost"], check=True,
                       capture_output=True)
        out[kind] = (str(cert), str(key))
    return out


@pytest.fixture(scope="session")
def shim_config(workdir):
    """An empty config file, so a stray /etc/ktls-preload.conf cannot
    change what the tests see."""
    p = workdir / "empty.conf"
    p.write_text("# tests: defaults only\n")
    return str(p)


# With -Dsanitizers=true the shim is built with ASan/UBSan; the programs it
# is preloaded into are not, so the ASan runtime must be preloaded first.
# Their own leaks are not ours to judge: leak detection off, UB still fatal.
ASAN_RT = os.environ.get("KTLS_ASAN_RUNTIME")
# Sanitizer reports go to files here, and _sanitizer_reports fails the test
# that produced one: a report from a program whose exit status the test does
# not check (a peer, a killed server, an expected failure) must not pass.
SAN_DIR = tempfile.mkdtemp(prefix="ktls-san.") if ASAN_RT else None


def san_options(leaks=False):
    """leaks=True for programs whose every allocation is ours to judge
    (tls_load in the soak)."""
    return dict(ASAN_OPTIONS=f"detect_leaks={int(leaks)}:abort_on_error=1:"
                             f"log_path={SAN_DIR}/asan",
                UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:"
                              f"log_path={SAN_DIR}/ubsan")


@pytest.fixture(autouse=True)
def _sanitizer_reports():
    yield
    if not SAN_DIR:
        return
    reports = []
    for name in sorted(os.listdir(SAN_DIR)):
        path = os.path.join(SAN_DIR, name)
        with open(path, errors="replace") as f:
            text = f.read()
        os.unlink(path)
        if text.strip():
            reports.append(f"== {name}\n{text}")
    if reports:
        pytest.fail("sanitizer reports:\n" + "\n".join(reports)[-30000:],
                    pytrace=False)


def shim_env(config, **extra):
    env = dict(os.environ)
    env.update(LD_PRELOAD=f"{ASAN_RT}:{SHIM}" if ASAN_RT else SHIM,
               KTLS_SHIM_LOG_LEVEL="debug", KTLS_SHIM_CONFIG=config)
    if ASAN_RT:
        env.update(san_options())
    env.update(extra)
    return env


NO_KTLS = os.path.join(BUILD, "tests", "libno-ktls-bio.so")


def no_ktls_env(config, **extra):
    """The shim in front of a libssl that acts as one built without kTLS
    (tests/tools/no_ktls_bio.c): the shim's own record layer's case."""
    env = shim_env(config, **extra)
    env["LD_PRELOAD"] += ":" + NO_KTLS
    return env


# LD_PRELOAD for no_ktls_env's case, where a test takes an env dict.
NO_KTLS_PRELOAD = (f"{ASAN_RT}:{SHIM}" if ASAN_RT else SHIM) + ":" + NO_KTLS


def own_moves(tls):
    """Whether the shim's record layer (libssl without kTLS) moves a
    session of this version: both directions or neither, so TLS 1.3 only
    where the kernel can follow a KeyUpdate on RX."""
    return KERNEL and (tls == "1.2" or REKEY)


def plain_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("KTLS_SHIM") or k == "LD_PRELOAD":
            del env[k]
    return env


SESSION_RE = re.compile(
    r"session fd=(\d+) (\S+) (\S+) tx=(\S+) rx=(\S+) engine=(\S+)")
SUMMARY_RE = re.compile(r"summary \S+ sessions=(\d+) tx_kernel=(\d+) "
                        r"rx_kernel=(\d+) kernel_bytes_tx=(\d+) "
                        r"kernel_bytes_rx=(\d+)(.*)")


def shim_sessions(stderr):
    return [dict(zip(("fd", "version", "cipher", "tx", "rx", "engine"), m))
            for m in SESSION_RE.findall(stderr)]


def shim_summary(stderr):
    m = SUMMARY_RE.search(stderr)
    assert m, f"no shim summary line in:\n{stderr[-2000:]}"
    keys = ("sessions", "tx_kernel", "rx_kernel", "bytes_tx", "bytes_rx")
    d = {k: int(v) for k, v in zip(keys, m.groups()[:5])}
    d["rest"] = m.group(6)
    return d


CONN_RE = re.compile(r"^conn=.*$", re.M)


def parse_conns(stdout):
    return [dict(kv.split("=", 1) for kv in line.split())
            for line in CONN_RE.findall(stdout)]


def one_conn_intact(cli_out, srv_out, nbytes, back=None):
    """The single connection of two ends moved nbytes from the first to the
    second and back (default nbytes) the other way, and both ends agree on
    every byte; returns the two conn lines, first end's first."""
    back = nbytes if back is None else back
    (c,), (s,) = parse_conns(cli_out), parse_conns(srv_out)
    assert int(c["sent"]) == int(s["recv"]) == nbytes
    assert int(s["sent"]) == int(c["recv"]) == back
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    return c, s


_procs = []


@pytest.fixture(autouse=True)
def _reap_children():
    """A failed test must not leave its servers running (and holding
    ports, or the VM's CPU) for the tests after it."""
    yield
    while _procs:
        p = _procs.pop()
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait()


class Proc:
    """A child whose stdout/stderr are collected to strings."""

    def __init__(self, argv, env, stdin=None, cwd=None, quiet=False,
                 reap=True):
        """quiet: discard the output of chatty servers, whose writes would
        otherwise block on a full pipe nobody reads until the end.
        reap=False: a fixture of wider scope owns its end."""
        self.argv = argv
        out = subprocess.DEVNULL if quiet else subprocess.PIPE
        self.p = subprocess.Popen(argv, env=env, stdout=out, stderr=out,
                                  stdin=stdin, cwd=cwd, text=True)
        if reap:
            _procs.append(self)
        self.out = ""
        self.err = ""

    def _read_until(self, pred, what, timeout):
        """Raw reads (no Python buffering that select cannot see) until
        pred(text so far) holds; what was read stays in self.out."""
        fd = self.p.stdout.fileno()
        end = time.time() + timeout
        while not pred(self.out):
            r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
            chunk = os.read(fd, 65536) if r else b""
            if not chunk:
                raise AssertionError(f"{self.argv[0]}: never printed {what}")
            self.out += chunk.decode(errors="replace")

    def read_port(self, timeout=60):
        """tls_xfer servers print 'PORT n' first."""
        self._read_until(lambda t: re.search(r"^PORT \d+\n", t, re.M),
                         "PORT", timeout)
        return int(re.search(r"^PORT (\d+)", self.out, re.M).group(1))

    def wait_line(self, text, timeout=60):
        """Readiness from a line such as s_server's ACCEPT, without a probe
        connection that would use up -naccept."""
        self._read_until(lambda t: text in t, repr(text), timeout)

    def wait(self, timeout=900):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            raise AssertionError(f"{self.argv} timed out; stderr:\n{err}")
        self.out += out or ""
        self.err += err or ""
        return self.p.returncode


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def make_file(path, size, seed=1):
    """Deterministic, incompressible-looking content."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    rnd = bytearray(block)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            n = min(left, len(rnd))
            rnd[0:8] = i.to_bytes(8, "little")
            f.write(rnd[:n])
            left -= n
            i += 1
    return sha256_file(path)
