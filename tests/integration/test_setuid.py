"""The shim in a setuid-root program ignores every KTLS_SHIM_* variable, as
the dynamic loader ignores LD_* there, and still obeys the config file.

The realistic way a setuid program gets the shim is /etc/ld.so.preload: the
loader drops LD_PRELOAD in secure mode (AT_SECURE) unless the library is in a
system directory and itself setuid. So each test runs in a private mount
namespace whose /etc is a copy with an ld.so.preload naming the shim and a
ktls-preload.conf of ours, and starts the client as nobody (setpriv):

- suid: a copy of tls_xfer owned by root with mode 4755, so the kernel sets
  AT_SECURE (euid 0 != ruid 65534);
- plain: the same copy without the setuid bit, the same user, the same
  environment: the control, which shows the variables would have acted.

The environment is what an attacker would set: a config of their own, a log
"file" where root would create or append to it, directions = none, log
level off. What this proves: with the shim loaded through
/etc/ld.so.preload into a setuid-root program, none of these variables has
any effect (no file created, the session moves as the installed
ktls-preload.conf says, its debug line appears), while in the same program
without setuid each of them does. It does not cover file capabilities or setgid programs, which
AT_SECURE covers the same way in the loader and in secure_getenv."""
import os
import shutil
import tempfile

import pytest

from conftest import (ASAN_RT, CONFIG_PATH, KERNEL, SHIM, XFER, MiB, Proc,
                      one_conn_intact, plain_env, shim_sessions)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root (mount namespace, setuid copy, setpriv)")

# The shim's preload list, /etc copy, config and the hostile variables,
# set inside the namespace just before the client is started.
SCRIPT = r"""
set -e
d=$1; shift
cp -a /etc "$d/etc"
printf '%s\n' "$PRELOAD" > "$d/etc/ld.so.preload"
mount --bind "$d/etc" /etc
# The shim's config where the build installs it (/usr/local/etc by
# default): a directory of its own outside /etc.
case $CONF in
/etc/*) ;;
*) mount -t tmpfs -o mode=755 tmpfs "${CONF%/*}" ;;
esac
cat > "$CONF" <<EOF
allow = tls_xfer*
[program tls_xfer*]
log_level = debug
directions = tx, rx
EOF
exec setpriv --reuid=65534 --regid=65534 --clear-groups env \
    KTLS_SHIM_CONFIG="$d/user/evil.conf" \
    KTLS_SHIM_LOG="file:$d/user/shim.log" KTLS_SHIM_DIRECTIONS=none \
    "$@"
"""


@pytest.fixture
def nsdir():
    d = tempfile.mkdtemp(prefix="ktls-suid-")
    os.chmod(d, 0o755)
    # The attacker's own directory and config (owned by nobody).
    user = os.path.join(d, "user")
    os.mkdir(user, 0o755)
    with open(os.path.join(user, "evil.conf"), "w") as f:
        f.write("log_level = debug\ndirections = none\n")
    for p in (user, os.path.join(user, "evil.conf")):
        os.chown(p, 65534, 65534)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def client_in_namespace(certs, d, binary):
    """Runs binary (a tls_xfer copy) as the client of an unshimmed server,
    in the namespace; returns (Proc, conn line), both sha256 checked."""
    srv = Proc([XFER, "--role", "server", "--port", "0", "--cert",
                certs["ec"][0], "--key", certs["ec"][1], "--send", str(MiB)],
               plain_env())
    port = srv.read_port()
    env = plain_env()
    env["PRELOAD"] = f"{ASAN_RT} {SHIM}" if ASAN_RT else SHIM
    env["CONF"] = CONFIG_PATH
    if ASAN_RT:
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    cli = Proc(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                SCRIPT, "sh", d, binary, "--role", "client", "--port",
                str(port), "--send", str(MiB)], env)
    assert cli.wait(timeout=300) == 0, cli.err
    assert srv.wait(timeout=120) == 0, srv.err
    c, _ = one_conn_intact(cli.out, srv.out, MiB)
    return cli, c


def copy_xfer(d, name, mode):
    p = os.path.join(d, name)
    shutil.copy(XFER, p)
    os.chown(p, 0, 0)
    os.chmod(p, mode)
    return p


def test_setuid_program_ignores_env_obeys_file(certs, nsdir):
    suid = copy_xfer(nsdir, "tls_xfer_suid", 0o4755)
    cli, c = client_in_namespace(certs, nsdir, suid)
    # Every variable ignored: /etc/ktls-preload.conf's allow list, debug
    # level (to stderr) and directions hold; no log file where the user
    # pointed (root would have created it for them).
    assert "active in " + suid in cli.err, cli.err
    (sess,) = shim_sessions(cli.err)
    assert sess["tx"] == ("kernel" if KERNEL else "kernel-has-no-tls"), \
        cli.err
    # RX may stay in userspace for its own reasons (TLS 1.3 on a kernel
    # that cannot rekey), never for the user's KTLS_SHIM_DIRECTIONS.
    assert sess["rx"] != "direction-off-by-config", cli.err
    assert c["kernel_tx"] == ("1" if KERNEL else "0")
    assert "evil.conf" not in cli.err and "refused" not in cli.err
    assert not os.path.exists(os.path.join(nsdir, "user", "shim.log"))


def test_same_program_without_setuid_obeys_env(certs, nsdir):
    """The control: only the setuid bit differs, and every variable acts:
    the user's config and directions, the user's log file."""
    plain = copy_xfer(nsdir, "tls_xfer_plain", 0o755)
    cli, c = client_in_namespace(certs, nsdir, plain)
    assert "ktls-shim" not in cli.err, cli.err
    with open(os.path.join(nsdir, "user", "shim.log")) as f:
        log = f.read()
    assert "active in " + plain in log, log
    (sess,) = shim_sessions(log)
    assert (sess["tx"], sess["rx"]) == ("direction-off-by-config",) * 2
    assert c["kernel_tx"] == c["kernel_rx"] == "0"
