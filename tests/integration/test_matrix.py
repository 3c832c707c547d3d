"""Version x cipher x direction matrix against unshimmed real peers.

For each TLS version and AEAD: a shimmed tls_xfer against an unshimmed
OpenSSL (tls_xfer without the shim) in both roles, against GnuTLS's
gnutls-serv in echo mode, and shimmed against shimmed. Bytes are checked by
sha256 at both ends; that the kernel carried them is checked three ways:
/proc/net/tls_stat deltas, getsockopt(SOL_TLS) inside the shimmed process
(tls_xfer reports it), and the shim's own per-session line.
"""
import shutil

import pytest

from conftest import (BIG, ENGINE_SHIM_UNSUPPORTED, KERNEL, OSSL_REKEYS,
                      OWN_UNSUPPORTED, REKEY, XFER, Proc, delta, no_ktls_env,
                      own_moves, parse_conns, plain_env, shim_env,
                      shim_sessions, shim_summary, tls_stat, free_port,
                      wait_port)

# (version, OpenSSL cipher name, GnuTLS priority, kernel moves TX, RX)
# OpenSSL 3.0 (Debian 12) never moves TLS 1.3 RX, and refuses TLS 1.3 CCM;
# the shim's engine moves TLS 1.3 RX where the kernel can rekey (REKEY),
# and with tls13_rx_without_rekey elsewhere (see test_tls13_rx_engine).
CASES = [
    ("1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "AES-128-GCM", True, True),
    ("1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", "AES-256-GCM", True, True),
    ("1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", "CHACHA20-POLY1305", True, True),
    ("1.2", "ECDHE-ECDSA-AES128-CCM", "AES-128-CCM", True, True),
    ("1.3", "TLS_AES_128_GCM_SHA256", "AES-128-GCM", True, False),
    ("1.3", "TLS_AES_256_GCM_SHA384", "AES-256-GCM", True, False),
    ("1.3", "TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", True, False),
    ("1.3", "TLS_AES_128_CCM_SHA256", "AES-128-CCM", False, False),
]
IDS = [f"tls{v}-{c}" for v, c, *_ in CASES]


def expected_32(version, cipher, engine):
    """OpenSSL 3.2+: its own kTLS moves what the kernel takes, TLS 1.3 CCM
    too; the shim gates TLS 1.3 RX on the kernel's rekey, and its engine
    (engine = shim) needs 3.0/3.1's record layer."""
    if engine == "shim":
        return ENGINE_SHIM_UNSUPPORTED, ENGINE_SHIM_UNSUPPORTED, "openssl"
    if not KERNEL:
        return "kernel-has-no-tls", "kernel-has-no-tls", "openssl"
    if version == "1.3" and not REKEY and engine != "auto-without-rekey":
        return "kernel", "kernel-cannot-rekey-tls13", "openssl"
    return "kernel", "kernel", "openssl"


def expected(tx, rx, version, cipher, engine="auto"):
    """What the shim must report for each direction, and which engine."""
    if OSSL_REKEYS:
        return expected_32(version, cipher, engine)
    if engine == "shim":
        # The shim's engine for every direction: OpenSSL's own installer
        # is never asked, so both directions go the same way.
        if "CCM" in cipher and version == "1.3":
            return "cipher-unsupported", "cipher-unsupported", "shim"
        if not KERNEL:
            return "kernel-has-no-tls", "kernel-has-no-tls", "shim"
        if version == "1.3" and not REKEY:
            return "kernel", "kernel-cannot-rekey-tls13", "shim"
        return "kernel", "kernel", "shim"
    if "CCM" in cipher and version == "1.3":
        return "cipher-unsupported", "cipher-unsupported", "openssl"
    if not KERNEL:
        return "kernel-has-no-tls", "kernel-has-no-tls", "openssl"
    if rx:
        return "kernel" if tx else "?", "kernel", "openssl"
    if engine == "openssl":
        return "kernel", "openssl-cannot-move-tls13-rx", "openssl"
    if engine == "auto" and not REKEY:
        return "kernel", "kernel-cannot-rekey-tls13", "openssl"
    return "kernel", "kernel", "openssl,rx:shim"


def xfer(role, port, version, cipher, send, certs, extra=()):
    argv = [XFER, "--role", role, "--port", str(port), "--tls", version,
            "--cipher", cipher, "--send", str(send), *extra]
    if role == "server":
        argv += ["--cert", certs["ec"][0], "--key", certs["ec"][1]]
    return argv


def check_shimmed(proc, conn, version, cipher, tx, rx, engine="auto"):
    want_tx, want_rx, want_engine = expected(tx, rx, version, cipher, engine)
    sess = shim_sessions(proc.err)
    assert len(sess) == 1, proc.err
    assert sess[0]["version"] == f"TLSv{version}"
    assert sess[0]["cipher"] == cipher
    assert (sess[0]["tx"], sess[0]["rx"]) == (want_tx, want_rx), proc.err
    assert sess[0]["engine"] == want_engine, proc.err
    # The kernel's own answer, asked inside the shimmed process.
    assert conn["kernel_tx"] == ("1" if want_tx == "kernel" else "0")
    assert conn["kernel_rx"] == ("1" if want_rx == "kernel" else "0")
    # The shim's public query (ktls_shim_fd_info) tells the same story.
    bits = (want_tx == "kernel") | (want_rx == "kernel") << 1
    assert conn["shim"] == f"kernel={bits},tracked=1,tx={want_tx},rx={want_rx}"
    # What OpenSSL believes must agree with the kernel.
    assert (conn["lib_tx"], conn["lib_rx"]) == (conn["kernel_tx"],
                                                conn["kernel_rx"])
    summ = shim_summary(proc.err)
    assert summ["sessions"] == 1
    assert summ["tx_kernel"] == (want_tx == "kernel")
    assert summ["rx_kernel"] == (want_rx == "kernel")
    if want_tx == "kernel":
        assert summ["bytes_tx"] == int(conn["sent"])
    if want_rx == "kernel":
        assert summ["bytes_rx"] == int(conn["recv"])
    return want_tx == "kernel", want_rx == "kernel"


def check_stat(before, moved_tx, moved_rx):
    d = delta(before, tls_stat())
    if KERNEL:
        assert d.get("TlsTxSw", 0) == moved_tx, d
        assert d.get("TlsRxSw", 0) == moved_rx, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        assert not any(d.values()), d


ENGINE_ENV = {
    "auto": {},
    "openssl": {"KTLS_SHIM_ENGINE": "openssl"},
    "auto-without-rekey": {"KTLS_SHIM_TLS13_RX_WITHOUT_REKEY": "yes"},
    "shim": {"KTLS_SHIM_ENGINE": "shim"},
}


def pair(shim_server, shim_client, case, certs, shim_config, size=BIG,
         engine="auto"):
    version, cipher, _, tx, rx = case
    before = tls_stat()
    extra = ENGINE_ENV[engine]
    senv = shim_env(shim_config, **extra) if shim_server else plain_env()
    cenv = shim_env(shim_config, **extra) if shim_client else plain_env()
    srv = Proc(xfer("server", 0, version, cipher, size, certs, ["--seed", "7"]),
               senv)
    port = srv.read_port()
    cli = Proc(xfer("client", port, version, cipher, size + 12345, certs,
                    ["--seed", "9"]), cenv)
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    # Intact both ways, hashed at both ends.
    assert int(c["sent"]) == size + 12345 == int(s["recv"])
    assert int(s["sent"]) == size == int(c["recv"])
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    assert c["version"] == s["version"] == f"TLSv{version}"
    assert c["cipher"] == s["cipher"] == cipher
    mtx = mrx = 0
    for shimmed, proc, conn in ((shim_server, srv, s), (shim_client, cli, c)):
        if shimmed:
            a, b = check_shimmed(proc, conn, version, cipher, tx, rx,
                                 engine)
            mtx, mrx = mtx + a, mrx + b
        else:
            assert conn["kernel_tx"] == conn["kernel_rx"] == "0"
            assert conn["shim"] == "-"
            assert "ktls-shim" not in proc.err
    check_stat(before, mtx, mrx)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shim_client_vs_openssl_server(case, certs, shim_config):
    pair(False, True, case, certs, shim_config)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shim_server_vs_openssl_client(case, certs, shim_config):
    pair(True, False, case, certs, shim_config)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shim_vs_shim(case, certs, shim_config):
    pair(True, True, case, certs, shim_config, size=BIG // 8)


TLS13_MOVABLE = [c for c in CASES if c[0] == "1.3" and "CCM" not in c[1]]


@pytest.mark.parametrize("engine", ["openssl", "auto-without-rekey"])
@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("case", TLS13_MOVABLE,
                         ids=[f"tls{v}-{c}" for v, c, *_ in TLS13_MOVABLE])
def test_tls13_rx_engine(case, role, engine, certs, shim_config):
    """TLS 1.3 RX with the shim's engine forced on where the kernel cannot
    rekey (6.1), and off (engine = openssl), against unshimmed OpenSSL;
    the default (auto) is what the tests above run."""
    pair(role == "server", role == "client", case, certs, shim_config,
         size=BIG // 4, engine=engine)


# On 3.2+ engine = shim moves nothing: one case per version shows that.
ENGINE_SHIM_CASES = [CASES[0], CASES[4]] if OSSL_REKEYS else CASES


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("case", ENGINE_SHIM_CASES,
                         ids=[f"tls{v}-{c}" for v, c, *_ in ENGINE_SHIM_CASES])
def test_engine_shim(case, role, certs, shim_config):
    """engine = shim: the shim derives every key and sequence number itself
    (TLS1-PRF key block, keylog secrets, records counted from the message
    callback) and installs both directions, against unshimmed OpenSSL."""
    pair(role == "server", role == "client", case, certs, shim_config,
         size=BIG // 8, engine="shim")


@pytest.mark.parametrize("case", ENGINE_SHIM_CASES,
                         ids=[f"tls{v}-{c}" for v, c, *_ in ENGINE_SHIM_CASES])
def test_engine_shim_vs_gnutls_echo(case, certs, shim_config):
    """engine = shim against GnuTLS, a second TLS implementation."""
    gnutls_echo(case, certs, shim_config, engine="shim")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shim_client_vs_gnutls_echo(case, certs, shim_config):
    """GnuTLS, a second TLS implementation, echoes what we send: our TX and
    RX both cross it, and the echo must hash like what we sent."""
    gnutls_echo(case, certs, shim_config)


@pytest.mark.parametrize("case", TLS13_MOVABLE,
                         ids=[f"tls{v}-{c}" for v, c, *_ in TLS13_MOVABLE])
def test_tls13_rx_engine_vs_gnutls_echo(case, certs, shim_config):
    """The shim's TLS 1.3 RX engine, forced on where the kernel cannot
    rekey, against GnuTLS."""
    gnutls_echo(case, certs, shim_config, engine="auto-without-rekey")


def gnutls_echo(case, certs, shim_config, engine="auto"):
    assert shutil.which("gnutls-serv"), "gnutls-bin is not installed"
    version, cipher, gnutls_cipher, tx, rx = case
    port = free_port()
    vers = "VERS-TLS1.2" if version == "1.2" else "VERS-TLS1.3"
    prio = (f"NONE:+{vers}:+{gnutls_cipher}:+AEAD:+SHA256:+SHA384:+ECDHE-ECDSA"
            ":+COMP-NULL:+SIGN-ALL:+GROUP-ALL:+CTYPE-X509")
    before = tls_stat()
    srv = Proc(["gnutls-serv", "--echo", "-p", str(port), "--priority", prio,
                "--x509certfile", certs["ec"][0],
                "--x509keyfile", certs["ec"][1]], plain_env(), quiet=True)
    try:
        wait_port(port)
        before = tls_stat()  # the probe above made no TLS session
        size = BIG // 4
        cli = Proc(xfer("client", port, version, cipher, size, certs,
                        ["--recv-until", str(size), "--text"]),
                   shim_env(shim_config, **ENGINE_ENV[engine]))
        assert cli.wait() == 0, cli.err
    finally:
        srv.p.terminate()
        srv.wait()
    (c,) = parse_conns(cli.out)
    assert int(c["sent"]) == int(c["recv"]) == size
    assert c["sent_sha256"] == c["recv_sha256"]
    a, b = check_shimmed(cli, c, version, cipher, tx, rx, engine)
    check_stat(before, a, b)


@pytest.mark.parametrize("engine", ["auto", "shim", "no-ktls"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_ssl_clear_reuse(tls, engine, certs, shim_config):
    """One SSL object for three connections in turn, SSL_clear()ed between
    them (servers that pool SSL objects do this): the shim's notes on the
    SSL must not carry one session's keys, sequence numbers or verdict
    into the next. Each session moves as a fresh one would, intact."""
    conns, size = 3, 1 << 20
    cipher = {"1.2": "ECDHE-ECDSA-AES128-GCM-SHA256",
              "1.3": "TLS_AES_128_GCM_SHA256"}[tls]
    env = (no_ktls_env(shim_config) if engine == "no-ktls"
           else shim_env(shim_config, **ENGINE_ENV[engine]))
    before = tls_stat()
    srv = Proc(xfer("server", 0, tls, cipher, size, certs,
                    ["--conns", str(conns), "--seed", "3"]), plain_env())
    port = srv.read_port()
    cli = Proc(xfer("client", port, tls, cipher, size, certs,
                    ["--conns", str(conns), "--seed", "4", "--reuse-ssl"]),
               env)
    assert cli.wait() == 0, cli.err[-3000:]
    assert srv.wait() == 0, srv.err[-3000:]
    cs, ss = parse_conns(cli.out), parse_conns(srv.out)
    assert len(cs) == len(ss) == conns
    for c, s in zip(cs, ss):
        assert int(c["sent"]) == int(s["recv"]) == size
        assert int(s["sent"]) == int(c["recv"]) == size
        assert c["sent_sha256"] == s["recv_sha256"]
        assert s["sent_sha256"] == c["recv_sha256"]
    sess = shim_sessions(cli.err)
    assert len(sess) == conns, cli.err[-3000:]
    if engine == "no-ktls" and OSSL_REKEYS:
        want = (OWN_UNSUPPORTED, OWN_UNSUPPORTED)
    elif engine == "shim" and OSSL_REKEYS:
        want = (ENGINE_SHIM_UNSUPPORTED, ENGINE_SHIM_UNSUPPORTED)
    elif engine == "no-ktls":
        moves = own_moves(tls)
        want = ("kernel", "kernel") if moves else None
    else:
        rx = tls == "1.2" or REKEY
        want = ("kernel", "kernel" if rx else "kernel-cannot-rekey-tls13")
    if not KERNEL and not (OSSL_REKEYS and engine != "auto"):
        want = ("kernel-has-no-tls", "kernel-has-no-tls")
    for s, c in zip(sess, cs):
        if want:
            assert (s["tx"], s["rx"]) == want, cli.err[-3000:]
        assert c["kernel_tx"] == str(int(s["tx"] == "kernel"))
        assert c["kernel_rx"] == str(int(s["rx"] == "kernel"))
    d = delta(before, tls_stat())
    if KERNEL:
        assert d.get("TlsTxSw", 0) == sum(s["tx"] == "kernel" for s in sess)
        assert d.get("TlsRxSw", 0) == sum(s["rx"] == "kernel" for s in sess)
        assert d.get("TlsDecryptError", 0) == 0, d
