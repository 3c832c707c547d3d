"""A libssl built without kTLS (OpenSSL's default "no-ktls"; many
self-built ones): its socket BIO ignores the kTLS ctrls, so OpenSSL can
neither install keys nor read and write through the kernel. The shim
probes for that once, then its engine installs both directions itself
and its own record layer (shim/openssl/record_layer.c) runs the session:
SSL_read/SSL_write/SSL_get_error/SSL_shutdown over the kernel, both
directions or neither. libno-ktls-bio.so, preloaded behind the shim, makes
Debian's libssl act as such a build. Every case: an unshimmed peer, bytes
hashed at both ends, the kernel's counters.

Over OpenSSL 3.2+ the shim's record layer does not run (it needs 3.0/3.1's
record layer): the sessions stay in userspace, intact, and say
`openssl-without-ktls`; cases about the record layer's own work are
deselected there (openssl_30_record_layer)."""
import os

import pytest

from conftest import (BIG, BUILD, ENGINE_SHIM_UNSUPPORTED, KERNEL,
                      OSSL_REKEYS, OWN_UNSUPPORTED, XFER, MiB, Proc, delta,
                      free_port, make_file, no_ktls_env, one_conn_intact,
                      own_moves, parse_conns, plain_env, sha256_file,
                      shim_env, shim_sessions, shim_summary, tls_stat)
from test_programs import curl_get, s_client_get, s_server, sha256

OWN = "shim,record-layer:shim"


def transfer(certs, shim_config, role, tls, size, cipher=None, xargs=(),
             **extra):
    """tls_xfer in `role` under the shim and the no-kTLS libssl (with
    xargs), the other end unshimmed; both send `size` bytes."""
    def argv(r, port):
        a = [XFER, "--role", r, "--port", str(port), "--tls", tls,
             "--send", str(size)] + (list(xargs) if r == role else [])
        if cipher:
            a += ["--cipher", cipher]
        if r == "server":
            a += ["--cert", certs["ec"][0], "--key", certs["ec"][1]]
        return a

    env = {role: no_ktls_env(shim_config, **extra),
           ("server" if role == "client" else "client"): plain_env()}
    before = tls_stat()
    srv = Proc(argv("server", 0), env["server"])
    cli = Proc(argv("client", srv.read_port()), env["client"])
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    c, s = one_conn_intact(cli.out, srv.out, size)
    me, conn = (cli, c) if role == "client" else (srv, s)
    return me, conn, delta(before, tls_stat())


def check_moved(me, conn, d, tls, size, engine="auto"):
    (sess,) = shim_sessions(me.err)
    if OSSL_REKEYS:
        want = ENGINE_SHIM_UNSUPPORTED if engine == "shim" else OWN_UNSUPPORTED
        assert sess["tx"] == sess["rx"] == want, me.err
        assert sess["engine"] == "openssl", me.err
        assert conn["kernel_tx"] == conn["kernel_rx"] == "0", conn
        assert d.get("TlsTxSw", 0) == d.get("TlsRxSw", 0) == 0, d
    elif own_moves(tls):
        assert sess["tx"] == sess["rx"] == "kernel", me.err
        assert sess["engine"] == OWN, me.err
        # The kernel holds both keys (getsockopt in the process), and
        # OpenSSL itself knows nothing of it.
        assert conn["kernel_tx"] == conn["kernel_rx"] == "1", conn
        assert conn["lib_tx"] == conn["lib_rx"] == "0", conn
        summ = shim_summary(me.err)
        assert summ["bytes_tx"] == size and summ["bytes_rx"] == size, summ
        assert d.get("TlsTxSw", 0) == 1 and d.get("TlsRxSw", 0) == 1, d
        assert d.get("TlsDecryptError", 0) == 0, d
    elif KERNEL:
        # TLS 1.3 where the kernel cannot follow a KeyUpdate: RX stays,
        # and with it TX, since OpenSSL cannot run half a session.
        assert sess["rx"] == "kernel-cannot-rekey-tls13", me.err
        assert sess["tx"] == "other-direction-stays", me.err
        assert d.get("TlsTxSw", 0) == d.get("TlsRxSw", 0) == 0, d
    else:
        assert sess["tx"] == sess["rx"] == "kernel-has-no-tls", me.err


@pytest.mark.parametrize("engine", ["auto", "shim"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("role", ["client", "server"])
def test_record_layer_moves_both_directions(role, tls, engine, certs,
                                            shim_config):
    """Non-blocking sockets with poll (tls_xfer's default): WANT_READ and
    WANT_WRITE from the shim's SSL_get_error, partial kernel writes
    retried, close_notify both ways."""
    size = min(BIG, 8 * MiB)
    me, conn, d = transfer(certs, shim_config, role, tls, size,
                           KTLS_SHIM_ENGINE=engine)
    # engine = shim on 3.2+ says so before the probe is needed.
    if not (OSSL_REKEYS and engine == "shim"):
        assert "libssl has no kTLS" in me.err, me.err
    check_moved(me, conn, d, tls, size, engine)


CIPHERS = [("1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
           ("1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"),
           ("1.2", "ECDHE-ECDSA-CHACHA20-POLY1305"),
           ("1.2", "ECDHE-ECDSA-AES128-CCM")] + (
    # Where TLS 1.3 stays in userspace (6.1) every cipher would say the
    # same: test_record_layer_moves_both_directions checks it (CI time).
    [("1.3", "TLS_AES_128_GCM_SHA256"),
     ("1.3", "TLS_AES_256_GCM_SHA384"),
     ("1.3", "TLS_CHACHA20_POLY1305_SHA256")]
    if own_moves("1.3") or not KERNEL else [])


@pytest.mark.openssl_30_record_layer("every cipher stays alike")
@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("tls,cipher", CIPHERS)
def test_record_layer_cipher_matrix(tls, cipher, role, certs, shim_config):
    size = MiB
    me, conn, d = transfer(certs, shim_config, role, tls, size, cipher)
    assert conn["cipher"] == cipher, conn
    check_moved(me, conn, d, tls, size)


@pytest.mark.openssl_30_record_layer("the record layer's blocking writes")
def test_blocking_sockets(certs, shim_config):
    """Blocking sockets: SSL_write writes everything before it returns."""
    size = 4 * MiB
    for tls in ("1.2", "1.3"):
        me, conn, d = transfer(certs, shim_config, "client", tls, size,
                               xargs=["--blocking"])
        check_moved(me, conn, d, tls, size)


@pytest.fixture(scope="module")
def www_file(workdir):
    path = workdir / "www.bin"
    return path, make_file(path, min(BIG, 8 * MiB))


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_s_client_fetches(tls, certs, shim_config, workdir, www_file):
    """openssl s_client (SSL_read/SSL_write on the SSL itself) fetching
    from an unshimmed s_server -WWW."""
    path, digest = www_file
    port = free_port()
    srv = s_server(port, certs, plain_env(), workdir)
    before = tls_stat()
    r, body = s_client_get(port, path.name, tls, no_ktls_env(shim_config))
    srv.wait()
    assert len(body) == path.stat().st_size and sha256(body) == digest
    err = r.stderr.decode(errors="replace")
    (sess,) = shim_sessions(err)
    d = delta(before, tls_stat())
    if own_moves(tls):
        assert sess["tx"] == sess["rx"] == "kernel", err
        assert sess["engine"] == OWN, err
        assert shim_summary(err)["bytes_rx"] == len(r.stdout)
        assert d["TlsTxSw"] == 1 and d["TlsRxSw"] == 1, d
    else:
        assert d.get("TlsRxSw", 0) == 0, d


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_ssl_bio_program_stays_with_openssl(tls, certs, shim_config,
                                            workdir, www_file):
    """openssl s_server -WWW does its I/O through an SSL BIO (BIO_f_ssl),
    whose reads and writes run libssl's record layer without a call the
    shim interposes: its sessions stay with OpenSSL, intact, and say why."""
    path, digest = www_file
    port = free_port()
    before = tls_stat()
    srv = s_server(port, certs, no_ktls_env(shim_config), workdir)
    out = workdir / f"www-{tls}.out"
    r = curl_get(port, path.name, out, tls)
    assert r.returncode == 0, r.stderr
    assert srv.wait() == 0, srv.err
    assert sha256_file(out) == digest
    (sess,) = shim_sessions(srv.err)
    want = OWN_UNSUPPORTED if OSSL_REKEYS else "ssl-bio-in-process"
    assert sess["tx"] == sess["rx"] == want, srv.err
    d = delta(before, tls_stat())
    assert d.get("TlsTxSw", 0) == d.get("TlsRxSw", 0) == 0, d


PEEK = os.path.join(BUILD, "tests", "ssl_peek")


@pytest.mark.parametrize("lib", ["plain", "ktls", "no-ktls"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_peek_pending_and_close_notify(tls, lib, certs, shim_config):
    """SSL_peek, SSL_pending, SSL_has_pending and the close_notify
    conventions (tests/tools/ssl_peek.c checks them against each other),
    the same without the shim, with it over OpenSSL's own kTLS, and over
    the shim's record layer."""
    size = 4 * MiB
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--send", str(size)], plain_env())
    env = {"plain": plain_env, "ktls": shim_env,
           "no-ktls": no_ktls_env}[lib]
    cli = Proc([PEEK, str(srv.read_port()), tls],
               env() if lib == "plain" else env(shim_config))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (s,) = parse_conns(srv.out)
    got = dict(kv.split("=", 1) for kv in cli.out.split())
    assert int(got["recv"]) == size and got["recv_sha256"] == s["sent_sha256"]
    # Bytes said to be pending were read without the socket.
    assert int(got["pending_reads"]) > 0, got
    if lib == "no-ktls" and own_moves(tls):
        (sess,) = shim_sessions(cli.err)
        assert sess["engine"] == OWN and sess["rx"] == "kernel", cli.err
        assert shim_summary(cli.err)["bytes_rx"] == size
