"""stunnel4 (OpenSSL, unmodified) under the shim, in both of its roles:
TLS server (accepts TLS, connects plain) and TLS client (accepts plain,
connects TLS). The TLS peer is CPython's ssl, unshimmed (pyssl_peer.py:
it sends close_notify only after the proxy's, since stunnel, like TLS 1.2,
has no half-close), the plain peer plain_peer.py; both ends hash every
byte, both directions at once."""
import os
import shutil
import signal
import time

import pytest

from conftest import (BIG, HERE, KERNEL, PY, Proc, delta, free_port,
                      parse_conns, plain_env, rx_moves, rx_state, shim_env,
                      shim_sessions, shim_summary, tls_stat)

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")


def stunnel(workdir, name, service, shim_config):
    assert STUNNEL, "stunnel4 is not installed (scripts/install-deps)"
    conf = workdir / f"stunnel-{name}.conf"
    log = workdir / f"stunnel-{name}.shim.log"
    conf.write_text("foreground = yes\npid =\ndebug = warning\n"
                    "[svc]\n" + "".join(f"{k} = {v}\n"
                                         for k, v in service.items()))
    p = Proc([STUNNEL, str(conf)],
             shim_env(shim_config, KTLS_SHIM_LOG=f"file:{log}"), quiet=True)
    return p, log


def wait_listen(port, timeout=60):
    """Readiness without a probe connection: stunnel would pass a probe on
    to the one-connection peer behind it."""
    want = f":{port:04X} 00000000:0000 0A"
    end = time.time() + timeout
    while time.time() < end:
        with open("/proc/net/tcp") as f:
            if want in f.read():
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def stop(p, log):
    """SIGTERM: stunnel exits cleanly, so the shim writes its summary."""
    p.p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    return log.read_text()


def check(text, before, tls):
    (sess,) = shim_sessions(text)
    summ = shim_summary(text)
    d = delta(before, tls_stat())
    if KERNEL:
        assert sess["tx"] == "kernel", text
        assert sess["rx"] == rx_state(tls), text
        assert summ["bytes_tx"] == SIZE, summ
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == rx_moves(tls), d
    else:
        assert sess["tx"] == sess["rx"] == "kernel-has-no-tls", text
        assert summ["tx_kernel"] == 0


SIZE = BIG // 8  # each way at once; CPython hashes the TLS end


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_stunnel_tls_server(tls, certs, shim_config, workdir):
    back = Proc([PY, os.path.join(HERE, "plain_peer.py"), "server",
                 "--send", str(SIZE), "--expect", str(SIZE // 2)],
                plain_env())
    bport = back.read_port()
    port = free_port()
    st, log = stunnel(workdir, f"srv-{tls}", {
        "accept": f"127.0.0.1:{port}", "connect": f"127.0.0.1:{bport}",
        "cert": certs["ec"][0], "key": certs["ec"][1],
        "sslVersion": f"TLSv{tls}"}, shim_config)
    wait_listen(port)
    before = tls_stat()
    cli = Proc([PY, os.path.join(HERE, "pyssl_peer.py"), "client",
                "--port", str(port), "--tls", tls, "--send", str(SIZE // 2)],
               plain_env())
    assert cli.wait() == 0, cli.err
    assert back.wait() == 0, back.err
    text = stop(st, log)
    (c,), (b,) = parse_conns(cli.out), parse_conns(back.out)
    assert int(c["sent"]) == int(b["recv"]) == SIZE // 2
    assert int(b["sent"]) == int(c["recv"]) == SIZE
    assert c["sent_sha256"] == b["recv_sha256"]
    assert b["sent_sha256"] == c["recv_sha256"]
    check(text, before, tls)


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_stunnel_tls_client(tls, certs, shim_config, workdir):
    srv = Proc([PY, os.path.join(HERE, "pyssl_peer.py"), "server",
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--tls", tls, "--send", str(SIZE // 2)], plain_env())
    sport = srv.read_port()
    port = free_port()
    st, log = stunnel(workdir, f"cli-{tls}", {
        "client": "yes", "accept": f"127.0.0.1:{port}",
        "connect": f"127.0.0.1:{sport}", "sslVersion": f"TLSv{tls}"},
        shim_config)
    wait_listen(port)
    before = tls_stat()
    cli = Proc([PY, os.path.join(HERE, "plain_peer.py"), "client",
                "--port", str(port), "--send", str(SIZE),
                "--expect", str(SIZE // 2)], plain_env())
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    text = stop(st, log)
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert int(c["sent"]) == int(s["recv"]) == SIZE
    assert int(s["sent"]) == int(c["recv"]) == SIZE // 2
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    check(text, before, tls)
