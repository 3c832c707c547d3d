"""sendfile() on TLS sockets under the shim: zero-copy through the kernel
when TX is there, emulated through the TLS session when it is not, never
plaintext on the wire. The peer is an unshimmed OpenSSL that checks every
byte (sha256) and would fail on a plaintext record."""
import pytest

from conftest import (BIG, KERNEL, XFER, MiB, Proc, delta, make_file,
                      parse_conns, plain_env, shim_env, shim_sessions,
                      shim_summary, tls_stat)


@pytest.fixture(scope="module")
def odd_file(workdir):
    path = workdir / "sendfile.bin"
    return path, make_file(path, BIG // 2 + 4097, seed=5)


def serve(certs, tls):
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--send", str(MiB)], plain_env())
    return srv, srv.read_port()


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("offsets", ["offset", "file-position"])
def test_sendfile_through_shim(tls, offsets, certs, shim_config, odd_file):
    path, digest = odd_file
    srv, port = serve(certs, tls)
    before = tls_stat()
    extra = ["--sendfile-nooff"] if offsets == "file-position" else []
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", tls,
                "--sendfile", str(path), "--chunk", "1000000", *extra],
               shim_env(shim_config))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"] == digest
    assert int(s["recv"]) == path.stat().st_size
    summ = shim_summary(cli.err)
    d = delta(before, tls_stat())
    if KERNEL:
        # Zero-copy: the kernel encrypted the file pages it was handed.
        assert shim_sessions(cli.err)[0]["tx"] == "kernel"
        assert summ["bytes_tx"] == path.stat().st_size
        assert "sendfile_emulated" not in summ["rest"]
        assert (f"sendfile_kernel_bytes={path.stat().st_size}"
                in summ["rest"]), summ
        assert d["TlsTxSw"] == 1
    else:
        assert (f"sendfile_emulated_bytes={path.stat().st_size}"
                in summ["rest"]), summ


def test_sendfile_without_shim_would_leak_plaintext(certs, odd_file):
    """The hazard the emulation removes, shown: a program calling sendfile
    on a userspace TLS session puts the file's plaintext on the wire, and
    the peer rejects it. (Our own tls_xfer never sets SSL_OP_ENABLE_KTLS.)
    The file starts with 8 zero bytes (make_file stamps each 64 KiB block
    with its index), read by the peer as a record header of version 0x0000:
    OpenSSL's "wrong version number", on the first record, before any
    application byte. The sender then fails too, on the reset (its
    sendfile() or its read of the peer's data), never with a transfer."""
    path, _ = odd_file
    with open(path, "rb") as f:
        assert f.read(8) == bytes(8)
    srv, port = serve(certs, "1.2")
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", "1.2",
                "--sendfile", str(path)], plain_env())
    assert cli.wait() != 0, cli.out + cli.err
    assert not parse_conns(cli.out), cli.out
    assert srv.wait() != 0, srv.out
    # The reason, not the function: 3.0 says ssl3_get_record, 3.2+
    # tls_default_validate_record_header (measured: OpenSSL 3.5.10).
    assert ":wrong version number:" in srv.err, srv.err
    assert not parse_conns(srv.out), srv.out



@pytest.mark.parametrize("tls", ["1.3"])  # a TX-only option: one version
def test_sendfile_tx_zerocopy_ro_opt_in(tls, certs, shim_config, odd_file):
    """tx_zerocopy_ro = yes: the shim asks for TLS_TX_ZEROCOPY_RO once TX
    is in the kernel and reports what the kernel decided. Kernels since
    5.19 (both VM kernels) accept it on software kTLS too, where it is
    unused (only device offload reads the file pages in place); either way
    the bytes must arrive intact through sendfile()."""
    path, digest = odd_file
    srv, port = serve(certs, tls)
    before = tls_stat()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", tls,
                "--sendfile", str(path), "--chunk", "1000000"],
               shim_env(shim_config, KTLS_SHIM_TX_ZEROCOPY_RO="yes"))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"] == digest
    line = next(l for l in cli.err.splitlines() if " session fd=" in l)
    summ = shim_summary(cli.err)
    if KERNEL:
        assert line.endswith(" tx_zerocopy_ro=on"), line
        assert (f"sendfile_kernel_bytes={path.stat().st_size}"
                in summ["rest"]), summ
        assert delta(before, tls_stat())["TlsTxSw"] == 1
    else:
        # TX never reached the kernel: nothing to ask for.
        assert "tx_zerocopy_ro" not in line, line
