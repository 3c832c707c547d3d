"""Hostile configuration and environment, seen from a real shimmed program:
whatever the config file or the KTLS_SHIM_* variables hold (very long lines
and values, invalid UTF-8, NUL and control bytes, a 100 MB file, /dev/zero,
a FIFO, an unreadable file, a world-writable file in a root process, a log
"file" that is a FIFO), the program runs, its bytes arrive intact (sha256
both ways) and the shim says what is wrong in exactly one line.

test_config_env.py has the ordinary mistakes (bad values, missing file,
unknown key); the parser's own edge cases are unit tests
(tests/unit/test_config.c) and fuzzed (tests/fuzz)."""
import os
import shutil
import stat
import tempfile

import pytest

from conftest import (KERNEL, XFER, MiB, Proc, one_conn_intact, plain_env,
                      shim_env, shim_sessions, tls_stat, delta)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
ROOT = os.geteuid() == 0
DISABLED = "; shim disabled for this process"
# A refused config stops the shim before it does anything with kTLS: those
# tests mean the same on every kernel, and the VM (emulated, slow)
# deselects them (conftest.py: host_only). The ones where the shim still
# works run everywhere.
kernel_independent = pytest.mark.host_only(
    "kernel-independent refusal: covered by the host run")


def xfer(certs, cenv, prefix=()):
    """One 1 MiB each way transfer, the client shimmed (run through prefix,
    e.g. as nobody); returns its Proc, its conn line and the tls_stat
    delta, after checking both sha256 pairs."""
    srv = Proc([XFER, "--role", "server", "--port", "0", "--cert",
                certs["ec"][0], "--key", certs["ec"][1], "--send", str(MiB)],
               plain_env())
    port = srv.read_port()
    before = tls_stat()
    if prefix:
        # Preloaded into the client only, not into the root setpriv
        # before it (whose shim would refuse an open config, rightly).
        cenv = dict(cenv)
        prefix = [*prefix, "env", f"LD_PRELOAD={cenv.pop('LD_PRELOAD')}"]
    cli = Proc([*prefix, XFER, "--role", "client", "--port", str(port),
                "--send", str(MiB)], cenv)
    # A shim that blocks in its constructor (FIFO, /dev/zero) shows here.
    assert cli.wait(timeout=120) == 0, cli.err
    assert srv.wait(timeout=120) == 0, srv.err
    c, _ = one_conn_intact(cli.out, srv.out, MiB)
    return cli, c, delta(before, tls_stat())


def shim_lines(err):
    return [l for l in err.splitlines() if "ktls-shim" in l]


def one_line_disabled(cli, c, d, needle):
    """The shim refused its config: one printable line that names what was
    wrong, and the program ran exactly as without the shim."""
    lines = shim_lines(cli.err)
    assert len(lines) == 1, cli.err
    assert needle in lines[0], lines[0]
    assert lines[0].endswith(DISABLED), lines[0]
    assert lines[0].isprintable(), repr(lines[0])
    assert len(lines[0]) < 700, len(lines[0])
    assert c["lib_tx"] == c["lib_rx"] == c["kernel_tx"] == "0"
    assert not shim_sessions(cli.err)
    assert not any(d.values()), d


def moved(cli, c):
    """The shim was active and took the session (or says the kernel has
    no kTLS, on a host without it)."""
    (sess,) = shim_sessions(cli.err)
    assert sess["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls")
    assert c["kernel_tx"] == ("1" if KERNEL else "0")


@pytest.fixture
def shared_dir():
    """A directory that nobody (uid 65534) can enter: pytest's own tmp
    directories are 0700."""
    d = tempfile.mkdtemp(prefix="ktls-hostile-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---- the config file's content ---------------------------------------------

@kernel_independent
@pytest.mark.parametrize("content,needle", [
    (b"enabled = yes\n" + b"#" * 5000 + b"\n", ":2: line longer than 4096"),
    (b"allow = " + b"x" * 4000 + b"\n", ":1: allow: pattern longer than 255"),
    (b"log = file:/" + b"y" * 4000 + b"\n", ":1: log: expected stderr"),
    (b"deny = \xff\xfe\n", ":1: deny: invalid character 0xff in value"),
    ("ciph\u00e9rs = all\n".encode(), ":1: invalid character 0xc3 in key"),
    (b"\x1b[2Jenabled = no\n", ":1: invalid character 0x1b in key"),
    (b"directions = tx\x1b[31m\n", ":1: directions: invalid character 0x1b"),
    (b"enabled = yes\n\x00\x00\n", ": contains a NUL byte (not a text file)"),
], ids=["long-line", "long-pattern", "long-log-path", "invalid-utf8",
        "utf8-key", "escape-in-key", "escape-in-value", "nul-bytes"])
def test_hostile_file_content(content, needle, certs, workdir):
    conf = workdir / "hostile.conf"
    conf.write_bytes(content)
    cli, c, d = xfer(certs, shim_env(str(conf)))
    one_line_disabled(cli, c, d, f"ktls-shim: {conf}{needle}")


@kernel_independent
def test_huge_sparse_file_refused_without_reading(certs, workdir):
    """100 MB: refused from its size, before a byte is read or allocated."""
    conf = workdir / "huge.conf"
    with open(conf, "wb") as f:
        f.truncate(100 * 1000 * 1000)
    cli, c, d = xfer(certs, shim_env(str(conf)))
    one_line_disabled(cli, c, d, f"{conf}: larger than 1048576 bytes")


@kernel_independent
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory"])
def test_config_not_a_regular_file(kind, certs, workdir):
    """Neither an endless file nor a FIFO nobody writes may hang the
    program in the shim's constructor."""
    path = {"dev-zero": "/dev/zero", "fifo": str(workdir / "conf.fifo"),
            "directory": str(workdir)}[kind]
    if kind == "fifo" and not os.path.exists(path):
        os.mkfifo(path)
    cli, c, d = xfer(certs, shim_env(path))
    one_line_disabled(cli, c, d, f"ktls-shim: {path}: not a regular file")


# ---- who may read it -------------------------------------------------------

@kernel_independent
@pytest.mark.skipif(not ROOT, reason="needs root to run a client as nobody")
def test_unreadable_file(certs, shared_dir):
    conf = os.path.join(shared_dir, "secret.conf")
    with open(conf, "w") as f:
        f.write("enabled = yes\n")
    os.chmod(conf, 0)
    cli, c, d = xfer(certs, shim_env(conf), prefix=NOBODY)
    one_line_disabled(cli, c, d, f"{conf}: cannot open: Permission denied")


@pytest.mark.skipif(not ROOT, reason="needs root: a privileged program")
@pytest.mark.parametrize("mode", [0o666, 0o664])
def test_writable_by_others_refused_for_root(mode, certs, shared_dir):
    """Root must not take orders from a file others can write; the same
    file is fine for an unprivileged program, which shows it is the
    privilege that decides."""
    conf = os.path.join(shared_dir, "open.conf")
    with open(conf, "w") as f:
        f.write("directions = tx, rx\n")
    os.chmod(conf, mode)
    assert os.stat(conf).st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    cli, c, d = xfer(certs, shim_env(conf))
    one_line_disabled(cli, c, d, f"ktls-shim: {conf}: writable by "
                      "group/others or owned by another user; refused for "
                      "a privileged process")

    cli, c, _ = xfer(certs, shim_env(conf), prefix=NOBODY)
    assert "refused" not in cli.err, cli.err
    moved(cli, c)


@kernel_independent
@pytest.mark.skipif(not ROOT, reason="needs root: a privileged program")
def test_owned_by_another_user_refused_for_root(certs, shared_dir):
    conf = os.path.join(shared_dir, "theirs.conf")
    with open(conf, "w") as f:
        f.write("enabled = yes\n")
    os.chown(conf, 65534, 65534)
    cli, c, d = xfer(certs, shim_env(conf))
    one_line_disabled(cli, c, d, f"{conf}: writable by group/others or "
                      "owned by another user; refused")


# ---- the environment -------------------------------------------------------

@kernel_independent
@pytest.mark.parametrize("var,value,needle", [
    ("KTLS_SHIM_DIRECTIONS", "tx," * 40000,
     "KTLS_SHIM_DIRECTIONS: value longer than 4096 bytes"),
    ("KTLS_SHIM_CIPHERS", b"aes-128-gcm,\xff\xfe",
     "KTLS_SHIM_CIPHERS: invalid character 0xff in value"),
    ("KTLS_SHIM_LOG_LEVEL", "\x1b[2J\x1b[H",
     "KTLS_SHIM_LOG_LEVEL: invalid character 0x1b in value"),
    ("KTLS_SHIM_DENY", "a\rb", "KTLS_SHIM_DENY: invalid character 0x0d"),
    ("KTLS_SHIM_CONFIG", "/" + "c" * 5000,
     ": cannot open: File name too long"),
], ids=["120k-value", "invalid-utf8", "escapes", "carriage-return",
        "5000-char-config-path"])
def test_hostile_environment(var, value, needle, certs, shim_config):
    cli, c, d = xfer(certs, shim_env(shim_config, **{var: value}))
    one_line_disabled(cli, c, d, needle)


@pytest.mark.parametrize("target", ["fifo", "missing-dir"])
def test_log_file_unusable_falls_back_to_stderr(target, certs, workdir,
                                                shim_config):
    """A log "file" that is a FIFO nobody reads used to block the program
    in open(2) for ever. Now: one warning, logging goes to stderr and the
    shim still does its work."""
    path = {"fifo": str(workdir / "log.fifo"),
            "missing-dir": str(workdir / "no" / "such" / "x.log")}[target]
    if target == "fifo" and not os.path.exists(path):
        os.mkfifo(path)
    cli, c, _ = xfer(certs,
                     shim_env(shim_config, KTLS_SHIM_LOG=f"file:{path}"))
    why = {"fifo": "No such device or address",
           "missing-dir": "No such file or directory"}[target]
    warn = [l for l in shim_lines(cli.err) if "cannot open log file" in l]
    assert len(warn) == 1, cli.err
    assert f"'{path}': {why}; logging to stderr" in warn[0], warn[0]
    moved(cli, c)
