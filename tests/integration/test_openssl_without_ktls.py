"""A libssl built without kTLS (OpenSSL's default; many self-built ones):
its socket BIO ignores the kTLS ctrls, so neither OpenSSL's installer nor
the shim's engine (which installs through that BIO) can move a session.
libno-ktls-bio.so, preloaded behind the shim, makes Debian's libssl act
so. The shim must say why (the engine: `openssl-without-ktls`, because
the BIO never made the setsockopt()), leave the session in userspace, and
the bytes must arrive intact, against an unshimmed peer."""
import os

import pytest

from conftest import (BUILD, KERNEL, REKEY, XFER, Proc, delta, parse_conns,
                      plain_env, shim_env, shim_sessions, tls_stat)

NO_KTLS = os.path.join(BUILD, "tests", "libno-ktls-bio.so")


@pytest.mark.parametrize("engine", ["auto", "shim"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_sessions_stay_in_userspace_intact(tls, engine, certs, shim_config):
    size = 2 << 20
    env = shim_env(shim_config, KTLS_SHIM_ENGINE=engine)
    env["LD_PRELOAD"] += ":" + NO_KTLS
    before = tls_stat()
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--send", str(size)], plain_env())
    port = srv.read_port()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", tls,
                "--send", str(size)], env)
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    assert int(c["recv"]) == int(s["sent"]) == size
    assert c["kernel_tx"] == c["kernel_rx"] == "0", c
    (sess,) = shim_sessions(cli.err)
    d = delta(before, tls_stat())
    assert d.get("TlsTxSw", 0) == d.get("TlsRxSw", 0) == 0, d
    # TLS 1.3 RX on kernels that cannot rekey is refused by policy first.
    rx13 = ("kernel-cannot-rekey-tls13",) if tls == "1.3" and not REKEY \
        else ()
    if engine == "shim":
        # The engine attaches the ULP itself, so a kernel without kTLS
        # says so first; with one, the BIO is what says no.
        why = "openssl-without-ktls" if KERNEL else "kernel-has-no-tls"
        assert sess["tx"] == why, cli.err
        assert sess["rx"] in (why,) + rx13, cli.err
    else:
        # OpenSSL's own installer fails silently; the engine, asked for
        # TLS 1.3 RX where it would move it, sees why.
        assert sess["tx"] == "openssl-declined", cli.err
        assert sess["rx"] in ("openssl-declined", "openssl-without-ktls") \
            + rx13, cli.err
