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
import pytest

from conftest import (GXFER, KERNEL, NO_KTLS_PRELOAD, OSSL_REKEYS, REKEY, XFER, MiB,
                      Proc, delta, kernel_limits_tx, make_file,
                      one_conn_intact, own_moves, plain_env, shim_env,
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
    """RX needs no limit from the kernel (it takes records up to 16 KiB
    either way), but libssl reading a kTLS socket itself (engine = shim)
    checks every read against the limit, and the kernel hands it several
    records per read: there RX stays. The shim's record layer reads one
    record at a time, both directions or none."""
    if engine == "no-ktls":
        if not KERNEL:
            return "kernel-has-no-tls"
        if LIMITS:
            return "kernel"
        return ("other-direction-stays" if own_moves(tls)
                else "kernel-cannot-rekey-tls13")
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
    return "kernel" if LIMITS else "record-size-limited"


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
