"""The install layout works as installed (issue 18): the built shim reads
its config file where `meson install` puts it (it used to read
/etc/ktls-preload.conf while meson installed /usr/local/etc/..., so editing
the installed file changed nothing); then the whole of `meson install`
under a DESTDIR: ktls-run, the man pages (rendered by man with warnings
on), the pkg-config file, modules-load.d, bash completion and the systemd
examples each name the installed paths.

The config cases run in a private mount namespace whose copy of the
config's directory holds a file of the test's, so the host's own files are
never touched."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ASAN_RT, BUILD, CONFIG_PATH, SHIM, plain_env, san_options

# The install layout means the same on every kernel: the VM (emulated,
# slow) deselects it.
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                       reason="needs root (mount namespace)"),
    pytest.mark.host_only("the install layout: the same on every kernel")]

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


# The ASan build's shim needs the ASan runtime loaded before it.
PRELOAD = f"{ASAN_RT}:{SHIM}" if ASAN_RT else SHIM


def run_with_config(text, argv, **env_extra):
    d = tempfile.mkdtemp(prefix="ktls-install-")
    try:
        env = plain_env()
        if ASAN_RT:
            env.update(san_options())
        env.update(CONF=CONFIG_PATH, D=d, **env_extra)
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             SCRIPT, "sh", text] + argv, env=env, capture_output=True,
            text=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_shim_reads_the_config_where_meson_installs_it():
    assert os.path.isdir(os.path.dirname(CONFIG_PATH)), CONFIG_PATH
    r = run_with_config("no_such_key = 1", ["/bin/true"],
                        LD_PRELOAD=PRELOAD)
    assert r.returncode == 0, r.stderr
    assert (f"ktls-shim: {CONFIG_PATH}:1: unknown key 'no_such_key'"
            in r.stderr), r.stderr


def test_valid_installed_config_is_quiet():
    """The control: the same file, valid, gives no line at all."""
    r = run_with_config("log_level = warn", ["/bin/true"],
                        LD_PRELOAD=PRELOAD)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ---- `meson install`: what goes where, and that it works from there --------

@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    """The build installed under a DESTDIR, and meson's record of where
    each built file went."""
    d = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild",
                        "--quiet", "--destdir", str(d)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(BUILD, "meson-info", "intro-installed.json")) as f:
        installed = json.load(f)
    return str(d), installed


def at(destdir, name):
    """(path under DESTDIR, installed path) of the one file whose installed
    path ends in /name."""
    d, installed = destdir
    (dst,) = [v for v in installed.values() if v.endswith("/" + name)]
    return d + dst, dst


@pytest.mark.needs_bpf  # ktls-shim-stats is installed with -Dbpf only
def test_installed_ktls_run_points_at_the_installed_files(destdir):
    run, _ = at(destdir, "bin/ktls-run")
    _, shim = at(destdir, "libktls-shim.so")
    _, stats = at(destdir, "ktls-shim-stats")
    assert os.access(run, os.X_OK)
    text = open(run).read()
    assert f"shim=${{KTLS_SHIM_LIBRARY:-{shim}}}\n" in text
    assert f"stats={stats}\n" in text
    # It runs from there (the shim named explicitly: DESTDIR is no root).
    env = dict(plain_env(), KTLS_SHIM_LIBRARY=at(destdir,
                                                  "libktls-shim.so")[0])
    if ASAN_RT:
        env.update(san_options(), LD_PRELOAD=ASAN_RT)
    r = subprocess.run([run, "-v", "/bin/true"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ktls-run: LD_PRELOAD=" in r.stderr, r


def test_installed_config_is_the_shims(destdir):
    conf, dst = at(destdir, "ktls-preload.conf")
    assert dst == CONFIG_PATH and os.path.isfile(conf)


def test_modules_load_and_completion(destdir):
    d, installed = destdir
    (ml,) = [v for v in installed.values()
             if v.endswith("/modules-load.d/ktls-shim.conf")]
    assert ml.startswith(("/usr/lib/modules-load.d/", "/etc/",
                          "/usr/local/etc/")), ml
    lines = [l.strip() for l in open(d + ml) if not l.startswith("#")]
    assert lines == ["tls"]
    (comp,) = [v for v in installed.values()
               if v.endswith("/bash-completion/completions/ktls-run")]
    assert "complete -F _ktls_run ktls-run" in open(d + comp).read()


def test_pkg_config(destdir):
    d, installed = destdir
    (pc,) = [v for v in installed.values() if v.endswith("/ktls-shim.pc")]
    _, shim = at(destdir, "libktls-shim.so")
    _, header = at(destdir, "ktls_shim.h")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(d + pc))
    def pkgconf(*args):
        r = subprocess.run(["pkg-config", *args, "ktls-shim"], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    assert pkgconf("--variable=preload") == shim
    assert pkgconf("--cflags") == "-I" + os.path.dirname(header)
    assert pkgconf("--libs") == ""


@pytest.mark.needs_bpf  # the Prometheus units run ktls-shim-stats
def test_systemd_examples_name_the_installed_files(destdir):
    d, installed = destdir
    _, shim = at(destdir, "libktls-shim.so")
    _, stats = at(destdir, "ktls-shim-stats")
    dropin = open(at(destdir, "ktls-shim-dropin.conf")[0]).read()
    assert f"\nEnvironment=LD_PRELOAD={shim}\n" in dropin
    svc = open(at(destdir, "ktls-shim-stats-prometheus.service")[0]).read()
    assert f"\nExecStart={stats} show --prometheus --output " in svc
    timer = open(at(destdir, "ktls-shim-stats-prometheus.timer")[0]).read()
    assert "\nOnUnitActiveSec=1min\n" in timer


MAN_PAGES = ["ktls-run.1",
             pytest.param("ktls-shim-stats.8", marks=pytest.mark.needs_bpf),
             "ktls-preload.conf.5", "libktls-shim.7"]


def render_man(path):
    """man -l's text, with groff's warnings on (stderr must stay empty)."""
    r = subprocess.run(["man", "--warnings", "-l", path], env=dict(
        plain_env(), MANWIDTH="200", LC_ALL="C.UTF-8",
        MANPAGER="cat", PAGER="cat"), capture_output=True, text=True,
        timeout=60)
    assert r.returncode == 0 and r.stderr == "", (path, r.stderr)
    return r.stdout


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(destdir, page):
    path, dst = at(destdir, page)
    assert f"/man{page[-1]}/{page}" in dst
    text = render_man(path)
    assert text.splitlines()[0].startswith(page.rsplit(".", 1)[0].upper())
    assert "\nNAME\n" in text and "\nSEE ALSO\n" in text


def test_man_pages_document_every_option_and_key(destdir):
    text = render_man(at(destdir, "man1/ktls-run.1")[0])
    helptext = subprocess.run([os.path.join(BUILD, "tools", "ktls-run"),
                               "--help"], capture_output=True,
                              text=True).stdout
    options = set(re.findall(r"--[a-z0-9-]+", helptext))
    assert len(options) > 15
    assert not {o for o in options if o not in text}
    conf = os.path.join(os.path.dirname(__file__), "..", "..",
                        "ktls-preload.conf")
    keys = re.findall(r"^([a-z0-9_]+) =", open(conf).read(), re.M)
    page = render_man(at(destdir, "ktls-preload.conf.5")[0])
    assert len(keys) >= 13
    assert not [k for k in keys if f"\n       {k} =" not in page]
