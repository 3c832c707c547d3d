"""Negotiated record size (issue 20): a peer that asked for small records
(RFC 6066 max_fragment_length) never gets a bigger one from the kernel.

The shimmed side is a tls_xfer server sending 1 MiB with sendfile() (the
path where the kernel, not libssl, cuts the records); the peer an
unshimmed tls_xfer client asking for a max fragment length, whose libssl
record layer counts every record it reads (--record-sizes) and would fail
the connection on one over the limit. Where the kernel accepts
TLS_TX_MAX_PAYLOAD_LEN (asked here of the kernel directly, not of the
shim) TX moves with the limit; where it does not, TX stays in userspace
(record-size-limited). OpenSSL's own installer (auto) declines such a
session itself, and the shim says why.
"""
import re

import pytest

from conftest import (GXFER, KERNEL, NO_KTLS_PRELOAD, OSSL_REKEYS, REKEY, XFER, MiB,
                      Proc, delta, kernel_limits_tx, make_file,
                      one_conn_intact, plain_env, rx_state, shim_env,
                      shim_sessions, tls_stat)

# Record body overhead over the plaintext, AES-128-GCM: TLS 1.2's explicit
# nonce and tag; TLS 1.3's inner content type and tag.
OVERHEAD = {"1.2": 8 + 16, "1.3": 1 + 16}


LIMITS = kernel_limits_tx()
ENGINES = {"auto": {}, "shim": {"KTLS_SHIM_ENGINE": "shim"},
           "no-ktls": {"LD_PRELOAD": NO_KTLS_PRELOAD}}


@pytest.fixture(scope="module")
def body(workdir):
    path = workdir / "record-size.bin"
    make_file(path, MiB, seed=9)
    return path


def expect_rx(engine, tls):
    """RX needs no limit from the kernel, which takes records up to 16 KiB
    either way, but so it would take one over the limit we promised, and
    hand several records up per read: a peer's oversized record could not
    be refused as libssl refuses it. So RX stays, for every engine; the
    shim's record layer (no-ktls) moves both directions or none."""
    if engine == "auto":
        return "record-size-limited"  # as TX: OpenSSL declined first
    if not KERNEL:
        return "kernel-has-no-tls"
    if tls == "1.3" and not REKEY:
        return "kernel-cannot-rekey-tls13"
    return "record-size-limited"


def expect_tx(engine):
    # OpenSSL's own installer declines before it asks for the ULP, so no
    # kernel is asked at all (its reason comes first even on the host).
    if engine == "auto":
        return "record-size-limited"
    if not KERNEL:
        return "kernel-has-no-tls"
    if not LIMITS:
        return "record-size-limited"
    return "other-direction-stays" if engine == "no-ktls" else "kernel"


# The shim's engine (shim) and record layer (no-ktls) need OpenSSL 3.0/3.1;
# over 3.2+ those sessions stay in userspace whatever the limit.
@pytest.mark.parametrize("engine,tls,limit", [
    c for c in [
        ("auto", "1.2", 512), ("auto", "1.3", 512),
        ("shim", "1.2", 512), ("shim", "1.3", 512), ("shim", "1.2", 4096),
        ("no-ktls", "1.2", 512), ("no-ktls", "1.3", 1024)]
    if c[0] == "auto" or not OSSL_REKEYS])
def test_peer_max_fragment_length_kept(engine, tls, limit, certs,
                                       shim_config, body):
    before = tls_stat()
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--cipher", "TLS_AES_128_GCM_SHA256" if tls == "1.3"
                else "ECDHE-ECDSA-AES128-GCM-SHA256",
                "--sendfile", str(body), "--chunk", str(MiB)],
               shim_env(shim_config, **ENGINES[engine]))
    cli = Proc([XFER, "--role", "client", "--port", str(srv.read_port()),
                "--tls", tls, "--send", "4096", "--maxfraglen", str(limit),
                "--record-sizes"], plain_env())
    crc, src = cli.wait(), srv.wait()
    assert crc == 0 and src == 0, (crc, src, cli.err, srv.err[-3000:])
    c, s = one_conn_intact(cli.out, srv.out, 4096, back=MiB)
    d = delta(before, tls_stat())
    # Every record the peer read kept to its limit (libssl would also have
    # failed the connection on one that did not).
    assert 0 < int(c["max_record_in"]) <= limit + OVERHEAD[tls], c
    assert int(c["records_in"]) >= MiB // limit, c
    (sess,) = shim_sessions(srv.err)
    assert (sess["tx"], sess["rx"]) == (expect_tx(engine),
                                        expect_rx(engine, tls)), srv.err
    if sess["tx"] == "kernel":
        assert s["kernel_tx"] == "1" and d.get("TlsTxSw", 0) == 1, (s, d)


# GnuTLS as a TLS 1.2 server ignores a client's max_fragment_length even in
# userspace (3.7.9); as a TLS 1.3 server it keeps it, and so must the
# kernel. gnutls_xfer sends 16 KiB per gnutls_record_send().
@pytest.mark.parametrize("limit", [512])
def test_gnutls_server_keeps_peer_limit(limit, certs, shim_config):
    before = tls_stat()
    srv = Proc([GXFER, "--role", "server", "--port", "0", "--tls", "1.3",
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--cipher", "AES-128-GCM", "--send", str(MiB)],
               shim_env(shim_config))
    cli = Proc([XFER, "--role", "client", "--port", str(srv.read_port()),
                "--tls", "1.3", "--send", "4096", "--maxfraglen",
                str(limit), "--record-sizes"], plain_env())
    crc, src = cli.wait(), srv.wait()
    assert crc == 0 and src == 0, (crc, src, cli.err, srv.err[-3000:])
    c, s = one_conn_intact(cli.out, srv.out, 4096, back=MiB)
    d = delta(before, tls_stat())
    assert 0 < int(c["max_record_in"]) <= limit + OVERHEAD["1.3"], c
    (sess,) = shim_sessions(srv.err)
    assert sess["tx"] == expect_tx("gnutls"), srv.err[-2000:]
    if sess["tx"] == "kernel":
        assert s["kernel_tx"] == "1" and d.get("TlsTxSw", 0) == 1, (s, d)


# RFC 8449 record_size_limit, which GnuTLS negotiates (OpenSSL 3.0-3.5 does
# not): gnutls_xfer --record-size-limit 512 advertises it (513 in TLS 1.3,
# the content type counted in) and --record-sizes counts every record it
# reads below GnuTLS. GnuTLS before 3.8.11 cannot say what its peer allowed:
# the shim reads it from the peer's hellos (shim/gnutls/hello.c).
RSL = 512


def gnutls_pair(shimmed, tls, certs, shim_config, big_opts, peer_opts):
    """gnutls_xfer against gnutls_xfer, one side shimmed (sending 1 MiB
    with big_opts), the other unshimmed (4 KiB, peer_opts); returns the
    shimmed side's conn line, the peer's, its session line and the
    tls_stat delta, both ends intact."""
    cert, key = certs["ec"]
    before = tls_stat()
    srv_shim, cli_shim = shimmed == "server", shimmed == "client"
    common = ["--tls", tls, "--cipher", "AES-128-GCM"]
    srv = Proc([GXFER, "--role", "server", "--port", "0", "--cert", cert,
                "--key", key, *common,
                *(big_opts if srv_shim else peer_opts)],
               shim_env(shim_config) if srv_shim else plain_env())
    cli = Proc([GXFER, "--role", "client", "--port", str(srv.read_port()),
                *common, *(big_opts if cli_shim else peer_opts)],
               shim_env(shim_config) if cli_shim else plain_env())
    crc, src = cli.wait(), srv.wait()
    assert crc == 0 and src == 0, (crc, src, cli.err[-2000:],
                                   srv.err[-2000:])
    c, s = one_conn_intact(cli.out, srv.out,
                           MiB if cli_shim else 4096,
                           back=4096 if cli_shim else MiB)
    me, peer, err = (s, c, srv.err) if srv_shim else (c, s, cli.err)
    (sess,) = shim_sessions(err)
    return me, peer, sess, delta(before, tls_stat())


# own: the program's own push/pull (qemu's shape, moved once proven:
# test_custom_transport.py), the same installer.
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("shimmed", ["server", "client", "client-own"])
def test_gnutls_keeps_peer_record_size_limit(shimmed, tls, certs,
                                             shim_config):
    """The peer's limit reaches us in its ClientHello (we serve), its TLS
    1.2 ServerHello or its TLS 1.3 EncryptedExtensions (we connect)."""
    own = ["--transport", "vec"] if shimmed.endswith("-own") else []
    me, peer, sess, d = gnutls_pair(
        shimmed.split("-")[0], tls, certs, shim_config,
        ["--send", str(MiB), *own],
        ["--send", "4096", "--record-size-limit", str(RSL),
         "--record-sizes"])
    # Every record the peer read kept to what it asked for (GnuTLS would
    # also have failed the connection on one that did not).
    limit = RSL + (1 if tls == "1.3" else 0)
    assert 0 < int(peer["max_record_in"]) <= limit + OVERHEAD[tls], peer
    assert int(peer["records_in"]) >= MiB // limit, peer
    assert sess["tx"] == expect_tx("gnutls"), sess
    assert sess["rx"] == rx_state(tls), sess
    if sess["tx"] == "kernel":
        assert me["kernel_tx"] == "1" and d.get("TlsTxSw", 0) == 1, (me, d)


# OpenSSL 3.0-3.5 does not negotiate record_size_limit: a GnuTLS client's
# 512 is not in force (GnuTLS takes the server's silence as a no and
# accepts 16 KiB records), and the session moves as any other.
@pytest.mark.parametrize("engine", [e for e in ENGINES
                                    if e == "auto" or not OSSL_REKEYS])
def test_openssl_server_ignores_record_size_limit(engine, certs, shim_config,
                                                  body):
    before = tls_stat()
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", "1.2",
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                "--sendfile", str(body), "--chunk", str(MiB)],
               shim_env(shim_config, **ENGINES[engine]))
    cli = Proc([GXFER, "--role", "client", "--port", str(srv.read_port()),
                "--tls", "1.2", "--cipher", "AES-128-GCM", "--send", "4096",
                "--record-size-limit", str(RSL), "--record-sizes"],
               plain_env())
    crc, src = cli.wait(), srv.wait()
    assert crc == 0 and src == 0, (crc, src, cli.err, srv.err[-3000:])
    c, s = one_conn_intact(cli.out, srv.out, 4096, back=MiB)
    assert int(c["max_record_in"]) > 4 * RSL, c
    (sess,) = shim_sessions(srv.err)
    moved = "kernel" if KERNEL else "kernel-has-no-tls"
    assert (sess["tx"], sess["rx"]) == (moved, moved), sess
    if KERNEL:
        d = delta(before, tls_stat())
        assert s["kernel_tx"] == "1" and d.get("TlsTxSw", 0) == 1, (s, d)


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_gnutls_own_record_size_limit_keeps_rx(tls, certs, shim_config):
    """We asked for small records: the kernel could not refuse a bigger
    one as GnuTLS does, so RX stays; TX moves (the peer allowed 16 KiB)."""
    me, peer, sess, d = gnutls_pair(
        "client", tls, certs, shim_config,
        ["--send", str(MiB), "--record-size-limit", str(RSL)],
        ["--send", "4096", "--record-sizes"])
    assert int(peer["max_record_in"]) > 4 * RSL, peer  # no limit on TX
    expect = rx_state(tls)
    assert sess["rx"] == ("record-size-limited" if expect == "kernel"
                          else expect), sess
    assert sess["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls"), sess
    if KERNEL:
        assert me["kernel_tx"] == "1" and me["kernel_rx"] == "0", me
        assert d.get("TlsTxSw", 0) == 1 and d.get("TlsRxSw", 0) == 0, d


def ssl_reasons(err):
    """libssl's error reasons in a tls_xfer's stderr."""
    return re.findall(r":error:[0-9A-F]+:SSL routines:[^:]*:([^:]*):", err)


# A peer that sends records over the limit we asked for gets what it gets
# without the shim: GnuTLS as a TLS 1.2 server (3.7.9 and 3.8.9) ignores a
# client's max_fragment_length, and libssl as the client then fails the
# connection ("data length too long", 3.5 "packet length too long"). The shimmed client must fail the same way, not
# let the kernel take the records. The unshimmed run is the reference, so
# a GnuTLS that keeps the limit makes both runs intact instead.
@pytest.mark.parametrize("engine", [e for e in ENGINES
                                    if e == "auto" or not OSSL_REKEYS])
def test_peer_over_our_limit_fails_as_in_userspace(engine, certs,
                                                   shim_config):
    cert, key = certs["ec"]

    def run(env):
        srv = Proc([GXFER, "--role", "server", "--port", "0", "--cert", cert,
                    "--key", key, "--tls", "1.2", "--cipher", "AES-128-GCM",
                    "--send", str(MiB)], plain_env())
        cli = Proc([XFER, "--role", "client", "--port",
                    str(srv.read_port()), "--tls", "1.2", "--cipher",
                    "ECDHE-ECDSA-AES128-GCM-SHA256", "--send", "4096",
                    "--maxfraglen", "512"], env)
        rc = cli.wait()
        srv.wait()
        return rc, cli

    rc0, plain = run(plain_env())
    rc1, shimmed = run(shim_env(shim_config, **ENGINES[engine]))
    assert (rc1, ssl_reasons(shimmed.err)) == (rc0, ssl_reasons(plain.err)), \
        (plain.err[-1500:], shimmed.err[-1500:])
    if rc0 == 0:
        assert plain.out == shimmed.out  # same seed: the same bytes
    else:
        # 3.0: "data length too long"; 3.5: "packet length too long".
        assert any(r.endswith("length too long")
                   for r in ssl_reasons(plain.err)), plain.err
    (sess,) = shim_sessions(shimmed.err)
    assert sess["rx"] == expect_rx(engine, "1.2"), sess
