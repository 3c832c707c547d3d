"""TLS 1.3 KeyUpdate on GnuTLS sessions the shim moved (shim/gnutls/secrets.c, shim/session/keyupdate.c).

Where the kernel can rekey (6.14+: REKEY) the shim learns the application
traffic secrets from GnuTLS's keylog function and follows every KeyUpdate:
the peer's (next RX key), the program's gnutls_session_key_update and the
answers to update_requested (next TX key), and its own at the TX key's
byte budget (key_update_bytes). Transfers stay intact (sha256 both ends)
and the kernel's rekey counters move by exactly what the shim logged.
Where it cannot (6.1), TLS 1.3 RX stays in GnuTLS, which reads the peer's
KeyUpdates itself, and a KeyUpdate the program asks for is refused while
the session goes on intact. Without kTLS nothing changes.
"""
import hashlib
import os
import select
import subprocess
import time

import pytest

from conftest import (BIG, KERNEL, REKEY, XFER, MiB, Proc, delta, free_port,
                      parse_conns, plain_env, shim_env, shim_sessions,
                      tls_stat, wait_port)

N = 6  # the peer's KeyUpdates; tls_xfer asks for an answer on every other
ECHO = min(BIG, 2 * MiB)
PRIO = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM"
RX_LINE = "KeyUpdate received; next RX key installed"
TX_LINE = "KeyUpdate sent"


def log_path(workdir, name):
    p = workdir / f"{name}.shimlog"
    if p.exists():
        p.unlink()
    return p


def check_moved(log_text):
    (s,) = shim_sessions(log_text)
    assert s["engine"] == "gnutls" and s["version"] == "TLSv1.3", s
    if KERNEL:
        assert s["tx"] == "kernel", s
        assert s["rx"] == ("kernel" if REKEY
                           else "kernel-cannot-rekey-tls13"), s


@pytest.mark.parametrize("budget", [None, MiB])
def test_gnutls_serv_follows_peer_key_updates(budget, certs, shim_config,
                                              workdir):
    """Shimmed gnutls-serv --echo; the unshimmed OpenSSL client sends
    N KeyUpdates while the echo flows back, half asking for an answer.
    With budget, the shim also rekeys its own TX every `budget` bytes."""
    port = free_port()
    log = log_path(workdir, f"ku-serv-{budget}")
    # GnuTLS's own SSLKEYLOGFILE writer is the session's keylog function
    # the shim chains behind its own: it must still see every line.
    keylog = workdir / f"ku-serv-{budget}.keylog"
    if keylog.exists():
        keylog.unlink()
    extra = {"KTLS_SHIM_LOG": f"file:{log}", "SSLKEYLOGFILE": str(keylog)}
    if budget:
        extra["KTLS_SHIM_KEY_UPDATE_BYTES"] = str(budget)
    srv = Proc(["gnutls-serv", "--echo", "-p", str(port),
                "--x509certfile", certs["ec"][0],
                "--x509keyfile", certs["ec"][1], "--priority", PRIO],
               shim_env(shim_config, **extra), quiet=True)
    wait_port(port)
    before = tls_stat()
    cli = subprocess.run([XFER, "--role", "client", "--port", str(port),
                          "--tls", "1.3", "--send", str(ECHO),
                          "--recv-until", str(ECHO), "--text",
                          "--key-updates", str(N)], env=plain_env(),
                         capture_output=True, text=True, timeout=600)
    d = delta(before, tls_stat())
    srv.p.terminate()
    srv.p.wait(timeout=30)
    text = log.read_text()
    assert cli.returncode == 0, cli.stderr + text[-3000:]
    (c,) = parse_conns(cli.stdout)
    assert int(c["sent"]) == int(c["recv"]) == ECHO
    assert c["sent_sha256"] == c["recv_sha256"]
    check_moved(text)
    assert "failing this connection" not in text, text[-3000:]
    secrets = {l.split()[0]: l.split()[2] for l in
               keylog.read_text().splitlines() if len(l.split()) == 3}
    assert {"CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"} <= set(
        secrets), secrets.keys()
    for v in secrets.values():  # never logged
        assert v.lower() not in text.lower()
    rx, tx = text.count(RX_LINE), text.count(TX_LINE)
    if REKEY:
        assert rx == N == d.get("TlsRxRekeyOk", 0), (rx, d)
        # Every requested answer went out before the next echo data.
        assert tx == d.get("TlsTxRekeyOk", 0) >= 1, (tx, d)
        if budget:
            assert tx >= ECHO // budget - 1, (tx, d)
        assert d.get("TlsRxRekeyError", 0) == 0, d
        assert d.get("TlsTxRekeyError", 0) == 0, d
        assert d.get("TlsDecryptError", 0) == 0, d
    else:
        # GnuTLS read them itself (RX in userspace); nothing rekeyed.
        assert rx == tx == 0, text[-3000:]
        assert d.get("TlsTxRekeyOk", 0) == 0, d


def _read_until(p, want, buf, timeout):
    fd = p.stdout.fileno()
    end = time.time() + timeout
    while len(buf) < want:
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        chunk = os.read(fd, 1 << 16) if r else b""
        if not chunk:
            raise AssertionError(f"echo stopped at {len(buf)} of {want}")
        buf += chunk
    return buf


def _wait_log(path, text, count, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if path.exists() and path.read_text().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


K = 4  # KeyUpdates gnutls-cli sends, each asking for an answer


@pytest.mark.parametrize("shimmed", ["client", "server"])
def test_gnutls_key_updates_with_gnutls_peer(shimmed, certs, shim_config,
                                             workdir):
    """gnutls-cli (--inline-commands ^rekey^) and gnutls-serv --echo, one
    of them shimmed: K times, a chunk of text and its echo, then the
    client's gnutls_session_key_update(GNUTLS_KU_PEER). The echo of every
    chunk must come back intact. Shimmed client: the shim sends each
    KeyUpdate and rekeys TX. Shimmed server: the shim follows each one on
    RX and sends the answer asked for before its next echo (GnuTLS 3.7's
    own gnutls-serv answers too, on its own schedule: counted, not
    fixed)."""
    port = free_port()
    log = log_path(workdir, f"ku-gnutls-{shimmed}")
    senv = shim_env(shim_config, KTLS_SHIM_LOG=f"file:{log}")
    srv = Proc(["gnutls-serv", "--echo", "-p", str(port),
                "--x509certfile", certs["ec"][0],
                "--x509keyfile", certs["ec"][1], "--priority", PRIO],
               senv if shimmed == "server" else plain_env(), quiet=True)
    wait_port(port)
    info = workdir / f"ku-gnutls-{shimmed}.info"
    if info.exists():
        info.unlink()
    before = tls_stat()
    cli = subprocess.Popen(
        ["gnutls-cli", "--insecure", "-p", str(port), "127.0.0.1",
         "--priority", PRIO, "--inline-commands", f"--logfile={info}"],
        env=senv if shimmed == "client" else plain_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    # The shim's line that shows a command went through (gnutls-cli's own
    # log is buffered until exit); where there is none, time.
    refused = KERNEL and not REKEY and shimmed == "client"
    seen = (TX_LINE if shimmed == "client" else RX_LINE) if REKEY else (
        "refusing gnutls_session_key_update" if refused else None)
    # Pieces well under a pipe's 64 KiB, each echoed before the next:
    # gnutls-cli must never block on a full stdout while we write.
    sent, echoed = hashlib.sha256(), b""
    piece = b"".join(b"%07d abcdefghijklmnopqrstuvwxyz0123456789\n" % i
                     for i in range(16 * 1024 // 48))
    total = 0
    try:
        for i in range(K + 1):
            for _ in range(8):
                cli.stdin.write(piece)
                cli.stdin.flush()
                sent.update(piece)
                total += len(piece)
                echoed = _read_until(cli, total, echoed, 300)
            if i < K:
                # Read by gnutls-cli on its own, never merged with the
                # next piece.
                cli.stdin.write(b"^rekey^\n")
                cli.stdin.flush()
                if seen:
                    assert _wait_log(log, seen, i + 1, 60), i
                else:
                    time.sleep(1)
                if refused:
                    break  # gnutls-cli gives up on a failed rekey
        cli.stdin.close()
        rc = cli.wait(timeout=60)
        assert refused or rc == 0, rc  # refused: it exits with an error
    except (OSError, AssertionError) as e:
        raise AssertionError(
            f"{e!r}\n{info.read_text() if info.exists() else ''}\n"
            f"{log.read_text()[-3000:] if log.exists() else ''}") from e
    finally:
        if cli.poll() is None:
            cli.kill()
        srv.p.terminate()
        srv.p.wait(timeout=30)
    d = delta(before, tls_stat())
    assert hashlib.sha256(echoed).hexdigest() == sent.hexdigest()
    text, status = log.read_text(), info.read_text()
    check_moved(text)
    assert "failing this connection" not in text, text[-3000:]
    if KERNEL:
        assert d.get("TlsDecryptError", 0) == 0, d
    if REKEY:
        assert status.count("Rekey was completed") == K, status
        if shimmed == "client":
            assert text.count(TX_LINE) == K == d.get("TlsTxRekeyOk", 0), d
            assert text.count(RX_LINE) == d.get("TlsRxRekeyOk", 0), d
            assert text.count("(update requested)") == K, text
        else:
            assert text.count(RX_LINE) == K == d.get("TlsRxRekeyOk", 0), d
            assert text.count(TX_LINE) == K == d.get("TlsTxRekeyOk", 0), d
        assert d.get("TlsRxRekeyError", 0) == 0, d
        assert d.get("TlsTxRekeyError", 0) == 0, d
    elif refused:
        # 6.1 cannot take a next TX key: gnutls_session_key_update fails
        # (GNUTLS_E_UNIMPLEMENTED_FEATURE) and nothing is sent under a key
        # the peer does not expect; what came before is intact.
        assert text.count("refusing gnutls_session_key_update") == 1, text
        assert d.get("TlsTxRekeyOk", 0) == 0, d
    else:
        # Server on 6.1 (RX in GnuTLS, which reads them) or no kTLS.
        assert status.count("Rekey was completed") == K, status
        assert text.count(RX_LINE) == text.count(TX_LINE) == 0, text
