"""GnuTLS sessions over the program's own transport (issue 17, first step):
gnutls_xfer --transport MODE (tests/tools/gnutls_transport.c) gives its
session its own push (or vec_push) and pull functions, as qemu does, and
runs shimmed, client and server in turn, against an unshimmed OpenSSL
tls_xfer.

The shim watches the libc calls those functions make during
gnutls_handshake and moves the session into the kernel only where it
proves that every byte went, inside the call, unchanged and in order, to
and from one TCP socket: push (write/read) and vec (sendmsg/recvmsg,
qemu's shape) move, their session line saying transport=own. Every other
shape stays in userspace with its reason: a pull that reads ahead (curl's
kind), a push that queues for later (Apache's), two fds, calls the shim
does not see (send/recv), and any custom transport with
custom_transports = no. Each case checks every byte both ways (sha256 at
both ends), the shim's session line and summary, its public query on the
socket (ktls_shim_fd_info), the kernel's own answer (getsockopt SOL_TLS)
and, where the kernel has kTLS, /proc/net/tls_stat."""
import re

import pytest

from conftest import (BIG, KERNEL, MiB, gnutls_xfer_pair, one_conn_intact,
                      rx_moves, rx_state, shim_env, shim_summary)

# A few MiB each way crosses hundreds of records and both directions; the
# VM (software-emulated CPU) runs 16 such transfers and more.
N = min(BIG // 4, 2 * MiB)

# The session line of a custom transport may name no fd (-1: none seen),
# which conftest's SESSION_RE (fd=\d+) does not take; what follows
# verified=getsockopt is kept for transport=own.
SESSION_RE = re.compile(
    r"session fd=(-?\d+) (\S+) (\S+) tx=(\S+) rx=(\S+) engine=(\S+) "
    r"verified=getsockopt([^\n]*)")


def sessions(stderr):
    return [dict(zip(("fd", "version", "cipher", "tx", "rx", "engine",
                      "rest"), m)) for m in SESSION_RE.findall(stderr)]


def run_pair(role, mode, tls, certs, env, extra=()):
    """Shimmed gnutls_xfer (role, --transport mode) against an unshimmed
    tls_xfer, N bytes each way; returns (gnutls_xfer's conn line, its
    stderr, the tls_stat delta) once both ends agree on every byte."""
    vers = ["--tls", tls] if tls else []
    gx, peer, d = gnutls_xfer_pair(
        role, certs, vers + ["--send", str(N), "--seed", "5", "--transport",
                             mode] + list(extra),
        vers + ["--send", str(N), "--seed", "6"], env)
    g, p = one_conn_intact(gx.out, peer.out, N)
    assert g["sent_sha256"] != p["sent_sha256"]  # two streams, two seeds
    assert g["version"] == p["version"], (g, p)
    if tls:
        assert g["version"] == f"TLSv{tls}", g
    return g, gx.err, d


def one_session(stderr):
    sess = sessions(stderr)
    assert len(sess) == 1, stderr[-3000:]
    s = sess[0]
    assert s["engine"] == "gnutls", s
    return s


# (mode, tls, extra gnutls_xfer options): the shapes the shim can prove.
MOVES = [("push", "1.2", []), ("push", "1.3", []), ("vec", "1.2", []),
         ("vec", "1.3", []), ("vec", "1.3", ["--blocking"]),
         ("send", "1.3", [])]


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize(
    "mode,tls,extra", MOVES,
    ids=[f"{m}-{t}{'-blocking' if x else ''}" for m, t, x in MOVES])
def test_own_transport_moves(mode, tls, extra, role, certs, shim_config):
    """push (write/read) and vec (sendmsg/recvmsg, qemu's shape) carry
    every byte straight to and from the socket: the shim learns the socket
    and the session moves as one over gnutls_transport_set_int does
    (test_gnutls.py), its line saying transport=own."""
    g, err, d = run_pair(role, mode, tls, certs, shim_env(shim_config),
                         extra)
    s = one_session(err)
    want_tx = "kernel" if KERNEL else "kernel-has-no-tls"
    want_rx = rx_state(tls)
    assert (s["version"], s["cipher"]) == (g["version"], g["cipher"]), (s, g)
    assert (s["tx"], s["rx"]) == (want_tx, want_rx), s
    assert "transport=own" in s["rest"].split(), s
    # The socket it learned is the one gnutls_xfer used: the shim's public
    # query on that fd tells the same story, and the kernel's own answer
    # agrees.
    assert int(s["fd"]) >= 0, s
    bits = int(KERNEL) | int(rx_moves(tls)) << 1
    assert g["shim"] == (f"kernel={bits},tracked=1,tx={want_tx},"
                         f"rx={want_rx}"), g
    assert g["kernel_tx"] == str(int(KERNEL)), g
    assert g["kernel_rx"] == str(int(rx_moves(tls))), g
    summ = shim_summary(err)
    assert summ["sessions"] == 1, summ
    assert summ["tx_kernel"] == int(KERNEL), summ
    assert summ["rx_kernel"] == int(rx_moves(tls)), summ
    if KERNEL:
        assert d.get("TlsTxSw", 0) == 1, d
        assert d.get("TlsRxSw", 0) == int(rx_moves(tls)), d
        assert d.get("TlsDecryptError", 0) == 0, d
        assert summ["bytes_tx"] == N, summ
    if rx_moves(tls):
        assert summ["bytes_rx"] == N, summ


# mode -> the reason both directions give: what the shim must refuse.
REFUSED = {
    "readahead": "transport-reads-ahead",    # pull buffers 16 KiB ahead
    "queue": "transport-queues-writes",      # push returns before writing
    "dupfd": "transport-two-fds",            # push on a dup(), pull not
    "sendto": "transport-unseen",            # sendto()/recvfrom(): not hooked
}


def check_stays(g, err, d, reason):
    """The session stayed in userspace with reason, both directions, and
    nothing of it reached the kernel."""
    s = one_session(err)
    assert (s["tx"], s["rx"]) == (reason, reason), s
    assert (s["version"], s["cipher"]) == (g["version"], g["cipher"]), (s, g)
    assert g["kernel_tx"] == g["kernel_rx"] == "0", g
    assert g["shim"] == "-" or g["shim"].startswith("kernel=0,"), g
    summ = shim_summary(err)
    assert summ["sessions"] == 1, summ
    assert summ["tx_kernel"] == summ["rx_kernel"] == 0, summ
    assert summ["bytes_tx"] == summ["bytes_rx"] == 0, summ
    assert f"tx:{reason}=1" in summ["rest"], summ
    assert f"rx:{reason}=1" in summ["rest"], summ
    assert d.get("TlsTxSw", 0) == d.get("TlsRxSw", 0) == 0, d
    assert d.get("TlsDecryptError", 0) == 0, d


@pytest.mark.parametrize("io", ["nonblocking", "blocking"])
@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("mode", list(REFUSED))
def test_own_transport_refused(mode, role, io, certs, shim_config):
    """A transport whose bytes the shim cannot prove go straight to one
    TCP socket stays in userspace, intact, with the reason (the default
    version: what is refused does not depend on it). Non-blocking, the
    handshake is many gnutls_handshake calls (each EAGAIN ends one); the
    reason must not depend on that."""
    g, err, d = run_pair(role, mode, None, certs, shim_env(shim_config),
                         ["--blocking"] if io == "blocking" else [])
    check_stays(g, err, d, REFUSED[mode])


@pytest.mark.parametrize("how,role", [("env", "server"),
                                      ("config", "client")])
def test_custom_transports_off(how, role, certs, workdir):
    """custom_transports = no (or KTLS_SHIM_CUSTOM_TRANSPORTS=no): even
    qemu's shape, which would move, stays with GnuTLS."""
    conf = workdir / f"custom-transports-{how}.conf"
    conf.write_text("custom_transports = no\n" if how == "config"
                    else "# tests: defaults only\n")
    extra = {"KTLS_SHIM_CUSTOM_TRANSPORTS": "no"} if how == "env" else {}
    g, err, d = run_pair(role, "vec", None, certs,
                         shim_env(str(conf), **extra))
    check_stays(g, err, d, "custom-transports-off")
