"""socat (OpenSSL, unmodified) under the shim, both directions, against an
unshimmed OpenSSL peer (tls_xfer)."""
import shutil
import time

import pytest

from conftest import (BIG, KERNEL, XFER, Proc, delta, free_port, make_file,
                      parse_conns, plain_env, rx_moves, rx_state, sha256_file,
                      shim_env, shim_sessions, tls_stat)


def socat(args, shim_config, stdin=None):
    assert shutil.which("socat"), "socat is not installed (scripts/install-deps)"
    return Proc(["socat", *args], shim_env(shim_config), stdin=stdin)


def expect_moved(err, tls):
    (sess,) = shim_sessions(err)
    if KERNEL:
        assert sess["tx"] == "kernel"
        assert sess["rx"] == rx_state(tls)
    else:
        assert sess["tx"] == "kernel-has-no-tls"


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_socat_receives(tls, certs, shim_config, workdir):
    port, out = free_port(), workdir / f"socat-in-{tls}.bin"
    srv = socat(["-u", f"OPENSSL-LISTEN:{port},reuseaddr,verify=0,"
                 f"cert={certs['ec'][0]},key={certs['ec'][1]}",
                 f"CREATE:{out}"], shim_config)
    before = tls_stat()
    cli = None
    for _ in range(100):  # socat is up once a connection succeeds
        cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls",
                    tls, "--send", str(BIG // 4)], plain_env())
        if cli.wait() == 0:
            break
        time.sleep(0.1)
    assert srv.wait() == 0, srv.err
    (c,) = parse_conns(cli.out)
    assert sha256_file(out) == c["sent_sha256"]
    expect_moved(srv.err, tls)
    if KERNEL:
        d = delta(before, tls_stat())
        assert d["TlsRxSw"] == rx_moves(tls)


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_socat_sends(tls, certs, shim_config, workdir):
    src = workdir / "socat-src.bin"
    digest = make_file(src, BIG // 4, seed=11)
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                ], plain_env())
    port = srv.read_port()
    # Both directions open (STDIO): a TLS 1.3 server always sends session
    # tickets, and "socat -u" would close with them unread, which resets
    # the connection (shim or not).
    with open(src, "rb") as f:
        cli = socat(["STDIO", f"OPENSSL:127.0.0.1:{port},verify=0"],
                    shim_config, stdin=f)
        assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (s,) = parse_conns(srv.out)
    assert s["recv_sha256"] == digest and int(s["recv"]) == BIG // 4
    expect_moved(cli.err, tls)
