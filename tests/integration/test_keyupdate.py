"""TLS 1.3 KeyUpdate with the session's keys in the kernel.

Where the kernel can rekey (6.14+: REKEY), the shim's engine follows every
KeyUpdate in both directions: transfers with many KeyUpdates, from the
program and from the unshimmed peer, with and without update_requested,
complete intact, and the kernel's rekey counters move by exactly as many.
Where it cannot (6.1), a KeyUpdate the program asks for is refused and the
session goes on intact; one the peer sends fails the connection with a
clear error (EKEYEXPIRED reaches the program), never with wrong bytes.
On a kernel without kTLS nothing changes: KeyUpdates just work.
"""
import pytest

from conftest import (BIG, KERNEL, NO_KTLS_PRELOAD, OSSL_REKEYS, REKEY, XFER,
                      Proc, delta, parse_conns, plain_env, shim_env,
                      shim_sessions, shim_summary, tls_stat)

N = 6  # KeyUpdates per transfer; every other one asks the peer to update


def run(certs, shim_config, shimmed, updater, env_extra=None):
    """A transfer where `updater` (client or server) sends S bytes with N
    KeyUpdates and the other side sends 2*S, so that it is still sending
    (and can answer update_requested) when the KeyUpdates arrive.
    `shimmed` is the side under the shim. Returns (client, server) Procs
    and the /proc/net/tls_stat delta."""
    size = max(BIG // 8, 1 << 20)
    extra = env_extra or {}

    def argv(role, port):
        a = [XFER, "--role", role, "--port", str(port), "--tls", "1.3",
             "--send", str(size if role == updater else 2 * size)]
        if role == updater:
            a += ["--key-updates", str(N)]
        if role == "server":
            a += ["--cert", certs["ec"][0], "--key", certs["ec"][1]]
        return a

    def env(role):
        return (shim_env(shim_config, **extra) if role == shimmed
                else plain_env())

    before = tls_stat()
    srv = Proc(argv("server", 0), env("server"))
    port = srv.read_port()
    cli = Proc(argv("client", port), env("client"))
    cli.wait(), srv.wait()
    return cli, srv, delta(before, tls_stat())


def intact(cli, srv):
    assert cli.p.returncode == 0, cli.err
    assert srv.p.returncode == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    assert int(c["sent"]) == int(s["recv"]) and int(s["sent"]) == int(
        c["recv"])
    return c, s


def one_session(proc):
    """A KeyUpdate is never a new session: 3.2+ asks for the ULP and
    installs each next key again, as at the first install, in the kernel
    or (failing there) in userspace."""
    summary = shim_summary(proc.err)
    assert summary["sessions"] == 1, proc.err
    assert len(shim_sessions(proc.err)) == 1, proc.err
    return summary


def rekeys(proc):
    """The shim's rekey counts."""
    rest = one_session(proc)["rest"]
    got = {}
    for k in ("rekeys_tx", "rekeys_rx"):
        got[k] = int(rest.split(f"{k}=")[1].split()[0]) if k in rest else 0
    return got


SIDES = ["client", "server"]
# auto: OpenSSL 3.0 installs TX, the shim's engine RX (3.2+: OpenSSL
# both, and each KeyUpdate's next key); shim: the engine both; no-ktls: a
# libssl without kTLS, the shim's engine and record layer both (TLS 1.3
# only where the kernel can rekey: elsewhere nothing moves).
ENGINES = {"auto": {}}
# The engine and the record layer need 3.0/3.1's record layer: on 3.2+
# those sessions stay in userspace, which test_matrix.py and
# test_openssl_without_ktls.py check (CI time). Where TLS 1.3 stays in
# userspace whole (6.1) the no-ktls case is OpenSSL's own: likewise.
if not OSSL_REKEYS:
    ENGINES["shim"] = {"KTLS_SHIM_ENGINE": "shim"}
    if REKEY or not KERNEL:
        ENGINES["no-ktls"] = {"LD_PRELOAD": NO_KTLS_PRELOAD}


def in_kernel(engine):
    """Whether this engine puts TLS 1.3 into the kernel here."""
    return KERNEL and (REKEY or engine != "no-ktls")


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("side", SIDES)
def test_program_key_updates(side, engine, certs, shim_config):
    """The shimmed program calls SSL_key_update N times while sending."""
    cli, srv, d = run(certs, shim_config, side, side, ENGINES[engine])
    intact(cli, srv)
    me = cli if side == "client" else srv
    one_session(me)
    refused = me.err.count("SSL_key_update refused")
    if REKEY:
        assert refused == 0, me.err
        r = rekeys(me)
        assert r["rekeys_tx"] == N, me.err
        assert d.get("TlsTxRekeyOk", 0) == N, d
        # The answers to update_requested came back through kernel RX.
        assert r["rekeys_rx"] == d.get("TlsRxRekeyOk", 0) >= 1, (r, d)
        assert d.get("TlsTxRekeyError", 0) == d.get("TlsRxRekeyError", 0) == 0
    elif in_kernel(engine):
        # Neither OpenSSL 3.0 nor a kernel before 6.14 can take the next
        # TX key: the shim refuses each KeyUpdate, the session goes on.
        assert refused == N, me.err
    else:
        assert refused == 0, me.err


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("side", SIDES)
def test_peer_key_updates(side, engine, certs, shim_config):
    """The unshimmed peer sends N KeyUpdates, half asking us to update."""
    peer = "server" if side == "client" else "client"
    cli, srv, d = run(certs, shim_config, side, peer, ENGINES[engine])
    me, other = (cli, srv) if side == "client" else (srv, cli)
    if REKEY or not in_kernel(engine):
        intact(cli, srv)
        one_session(me)
        if REKEY:
            r = rekeys(me)
            assert r["rekeys_rx"] == N == d.get("TlsRxRekeyOk", 0), (r, d)
            assert r["rekeys_tx"] == d.get("TlsTxRekeyOk", 0) >= 1, (r, d)
        return
    # 6.1, RX left in userspace (the default there): OpenSSL reads the
    # KeyUpdate itself, but its answer would go out through the kernel
    # under the old key. The shim refuses it and fails the connection.
    assert me.p.returncode != 0, me.out
    assert "KeyUpdate" in me.err and "failing this connection" in me.err
    assert "Key has expired" in me.err  # EKEYEXPIRED reached the program
    for c in parse_conns(other.out):
        assert int(c["recv"]) < 2 * max(BIG // 8, 1 << 20)


@pytest.mark.kernel_cannot_rekey
@pytest.mark.parametrize("side", SIDES)
def test_peer_key_update_without_rekey_fails_cleanly(side, certs,
                                                     shim_config):
    """tls13_rx_without_rekey = yes on 6.1: TLS 1.3 RX is in the kernel,
    and the peer's first KeyUpdate must end the connection with a clear
    error before any record under the next key is read."""
    peer = "server" if side == "client" else "client"
    cli, srv, d = run(certs, shim_config, side, peer,
                      {"KTLS_SHIM_TLS13_RX_WITHOUT_REKEY": "yes"})
    me = cli if side == "client" else srv
    assert me.p.returncode != 0, me.out
    # 3.0: the shim's engine moved RX; 3.2+: OpenSSL did.
    assert ("engine=openssl " if OSSL_REKEYS else "rx:shim") in me.err, \
        me.err
    assert "rx=kernel" in me.err, me.err
    assert "KeyUpdate from the peer: this kernel cannot take the next key" \
        in me.err, me.err
    # The shim refused 3.2+'s re-install with EKEYEXPIRED, which OpenSSL
    # reports as its own record-layer error.
    assert ("no suitable record layer" if OSSL_REKEYS
            else "Key has expired") in me.err, me.err
    # Nothing was decrypted under a wrong key: no decrypt errors at all.
    assert d.get("TlsDecryptError", 0) == 0, d


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("side", SIDES)
def test_shim_key_update_at_byte_budget(side, engine, certs, shim_config):
    """key_update_bytes: after that many bytes under one TX key the shim
    has OpenSSL send a KeyUpdate (AES-GCM's limit, RFC 8446 5.5, by
    default; 1M here so a test sees several). Only where the kernel can
    take the next key; elsewhere nothing is sent and nothing breaks."""
    size = 8 * (1 << 20)
    before = tls_stat()
    peer = "server" if side == "client" else "client"

    def argv(role, port):
        a = [XFER, "--role", role, "--port", str(port), "--tls", "1.3",
             "--cipher", "TLS_AES_128_GCM_SHA256",
             "--send", str(size if role == side else 1 << 20)]
        if role == "server":
            a += ["--cert", certs["ec"][0], "--key", certs["ec"][1]]
        return a

    env = {side: shim_env(shim_config, KTLS_SHIM_KEY_UPDATE_BYTES="1M",
                          **ENGINES[engine]),
           peer: plain_env()}
    srv = Proc(argv("server", 0), env["server"])
    cli = Proc(argv("client", srv.read_port()), env["client"])
    cli.wait(), srv.wait()
    intact(cli, srv)
    d = delta(before, tls_stat())
    me = cli if side == "client" else srv
    r = rekeys(me)
    if REKEY:
        # One KeyUpdate per MiB sent, give or take the write in flight.
        assert 6 <= r["rekeys_tx"] <= 8, me.err
        assert d.get("TlsTxRekeyOk", 0) == r["rekeys_tx"], d
        assert me.err.count("KeyUpdate scheduled") == r["rekeys_tx"]
    else:
        assert r["rekeys_tx"] == 0 and "KeyUpdate scheduled" not in me.err


ABORT = __import__("os").path.join(__import__("os").path.dirname(__file__),
                                   "pyssl_abort.py")


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_abortive_close_by_peer(tls, engine, certs, shim_config):
    """The peer resets the connection (no close_notify) while the shimmed
    side, with RX in the kernel where it can be, still reads: the program
    sees the error OpenSSL gives without the shim (SSL_ERROR_SYSCALL with
    ECONNRESET, or an unexpected EOF), never a decrypt error or garbage."""
    import sys
    outcomes = {}
    for shimmed in (False, True):
        before = tls_stat()
        srv = Proc([sys.executable, ABORT, "--cert", certs["ec"][0],
                    "--key", certs["ec"][1], "--send", str(4 << 20),
                    "--tls", tls], plain_env())
        port = srv.read_port()
        cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls",
                    tls, "--send", "1"],
                   shim_env(shim_config, **ENGINES[engine]) if shimmed
                   else plain_env())
        rc = cli.wait()
        assert srv.wait() == 0, srv.err
        d = delta(before, tls_stat())
        assert rc != 0, cli.out  # a reset is never a clean end
        err = cli.err
        ok = ("SSL_get_error=5 errno=104" in err
              or "unexpected eof while reading" in err)
        assert ok, err
        assert "bad record mac" not in err and "decrypt" not in err, err
        assert d.get("TlsDecryptError", 0) == 0, d
        if shimmed and KERNEL:
            # It was a kernel session that saw the reset.
            assert d.get("TlsRxSw", 0) == (tls == "1.2" or REKEY), d
        outcomes[shimmed] = ok
    assert outcomes[True] == outcomes[False]
