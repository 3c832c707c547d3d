"""TLS 1.3 record padding asked for by the program (issue 20): the kernel
adds none, so a session whose program asked for it keeps TLS 1.3 TX in
userspace, where libssl pads (padding-requested), unless
record_padding = drop.

The shimmed side is a tls_xfer server padding to 256-byte blocks
(SSL_CTX_set_block_padding) and sending 1 MiB in 5,000-byte writes, with
SSL_write or sendfile(); the peer an unshimmed tls_xfer client whose libssl
record layer looks at every record it reads (--record-sizes): unpadded_in
counts the TLS 1.3 records shorter than 16 KiB whose inner plaintext is
not a multiple of 256, which a padding sender never sends. OpenSSL 3.0's
own installer (auto) moves a block-padded session's TX itself and drops
the padding (seen in the 7.2 VM); the shim refuses its setsockopt(TLS_TX).
OpenSSL 3.2+ declines TX of any session with padding itself, TLS 1.2 too
(seen with 3.5 on 7.2). A client asking for padding, and an SSL's own
setting over its context's, are checked too. TLS 1.2 has no padding: over
3.0 it moves as usual.
"""
import pytest

from conftest import (GXFER, KERNEL, NO_KTLS_PRELOAD, OSSL_REKEYS, XFER, MiB, Proc,
                      delta, make_file, one_conn_intact, own_moves,
                      plain_env, rx_state, shim_env, shim_sessions, tls_stat)

BLOCK = 256
CHUNK = 5000  # + the type byte: not a multiple of BLOCK, under 16 KiB
ENGINES = {"auto": {}, "shim": {"KTLS_SHIM_ENGINE": "shim"},
           "no-ktls": {"LD_PRELOAD": NO_KTLS_PRELOAD}}
CIPHER = {"1.3": "TLS_AES_128_GCM_SHA256",
          "1.2": "ECDHE-ECDSA-AES128-GCM-SHA256"}


@pytest.fixture(scope="module")
def body(workdir):
    path = workdir / "record-padding.bin"
    make_file(path, MiB, seed=11)
    return path


@pytest.fixture(scope="module")
def drop_config(workdir):
    p = workdir / "record-padding-drop.conf"
    p.write_text("record_padding = drop\n")
    return str(p)


def transfer(engine, tls, mode, config, body, certs, client=False,
             padding=("--block-padding", str(BLOCK)), **env):
    """The padding sender (shimmed; the server, or with client=True the
    client; padding: its tls_xfer options) to an unshimmed peer counting
    what it reads; returns the peer's conn line, the sender's, the
    session line, tls_stat's delta."""
    before = tls_stat()
    how = (["--sendfile", str(body)] if mode == "sendfile"
           else ["--send", str(MiB)])
    srv_args = [XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--cipher", CIPHER[tls], "--chunk", str(CHUNK)]
    cli_args = [XFER, "--role", "client", "--tls", tls, "--chunk",
                str(CHUNK)]
    sender, peer = (cli_args, srv_args) if client else (srv_args, cli_args)
    sender += [*how, *padding]
    peer += ["--send", "4096", "--record-sizes", "--block-padding",
             str(BLOCK)]
    shimmed = shim_env(config, **ENGINES[engine], **env)
    srv = Proc(srv_args, plain_env() if client else shimmed)
    cli = Proc(cli_args + ["--port", str(srv.read_port())],
               shimmed if client else plain_env())
    crc, src = cli.wait(), srv.wait()
    assert crc == 0 and src == 0, (crc, src, cli.err, srv.err)
    if client:
        s, c = one_conn_intact(cli.out, srv.out, MiB, back=4096)
    else:
        c, s = one_conn_intact(cli.out, srv.out, 4096, back=MiB)
    (sess,) = shim_sessions((cli if client else srv).err)
    return c, s, sess, delta(before, tls_stat())


def expect_kept(engine):
    """TX and RX of a TLS 1.3 session that asked for padding, default
    config. On the host the kernel check comes first."""
    if not KERNEL:
        return "kernel-has-no-tls", "kernel-has-no-tls"
    if engine == "no-ktls":
        # Both directions or neither: RX stays with TX.
        return "padding-requested", ("other-direction-stays"
                                     if own_moves("1.3")
                                     else rx_state("1.3"))
    return "padding-requested", rx_state("1.3")


# The shim's engine (shim) and record layer (no-ktls) need OpenSSL 3.0/3.1.
@pytest.mark.parametrize("engine,mode", [
    c for c in [(e, m) for e in ("auto", "shim", "no-ktls")
                for m in ("write", "sendfile")]
    if c[0] == "auto" or not OSSL_REKEYS])
def test_padding_keeps_tx(engine, mode, certs, shim_config, body):
    c, s, sess, d = transfer(engine, "1.3", mode, shim_config, body, certs)
    assert (sess["tx"], sess["rx"]) == expect_kept(engine), sess
    # Every record the peer read was padded, and there were some that
    # could be (CHUNK-sized writes).
    assert int(c["unpadded_in"]) == 0, c
    assert int(c["records_in"]) >= MiB // CHUNK, c
    assert s["kernel_tx"] == "0" and d.get("TlsTxSw", 0) == 0, (s, d)


# A client asking for padding: OpenSSL's own installer moves its TX at
# another point of the handshake (after the client's Finished).
def test_padding_keeps_client_tx(certs, shim_config, body):
    c, s, sess, d = transfer("auto", "1.3", "write", shim_config, body,
                             certs, client=True)
    assert (sess["tx"], sess["rx"]) == expect_kept("auto"), sess
    assert int(c["unpadded_in"]) == 0, c
    assert int(c["records_in"]) >= MiB // CHUNK, c
    assert s["kernel_tx"] == "0" and d.get("TlsTxSw", 0) == 0, (s, d)


# The SSL's own setting overrides what it took from its SSL_CTX, as in
# libssl: block size 1 clears the context's padding (TX moves), and an
# SSL of an unpadded context can ask for it (TX stays).
@pytest.mark.parametrize("ctx_pad,ssl_pad", [(BLOCK, 1), (0, BLOCK)])
def test_ssl_setting_overrides_context(ctx_pad, ssl_pad, certs, shim_config,
                                       body):
    c, s, sess, d = transfer("auto", "1.3", "write", shim_config, body, certs,
                             padding=("--block-padding", str(ctx_pad),
                                      "--ssl-block-padding", str(ssl_pad)))
    if ssl_pad > 1:
        assert (sess["tx"], sess["rx"]) == expect_kept("auto"), sess
        assert int(c["unpadded_in"]) == 0, c
    else:
        tx = "kernel" if KERNEL else "kernel-has-no-tls"
        assert (sess["tx"], sess["rx"]) == (tx, rx_state("1.3")), sess
        assert int(c["unpadded_in"]) > 0, c


# record_padding = drop: TX moves and the kernel's records are unpadded
# (from the config file; no-ktls: from the environment). auto: OpenSSL
# 3.0 moves it itself and drops the padding, as without the shim.
@pytest.mark.parametrize("engine,mode", [
    c for c in [("auto", "write"), ("shim", "write"), ("shim", "sendfile"),
                ("no-ktls", "sendfile")]
    if c[0] == "auto" or not OSSL_REKEYS])
def test_padding_dropped_by_config(engine, mode, certs, shim_config,
                                   drop_config, body):
    config, env = drop_config, {}
    if engine == "no-ktls":
        config, env = shim_config, {"KTLS_SHIM_RECORD_PADDING": "drop"}
    c, s, sess, d = transfer(engine, "1.3", mode, config, body, certs, **env)
    if not KERNEL:
        assert (sess["tx"], sess["rx"]) == ("kernel-has-no-tls",) * 2, sess
        assert int(c["unpadded_in"]) == 0, c
        return
    # The record layer for a libssl without kTLS: both or neither, TLS 1.3
    # only where the kernel can follow a KeyUpdate on RX.
    if engine == "no-ktls" and not own_moves("1.3"):
        tx, rx = "other-direction-stays", rx_state("1.3")
    elif engine == "auto" and OSSL_REKEYS:
        tx, rx = "padding-requested", rx_state("1.3")  # 3.5 declines
    else:
        tx, rx = "kernel", rx_state("1.3")
    assert (sess["tx"], sess["rx"]) == (tx, rx), sess
    if tx == "kernel":
        assert s["kernel_tx"] == "1" and d.get("TlsTxSw", 0) == 1, (s, d)
        assert int(c["unpadded_in"]) > 0, c
    else:
        assert int(c["unpadded_in"]) == 0, c


# TLS 1.2 has no padding: the setting changes nothing, every engine moves;
# but OpenSSL 3.2+'s own installer declines TX of a session with padding.
@pytest.mark.parametrize("engine", [
    e for e in ("auto", "shim") if e == "auto" or not OSSL_REKEYS])
def test_tls12_ignores_padding(engine, certs, shim_config, body):
    c, s, sess, d = transfer(engine, "1.2", "sendfile", shim_config, body,
                             certs)
    want = ("kernel-has-no-tls" if not KERNEL
            else "padding-requested" if OSSL_REKEYS else "kernel")
    assert (sess["tx"], sess["rx"]) == (want, rx_state("1.2")), sess
    assert "unpadded_in" in c
    if want == "kernel":
        assert s["kernel_tx"] == "1" and d.get("TlsTxSw", 0) == 1, (s, d)


# GnuTLS pads per call (gnutls_record_send2's pad), known only once the
# session has moved: the kernel then sends the record unpadded, as GnuTLS's
# own kTLS does (3.7.9-3.8.9 drop pad there too), and the shim says so
# once. In userspace GnuTLS pads. 1,000-byte sends with 100 bytes of
# padding: a record body of 1000 + 1 + 16 unpadded, 1117 padded.
def test_gnutls_send2_padding_once_said(certs, shim_config):
    cert, key = certs["ec"]
    before = tls_stat()
    srv = Proc([GXFER, "--role", "server", "--port", "0", "--cert", cert,
                "--key", key, "--tls", "1.3", "--cipher", "AES-128-GCM",
                "--send", str(MiB), "--chunk", "1000", "--pad", "100"],
               shim_env(shim_config))
    cli = Proc([GXFER, "--role", "client", "--port", str(srv.read_port()),
                "--tls", "1.3", "--cipher", "AES-128-GCM", "--send", "4096",
                "--record-sizes"], plain_env())
    crc, src = cli.wait(), srv.wait()
    assert crc == 0 and src == 0, (crc, src, cli.err, srv.err[-2000:])
    c, s = one_conn_intact(cli.out, srv.out, 4096, back=MiB)
    (sess,) = shim_sessions(srv.err)
    said = srv.err.count("gnutls_record_send2() asked for record padding")
    if KERNEL:
        assert sess["tx"] == "kernel" and said == 1, srv.err[-2000:]
        assert int(c["max_record_in"]) == 1000 + 1 + 16, c
        assert delta(before, tls_stat()).get("TlsTxSw", 0) == 1
    else:
        assert sess["tx"] == "kernel-has-no-tls" and said == 0, sess
        assert int(c["max_record_in"]) == 1000 + 100 + 1 + 16, c
