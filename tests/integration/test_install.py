"""The install layout works as installed (issue 18): the built shim reads
its config file where `meson install` puts it (it used to read
/etc/ktls-preload.conf while meson installed /usr/local/etc/..., so editing
the installed file changed nothing).

Each case runs in a private mount namespace whose copy of the config's
directory holds a file of the test's, so the host's own files are never
touched."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import CONFIG_PATH, SHIM, plain_env

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root (mount namespace)")

# $1: the text of the config; the rest: the command, run with the copy of
# the config's directory mounted over the real one.
SCRIPT = r"""
set -e
text=$1; shift
dir=${CONF%/*}
cp -a "$dir" "$D/dir"
printf '%s\n' "$text" > "$D/dir/${CONF##*/}"
mount --bind "$D/dir" "$dir"
exec "$@"
"""


def run_with_config(text, argv, **env_extra):
    d = tempfile.mkdtemp(prefix="ktls-install-")
    try:
        env = plain_env()
        env.update(CONF=CONFIG_PATH, D=d, **env_extra)
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             SCRIPT, "sh", text] + argv, env=env, capture_output=True,
            text=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_shim_reads_the_config_where_meson_installs_it():
    assert os.path.isdir(os.path.dirname(CONFIG_PATH)), CONFIG_PATH
    r = run_with_config("no_such_key = 1", ["/bin/true"], LD_PRELOAD=SHIM)
    assert r.returncode == 0, r.stderr
    assert (f"ktls-shim: {CONFIG_PATH}:1: unknown key 'no_such_key'"
            in r.stderr), r.stderr


def test_valid_installed_config_is_quiet():
    """The control: the same file, valid, gives no line at all."""
    r = run_with_config("log_level = warn", ["/bin/true"], LD_PRELOAD=SHIM)
    assert r.returncode == 0 and r.stderr == "", r.stderr
