"""Session resumption under the shim: nothing lost by moving sessions.

A shimmed Python client (pyssl_resume.py) offers its first session on later
connections to an unshimmed Python server, with each engine setting; with
TLS 1.3 the session comes from NewSessionTickets that arrive after the
handshake, through kernel RX wherever the shim moved it."""
import os

import pytest

from conftest import (HERE, KERNEL, OSSL_REKEYS, PY, REKEY, Proc, plain_env,
                      shim_env, shim_sessions)


# auto-without-rekey differs from auto only where the kernel cannot rekey;
# engine = shim needs OpenSSL 3.0/3.1 (test_matrix.py checks it says so).
@pytest.mark.parametrize("engine", ["auto"] + ([] if OSSL_REKEYS else ["shim"]) + (
    ["auto-without-rekey"] if KERNEL and not REKEY else []))
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_client_resumes_sessions(tls, engine, certs, shim_config):
    """Resumption is not lost: a shimmed Python client offers its first
    session on later connections to an unshimmed Python server. With TLS
    1.3 the tickets arrive after the handshake, through kernel RX wherever
    the engine moved it."""
    n = 3
    extra = ({"KTLS_SHIM_TLS13_RX_WITHOUT_REKEY": "yes"}
             if engine == "auto-without-rekey" else
             {"KTLS_SHIM_ENGINE": engine})
    script = os.path.join(HERE, "pyssl_resume.py")
    srv = Proc([PY, script, "server", "--cert", certs["ec"][0], "--key",
                certs["ec"][1], "--tls", tls, "--conns", str(n)], plain_env())
    port = srv.read_port()
    cli = Proc([PY, script, "client", "--port", str(port), "--tls", tls,
                "--conns", str(n)], shim_env(shim_config, **extra))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    lines = cli.out.split()
    assert lines.count("ok=1") == n, cli.out
    assert [f"reused={int(i > 0)}" for i in range(n)] == [
        w for w in lines if w.startswith("reused=")], cli.out
    sess = shim_sessions(cli.err)
    assert len(sess) == n, cli.err
    if KERNEL:
        rx13 = REKEY or engine == "auto-without-rekey"
        want_rx = "kernel" if tls == "1.2" or rx13 else \
            "kernel-cannot-rekey-tls13"
        assert all(x["tx"] == "kernel" and x["rx"] == want_rx
                   for x in sess), cli.err
