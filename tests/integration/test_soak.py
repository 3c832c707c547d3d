"""Soak: one shimmed process keeps opening and closing connections (16 open
at a time, so the same fds come back again and again) against an unshimmed
server for a while, every connection sha256-checked at both ends, and ends
with nothing left behind: its /proc/self/fd count back where it started, no
kernel TLS socket still open (TlsCurrTxSw/RxSw), no live row of its pid in
the eBPF maps (where they load: the VM), and, in a sanitizer build, a clean
LeakSanitizer and ASan/UBSan run of the whole process.

CI runs it for KTLS_SOAK_SECONDS (default 10; the sanitizer VM suite 15).
Long mode, e.g. ten minutes:  KTLS_SOAK_SECONDS=600
"""
import os
import subprocess
import threading

import pytest

from conftest import (BPF_DISABLED, ASAN_RT, BUILD, FIGURES, KERNEL, REQUIRE_ALL, Proc,
                      delta, plain_env, san_options, shim_env, shim_summary,
                      tls_stat)
from test_load import LOAD, matched, total, where

SECONDS = float(os.environ.get("KTLS_SOAK_SECONDS", "10"))
PARALLEL = 16
STATS = os.path.join(BUILD, "tools", "ktls-shim-stats")


def ebpf(*args):
    return subprocess.run([STATS, *args], capture_output=True, text=True,
                          env=plain_env())


@pytest.fixture
def ebpf_loaded():
    """The accounting programs, where this kernel has kTLS; under the
    project's runner (KTLS_REQUIRE_ALL=1, built with -Dbpf=enabled) a
    missing tool fails instead of running without them; a build made
    without eBPF on purpose (-Dbpf=disabled) runs without them."""
    if not KERNEL or BPF_DISABLED:
        yield False
        return
    if not os.path.exists(STATS) and not REQUIRE_ALL:
        yield False
        return
    ebpf("unload")
    r = ebpf("load")
    assert r.returncode == 0, r.stderr
    yield True
    assert ebpf("unload").returncode == 0


def drain(proc):
    """Collects a server's stdout while the soak runs: its per-connection
    lines would otherwise fill the pipe and stop it serving."""
    def run():
        while chunk := os.read(proc.p.stdout.fileno(), 65536):
            proc.out += chunk.decode(errors="replace")
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def live_rows(pid):
    """Rows of pid's sockets that the maps still count as open."""
    from test_ebpf import dump
    return {m: [k for k, v in dump(m).items()
                if v["pid"] == pid and not v["closed"]]
            for m in ("sockets", "owners")}


# Under the sanitizers also with engine = shim: its install path is where
# OpenSSL's write buffer would leak if the engine did not have it released
# (16 KiB a session; LeakSanitizer fails the run).
@pytest.mark.parametrize("engine", ["auto", "shim"] if ASAN_RT else ["auto"])
def test_soak_open_close(engine, certs, shim_config, ebpf_loaded):
    cert, key = certs["ec"]
    sizes = ["--min", "1024", "--max", str(64 << 10)]
    before = tls_stat()
    srv = Proc([LOAD, "--role", "server", "--cert", cert, "--key", key,
                "--conns", "0", "--seed", "4", *sizes], plain_env(),
               stdin=subprocess.PIPE)
    port = srv.read_port()
    reader = drain(srv)
    env = shim_env(shim_config, KTLS_SHIM_LOG_LEVEL="info",
                   KTLS_SHIM_ENGINE=engine)
    if ASAN_RT:
        env.update(san_options(leaks=True))
    cli = Proc([LOAD, "--role", "client", "--port", str(port), "--duration",
                str(SECONDS), "--parallel", str(PARALLEL), "--seed", "5",
                *sizes], env)
    assert cli.wait(timeout=SECONDS + 900) == 0, cli.err[-3000:]
    srv.p.stdin.close()  # the server's cue to finish
    srv.p.stdin = None
    reader.join(timeout=300)
    srv.p.stdout = None  # read to its end by drain()
    assert srv.wait(timeout=300) == 0, srv.err[-3000:]
    d = delta(before, tls_stat())
    conns = matched(cli.out, srv.out)
    t = total(cli.out)
    n = int(t["conns"])
    assert t["failed"] == "0" and len(conns) == n
    # Many more connections than fds: the same fds served again and again.
    assert n >= 4 * PARALLEL, t
    assert int(t["fds_distinct"]) <= PARALLEL + 4, t
    # The one fd it may keep: the shim's handle on the pinned eBPF owners
    # map, opened once at the first session it registers there.
    new = [] if t["fds_new"] == "-" else t["fds_new"].split(",")
    assert new == (["anon_inode:bpf-map"] if ebpf_loaded else []), t
    assert int(t["fds_end"]) == int(t["fds_start"]) + len(new), t
    summ = shim_summary(cli.err)
    assert summ["sessions"] == n
    if KERNEL:
        assert summ["tx_kernel"] == n and d["TlsTxSw"] == n, (summ, d)
        assert d["TlsCurrTxSw"] == d["TlsCurrRxSw"] == 0, d
    if ebpf_loaded:
        assert live_rows(cli.p.pid) == {"sockets": [], "owners": []}
    FIGURES.append(
        f"soak ({where()}, engine={engine}): {n} connections in {t['seconds']} s, "
        f"{PARALLEL} at a time on {t['fds_distinct']} distinct fds, "
        f"{int(t['sent']) + int(t['recv'])} bytes; fds {t['fds_start']} -> "
        f"{t['fds_end']} (new: {t['fds_new']}); kernel TX "
        f"{summ['tx_kernel']} sessions"
        + (", LeakSanitizer on" if ASAN_RT else ""))
