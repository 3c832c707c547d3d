"""ktls-run (tools/ktls-run.in), the build tree's copy: it preloads the
build's shim once, maps its options to the KTLS_SHIM_* variables the shim
really reads (the shim's own debug line proves it acted), and refuses bad
usage with one line naming what was wrong, exit 2. Also its bash
completion. No TLS: what the shim does with a session is the other suites'."""
import json
import os
import re
import subprocess

import pytest

from conftest import ASAN_RT, BUILD, NO_KTLS, SHIM, plain_env, san_options

# The same on every kernel: the VM (emulated, slow) deselects it.
pytestmark = pytest.mark.host_only("ktls-run: the same on every kernel")

RUN = os.path.join(BUILD, "tools", "ktls-run")
COMPLETION = os.path.join(os.path.dirname(__file__), "..", "..", "tools",
                          "ktls-run.bash-completion")
# Prints its environment's LD_PRELOAD and KTLS_SHIM_* as JSON.
DUMP = ["/usr/bin/python3", "-c",
        "import json, os; print(json.dumps({k: v for k, v in "
        "os.environ.items() if k == 'LD_PRELOAD' or "
        "k.startswith('KTLS_SHIM')}))"]


# The ASan build's shim needs the ASan runtime loaded before it: ktls-run
# keeps a sanitizer runtime first, so it is simply in LD_PRELOAD already.
BASE = f"{ASAN_RT}:" if ASAN_RT else ""
PRELOADED = BASE + SHIM


def run(args, **env_extra):
    env = plain_env()
    if ASAN_RT:
        env.update(san_options(), LD_PRELOAD=ASAN_RT)
    env.update(env_extra)
    return subprocess.run([RUN] + args, env=env, capture_output=True,
                          text=True, timeout=60)


def project_version():
    with open(os.path.join(BUILD, "meson-info",
                           "intro-projectinfo.json")) as f:
        return json.load(f)["version"]


def test_version():
    r = run(["--version"])
    assert r.returncode == 0
    assert r.stdout == f"ktls-run (ktls-shim) {project_version()}\n"


def test_preloads_the_shim_and_maps_options():
    r = run(["-v", "--tx-only", "--engine", "shim", "--log-level=info",
             "--ciphers", "aes-128-gcm", "--versions", "tls1.2",
             "--tls13-rx-without-rekey", "--key-update-bytes", "64M",
             "--ebpf-load", "never", "--allow", "python3*"] + DUMP)
    assert r.returncode == 0, r.stderr
    want = {"LD_PRELOAD": PRELOADED, "KTLS_SHIM_DIRECTIONS": "tx",
            "KTLS_SHIM_ENGINE": "shim", "KTLS_SHIM_LOG_LEVEL": "info",
            "KTLS_SHIM_CIPHERS": "aes-128-gcm",
            "KTLS_SHIM_VERSIONS": "tls1.2",
            "KTLS_SHIM_TLS13_RX_WITHOUT_REKEY": "yes",
            "KTLS_SHIM_KEY_UPDATE_BYTES": "64M",
            "KTLS_SHIM_EBPF_LOAD": "never", "KTLS_SHIM_ALLOW": "python3*"}
    assert json.loads(r.stdout) == want
    # -v: one line per variable set, in the order given, LD_PRELOAD last.
    said = [l for l in r.stderr.splitlines() if l.startswith("ktls-run: ")]
    assert said == [f"ktls-run: {k}={v}" for k, v in want.items()
                    if k != "LD_PRELOAD"] + [
                        f"ktls-run: LD_PRELOAD={PRELOADED}"]


def test_shim_really_acts_on_the_options(shim_config):
    """The shim reads what ktls-run set: debug level says it is active in
    the program; --deny then keeps it out (true is no TLS program: nothing
    else to say)."""
    r = run(["--log-level", "debug", "--config", shim_config, "/bin/true"])
    assert r.returncode == 0, r.stderr
    assert "debug: active in /usr/bin/true" in r.stderr, r.stderr
    r = run(["--log-level", "debug", "--config", shim_config, "--deny",
             "true", "/bin/true"])
    assert "not allowed by config" in r.stderr, r.stderr
    assert "active in" not in r.stderr, r.stderr


def test_ld_preload_gets_the_shim_once_and_first():
    # Already there twice (colon and space separated), beside another
    # library and an ASan runtime (absent but for the ASan build), which
    # goes first. (Under the ASan build it must already be first: the
    # wrapper's own shell loads what it is given.)
    asan = ASAN_RT or "/nonexistent/libasan.so.8"
    before = (f"{asan} {SHIM}:{NO_KTLS}:{SHIM}" if ASAN_RT
              else f"{SHIM}:{NO_KTLS} {asan}:{SHIM}")
    r = run(DUMP, LD_PRELOAD=before)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["LD_PRELOAD"] == f"{asan}:{SHIM}:{NO_KTLS}"
    # Twice through the wrapper: still once.
    r = run([RUN] + DUMP, LD_PRELOAD=BASE + NO_KTLS)
    assert json.loads(r.stdout)["LD_PRELOAD"] == f"{PRELOADED}:{NO_KTLS}"


@pytest.mark.parametrize("args,says", [
    (["--bogus", "true"], "unknown option '--bogus'"),
    (["--engine", "fast", "true"],
     "option '--engine': bad value 'fast' (expected auto|openssl|shim)"),
    (["--log-level=loud", "true"], "option '--log-level': bad value 'loud'"),
    (["--ebpf-load", "always", "true"], "option '--ebpf-load': bad value"),
    (["--engine"], "option '--engine' needs a value"),
    (["--tx-only=yes", "true"], "option '--tx-only' takes no value"),
    (["--config", "/nonexistent/k.conf", "true"],
     "option '--config': cannot read '/nonexistent/k.conf'"),
    (["-v"], "no command given"),
])
def test_bad_usage_is_one_line_exit_2(args, says):
    r = run(args)
    assert r.returncode == 2, r
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ktls-run: "), r.stderr
    assert says in lines[0], r.stderr


def test_missing_command_and_library():
    r = run(["no-such-command-ktls"])
    assert r.returncode == 127
    assert r.stderr == "ktls-run: no-such-command-ktls: command not found\n"
    r = run(["true"], KTLS_SHIM_LIBRARY="/nonexistent/libktls-shim.so")
    assert r.returncode == 1
    assert "/nonexistent/libktls-shim.so: no such library" in r.stderr


def complete(words):
    """COMPREPLY for the last of words, from the completion file."""
    script = (f'source "{COMPLETION}"; COMP_WORDS=("$@"); '
              'COMP_CWORD=$(($# - 1)); _ktls_run; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    r = subprocess.run(["bash", "-c", script, "bash"] + words,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(set(r.stdout.split()))


def test_bash_completion():
    assert complete(["ktls-run", "--eng"]) == ["--engine"]
    assert complete(["ktls-run", "--engine", ""]) == ["auto", "openssl",
                                                      "shim"]
    assert complete(["ktls-run", "--log-level", "d"]) == ["debug"]
    # After the command: the command's own words (files here), never
    # ktls-run's options.
    assert "--engine" not in complete(["ktls-run", "--tx-only", "ls", "--"])


def test_every_variable_of_the_shim_has_an_option():
    """ktls-preload.conf names each KTLS_SHIM_* variable the parser reads
    (test_config.c checks its keys against the parser's table): each has
    an option, but the global off switch, which has no use here."""
    conf = os.path.join(os.path.dirname(__file__), "..", "..",
                        "ktls-preload.conf")
    names = set(re.findall(r"\bKTLS_SHIM_[A-Z0-9_]+", open(conf).read()))
    assert len(names) >= 14, names
    helptext = run(["--help"]).stdout
    # "(KTLS_SHIM_ALLOW/DENY)" names two.
    said = set(re.findall(r"\bKTLS_SHIM_[A-Z0-9_]+", helptext)) | {
        "KTLS_SHIM_" + m for m in re.findall(r"/([A-Z0-9_]+)\)", helptext)}
    assert not names - {"KTLS_SHIM_ENABLE"} - said, helptext
