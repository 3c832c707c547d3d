"""Control through the environment and ktls-preload.conf, observed from
outside: a program the config does not allow is not touched at all; bad
input gives one clear line and the program keeps working."""
import pytest

from conftest import (KERNEL, XFER, MiB, Proc, delta, parse_conns, plain_env,
                      shim_env, shim_sessions, shim_summary, tls_stat)


def run(certs, cenv, tls="1.2", cipher=None):
    extra = ["--cipher", cipher] if cipher else []
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cert", certs["ec"][0], "--key", certs["ec"][1],
                "--send", str(MiB), *extra], plain_env())
    port = srv.read_port()
    before = tls_stat()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", tls,
                "--send", str(MiB), *extra], cenv)
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    return cli, c, delta(before, tls_stat())


def untouched(cli, c, d):
    """Not a single trace: OpenSSL was never even asked for kTLS."""
    assert c["lib_tx"] == c["lib_rx"] == c["kernel_tx"] == "0"
    assert not shim_sessions(cli.err)
    assert "summary" not in cli.err
    assert not any(d.values()), d


@pytest.mark.parametrize("var,value", [
    ("KTLS_SHIM_ALLOW", "nginx,python3*"),
    ("KTLS_SHIM_ALLOW", "/usr/sbin/*"),
    ("KTLS_SHIM_DENY", "tls_*"),
    ("KTLS_SHIM_ENABLE", "off"),
])
def test_program_not_allowed_is_untouched(var, value, certs, shim_config):
    cli, c, d = run(certs, shim_env(shim_config, **{var: value}))
    untouched(cli, c, d)
    if var != "KTLS_SHIM_ENABLE":
        assert "not allowed by config" in cli.err


@pytest.mark.parametrize("value", ["tls_xfer", "tls_x*", "*/tests/tls_xfer"])
def test_allowlist_match_moves(value, certs, shim_config):
    cli, c, d = run(certs, shim_env(shim_config, KTLS_SHIM_ALLOW=value))
    (sess,) = shim_sessions(cli.err)
    assert sess["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls")


@pytest.mark.parametrize("var,value,needle", [
    ("KTLS_SHIM_DIRECTIONS", "up", "KTLS_SHIM_DIRECTIONS: unknown value 'up'"),
    ("KTLS_SHIM_CIPHERS", "rot13", "KTLS_SHIM_CIPHERS: unknown value 'rot13'"),
    ("KTLS_SHIM_LOG_LEVEL", "loud", "KTLS_SHIM_LOG_LEVEL: expected off, error"),
    ("KTLS_SHIM_ENABLE", "maybe", "KTLS_SHIM_ENABLE: expected yes or no"),
    ("KTLS_SHIM_ALLOW", "x" * 300, "KTLS_SHIM_ALLOW: pattern longer than"),
    ("KTLS_SHIM_CONFIG", "/nonexistent/k.conf",
     "/nonexistent/k.conf: cannot open: No such file or directory"),
])
def test_bad_environment_one_line_and_program_works(var, value, needle, certs,
                                                     shim_config):
    cli, c, d = run(certs, shim_env(shim_config, **{var: value}))
    lines = [l for l in cli.err.splitlines() if "ktls-shim" in l]
    assert len(lines) == 1, cli.err
    assert needle in lines[0], lines[0]
    assert lines[0].endswith("shim disabled for this process")
    untouched(cli, c, d)


def test_bad_config_line_names_file_and_line(certs, workdir):
    conf = workdir / "bad.conf"
    conf.write_text("enabled = yes\n# fine\ndirections = tx\nbogus = 1\n")
    cli, c, d = run(certs, shim_env(str(conf)))
    lines = [l for l in cli.err.splitlines() if "ktls-shim" in l]
    assert lines == [f"ktls-shim: {conf}:4: unknown key 'bogus'; "
                     "shim disabled for this process"], cli.err
    untouched(cli, c, d)


def test_directions_tx_only(certs, workdir):
    conf = workdir / "tx.conf"
    conf.write_text("directions = tx\n")
    cli, c, d = run(certs, shim_env(str(conf)))
    (sess,) = shim_sessions(cli.err)
    if KERNEL:
        assert (sess["tx"], sess["rx"]) == ("kernel", "direction-off-by-config")
        assert (c["kernel_tx"], c["kernel_rx"]) == ("1", "0")
        assert d["TlsTxSw"] == 1 and d.get("TlsRxSw", 0) == 0
    else:
        assert (sess["tx"], sess["rx"]) == ("kernel-has-no-tls",
                                            "direction-off-by-config")


def test_program_section_overrides(certs, workdir):
    conf = workdir / "sect.conf"
    conf.write_text("directions = tx, rx\n[program nginx]\ndirections = none\n"
                    "[program tls_xfer]\ndirections = rx\n")
    cli, c, d = run(certs, shim_env(str(conf)))
    (sess,) = shim_sessions(cli.err)
    assert sess["tx"] == "direction-off-by-config"
    assert sess["rx"] == ("kernel" if KERNEL else "kernel-has-no-tls")


def test_cipher_not_allowed(certs, shim_config):
    cli, c, d = run(certs, shim_env(shim_config, KTLS_SHIM_CIPHERS="aes-256-gcm"),
                    cipher="ECDHE-ECDSA-AES128-GCM-SHA256")
    (sess,) = shim_sessions(cli.err)
    assert (sess["tx"], sess["rx"]) == ("cipher-off-by-config",) * 2
    assert (c["kernel_tx"], c["kernel_rx"]) == ("0", "0")


def test_log_to_file(certs, shim_config, workdir):
    log = workdir / "shim.log"
    cli, c, d = run(certs, shim_env(shim_config, KTLS_SHIM_LOG=f"file:{log}"))
    assert "ktls-shim" not in cli.err
    text = log.read_text()
    assert shim_sessions(text) and shim_summary(text)["sessions"] == 1
