"""ktls-shim-stats check (tools/stats_check*.c) tells the truth where it
runs: on a kernel without kTLS (this host) it exits 1 and its FAIL line
says the kernel refused the TLS ULP; where kTLS is there (the VM suites) it
exits 0, lists the AEADs the kernel took and says whether it can rekey as
conftest's own probes found. Library versions are compared with what the
libraries say through other programs; the config line with the shim's own
error for the same file."""
import os
import re
import ssl
import subprocess

import pytest

from conftest import (ASAN_RT, BUILD, CONFIG_PATH, KERNEL, REKEY, REQUIRE_ALL,
                      SHIM, Proc, delta, free_port, plain_env, san_options,
                      shim_sessions, tls_stat)
from test_programs import s_client_get

STATS = os.path.join(BUILD, "tools", "ktls-shim-stats")
LINE_RE = re.compile(r"^(ok|warn|FAIL|info) +([a-z0-9-]+) +(\S.*)$")

# Under the project's runner (KTLS_REQUIRE_ALL=1) a missing tool fails.
pytestmark = [
    pytest.mark.needs_bpf,
    pytest.mark.skipif(not os.path.exists(STATS) and not REQUIRE_ALL,
                       reason="built without -Dbpf (no ktls-shim-stats)")]


def check(argv=None, **env_extra):
    env = plain_env()
    env.update(env_extra)
    r = subprocess.run(argv or [STATS, "check"], env=env,
                       capture_output=True, text=True, timeout=60)
    lines = {}
    for line in r.stdout.splitlines():
        m = LINE_RE.match(line)
        assert m, f"not a check line: {line!r}"
        assert m.group(2) not in lines, f"twice: {line!r}"
        lines[m.group(2)] = (m.group(1), m.group(3))
    return r, lines


def test_check_tells_whether_ktls_works_here():
    r, lines = check()
    assert r.stderr == ""
    assert lines["verdict"][0] == ("ok" if KERNEL else "FAIL"), r.stdout
    assert r.returncode == (0 if KERNEL else 1), r.stdout
    assert lines["tls-ulp"][0] == ("ok" if KERNEL else "FAIL"), r.stdout
    if not KERNEL:
        assert 'setsockopt(TCP_ULP, "tls") refused' in lines["tls-ulp"][1]
        assert "aeads" not in lines and "rekey" not in lines
        return
    st, aeads = lines["aeads"]
    # What the VM kernels take (FACTS.md; the matrix moves each of them).
    assert st == "ok" and aeads.startswith(
        "TLS 1.2: aes-128-gcm aes-256-gcm chacha20-poly1305 aes-128-ccm; "
        "TLS 1.3: aes-128-gcm aes-256-gcm chacha20-poly1305"), aeads
    assert lines["rekey"][0] == ("ok" if REKEY else "warn"), r.stdout
    assert lines["tls-module"][0] == "ok", r.stdout


def test_check_reports_the_libraries_installed():
    _, lines = check()
    assert lines["libssl"] == ("ok", lines["libssl"][1])
    assert lines["libssl"][1].startswith(ssl.OPENSSL_VERSION + ": ")
    v = subprocess.run(["gnutls-cli", "--version"], capture_output=True,
                       text=True).stdout.split()[1]
    assert lines["gnutls"][1].startswith(f"GnuTLS {v}: "), lines["gnutls"]


def test_check_reads_the_config_the_shim_reads(tmp_path):
    _, lines = check()
    assert lines["config"][1].startswith(CONFIG_PATH + ": "), lines
    bad = tmp_path / "bad.conf"
    bad.write_text("log_level = warn\nengine = turbo\n")
    r, lines = check(KTLS_SHIM_CONFIG=str(bad))
    assert r.returncode == 1
    assert lines["config"][0] == "FAIL", r.stdout
    # The shim's own words for the same file.
    env = dict(plain_env(), LD_PRELOAD=f"{ASAN_RT}:{SHIM}" if ASAN_RT
               else SHIM, KTLS_SHIM_CONFIG=str(bad))
    if ASAN_RT:
        env.update(san_options())
    shim = subprocess.run(["/bin/true"], env=env, capture_output=True,
                          text=True)
    said = shim.stderr.split("ktls-shim: ", 1)[1].split(";")[0]
    assert said.startswith(f"{bad}:2: ") and said in lines["config"][1]
    r, lines = check(KTLS_SHIM_ENABLE="no")
    assert r.returncode == 1 and "enabled = no" in lines["config"][1]


def test_ktls_run_check_is_the_same():
    r1, lines1 = check()
    r2, lines2 = check([os.path.join(BUILD, "tools", "ktls-run"),
                        "--check"])
    assert r2.returncode == r1.returncode
    assert lines2.keys() == lines1.keys()


def test_ktls_run_s_server_moves_where_check_says_ok(certs, workdir):
    """The operator's two steps: check, then the server under ktls-run
    (`ktls-run openssl s_server ...`): its session moves into the kernel
    where check's verdict is ok, and stays in userspace, the shim saying
    why, where it is FAIL."""
    _, lines = check()
    data = os.urandom(256 * 1024)
    (workdir / "ktls-run.bin").write_bytes(data)
    env = plain_env()
    if ASAN_RT:
        env.update(san_options(), LD_PRELOAD=ASAN_RT)
    port = free_port()
    srv = Proc([os.path.join(BUILD, "tools", "ktls-run"), "--log-level",
                "debug", "openssl", "s_server", "-WWW", "-accept", str(port),
                "-naccept", "1", "-cert", certs["rsa"][0], "-key",
                certs["rsa"][1]], env, cwd=str(workdir),
               stdin=subprocess.DEVNULL)
    srv.wait_line("ACCEPT")
    before = tls_stat()
    r, body = s_client_get(port, "ktls-run.bin", "1.2", plain_env())
    assert srv.wait() == 0, srv.err
    assert body == data, r.stderr
    sess = shim_sessions(srv.err)
    assert len(sess) == 1, srv.err
    assert (lines["verdict"][0] == "ok") == KERNEL
    if KERNEL:
        assert sess[0]["tx"] == "kernel" and sess[0]["rx"] == "kernel", sess
        assert delta(before, tls_stat())["TlsTxSw"] == 1
    else:
        assert sess[0]["tx"] == "kernel-has-no-tls", sess


@pytest.mark.host_only("usage errors: the same on every kernel")
@pytest.mark.parametrize("args", [["check", "extra"], ["chek"]])
def test_bad_verb_exit_2(args):
    r = subprocess.run([STATS] + args, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("usage: ")
