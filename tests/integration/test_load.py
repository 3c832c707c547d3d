"""Load: 1,000 concurrent connections through one shimmed process
(tests/tools/tls_load.c), with a thread per connection and with one epoll
loop, non-blocking sockets, TLS 1.2 (AES-128/256-GCM, ChaCha20-Poly1305,
AES-128-CCM) and TLS 1.3 (AES-128/256-GCM, ChaCha20-Poly1305) in turn, each
connection moving its own PRNG-drawn size both ways. Every connection waits
after its handshake until all have done theirs, so all are open and moving
at once. The peer is the same tool, unshimmed; both ends hash what they
sent and received and the test matches them by the client's port.

CI sizes (the VM's CPU is emulated, and the handshakes dominate): 16 to 64
KiB each way per connection. The full load, 1 to 16 MiB each way per
connection (about 17 GiB in all), is a long mode:
  KTLS_LOAD_MIN=1048576 KTLS_LOAD_MAX=16777216
Also KTLS_LOAD_CONNS (default 1000) and KTLS_LOAD_MODES (default
"threads,epoll"; the VM suites run one mode per kernel).
"""
import os
from collections import Counter

import pytest

from conftest import (BUILD, FIGURES, KERNEL, REKEY, Proc, delta, parse_conns,
                      plain_env, shim_env, shim_sessions, shim_summary,
                      tls_stat)

LOAD = os.path.join(BUILD, "tests", "tls_load")
CONNS = int(os.environ.get("KTLS_LOAD_CONNS", "1000"))
MIN = int(os.environ.get("KTLS_LOAD_MIN", str(16 << 10)))
MAX = int(os.environ.get("KTLS_LOAD_MAX", str(64 << 10)))
MODES = os.environ.get("KTLS_LOAD_MODES", "threads,epoll").split(",")
SUITES = {("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
          ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"),
          ("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305"),
          ("TLSv1.2", "ECDHE-ECDSA-AES128-CCM"),
          ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
          ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
          ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")}


def total(out):
    (line,) = [l for l in out.splitlines() if l.startswith("total ")]
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def by_port(out):
    """Lines keyed by the client's port and, since a soak can get the same
    port again once a connection is gone, the n-th use of that port (each
    end ends a connection before the next can use its port)."""
    seen, lines = Counter(), {}
    for c in parse_conns(out):
        lines[c["port"], seen[c["port"]]] = c
        seen[c["port"]] += 1
    return lines


def matched(cli_out, srv_out):
    """Both ends' lines, paired by the client's port; every byte agreed."""
    cs, ss = by_port(cli_out), by_port(srv_out)
    assert cs.keys() == ss.keys()
    for port, c in cs.items():
        s = ss[port]
        assert (c["version"], c["cipher"]) == (s["version"], s["cipher"])
        assert c["sent"] == s["recv"] and c["sent_sha256"] == s["recv_sha256"]
        assert s["sent"] == c["recv"] and s["sent_sha256"] == c["recv_sha256"]
    return list(cs.values())


def where():
    vm = os.environ.get("KTLS_VM_KERNEL")
    return f"emulated VM, {vm}" if vm else f"host {os.uname().release}"


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_connections(mode, certs, shim_config):
    cert, key = certs["ec"]
    sizes = ["--min", str(MIN), "--max", str(MAX)]
    before = tls_stat()
    srv = Proc([LOAD, "--role", "server", "--cert", cert, "--key", key,
                "--conns", str(CONNS), "--seed", "2",
                "--mode", "epoll" if mode == "threads" else "threads",
                *sizes], plain_env())
    port = srv.read_port()
    cli = Proc([LOAD, "--role", "client", "--port", str(port), "--conns",
                str(CONNS), "--mode", mode, "--seed", "3", *sizes],
               shim_env(shim_config))
    assert cli.wait(timeout=1800) == 0, cli.err[-3000:]
    assert srv.wait(timeout=300) == 0, srv.err[-3000:]
    d = delta(before, tls_stat())
    conns = matched(cli.out, srv.out)
    assert len(conns) == CONNS
    assert all(MIN <= int(c[k]) <= MAX for c in conns for k in ("sent", "recv"))
    suites = Counter((c["version"], c["cipher"]) for c in conns)
    assert set(suites) == SUITES, suites
    n13 = sum(n for (v, _), n in suites.items() if v == "TLSv1.3")
    n12 = CONNS - n13
    t, st = total(cli.out), total(srv.out)
    # All open at once, none failed, every fd given back.
    assert t["conns"] == str(CONNS) and t["failed"] == "0"
    assert t["peak"] == str(CONNS) and st["peak"] == str(CONNS)
    assert t["fds_end"] == t["fds_start"] and t["fds_new"] == "-", t
    sent, recv = int(t["sent"]), int(t["recv"])
    assert sent == sum(int(c["sent"]) for c in conns) == int(st["recv"])

    summ = shim_summary(cli.err)
    assert summ["sessions"] == CONNS
    assert len(shim_sessions(cli.err)) == CONNS
    rx_kernel = n12 + (n13 if REKEY else 0)
    if KERNEL:
        assert all(c["kernel_tx"] == "1" for c in conns)
        assert sum(c["kernel_rx"] == "1" for c in conns) == rx_kernel
        assert summ["tx_kernel"] == CONNS and summ["rx_kernel"] == rx_kernel
        assert summ["bytes_tx"] == sent
        assert d["TlsTxSw"] == CONNS and d["TlsRxSw"] == rx_kernel, d
        assert d["TlsCurrTxSw"] == d["TlsCurrRxSw"] == 0, d
    else:
        assert summ["tx_kernel"] == 0
        assert not any(d.values()), d
    FIGURES.append(
        f"load ({where()}): {mode}, {CONNS} concurrent connections "
        f"({n12} TLS 1.2, {n13} TLS 1.3, {len(suites)} suites), "
        f"{MIN}-{MAX} bytes each way each, {sent + recv} bytes in "
        f"{t['seconds']} s; kernel TX {summ['tx_kernel']}, RX "
        f"{summ['rx_kernel']} sessions (tls_stat TlsTxSw +{d.get('TlsTxSw', 0)}"
        f", TlsRxSw +{d.get('TlsRxSw', 0)})")
