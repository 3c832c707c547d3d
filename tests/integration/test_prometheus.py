"""ktls-shim-stats show --prometheus, the real binary on the kernel under
us: the textfile it writes parses with the Prometheus client library's
own parser, holds the kernel's /proc/net/tls_stat counters where there are
any (with or without the eBPF accounting) and says which of the two are
there; Prometheus's own `promtool check metrics` (its parser and its
linter) takes it, and rejects it broken. The per-program rows and the UTF-8
of comm are rendered from a made-up snapshot in
tests/unit/test_stats_views.c. And a real node_exporter (Debian's
prometheus-node-exporter, its textfile collector alone) serves what was
written at its /metrics."""
import os
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (BUILD, KERNEL, PROMTOOL, REQUIRE_ALL, free_port,
                      tls_stat, wait_port)

STATS = os.path.join(BUILD, "tools", "ktls-shim-stats")
PINNED = "/sys/fs/bpf/ktls-shim/sockets"

pytestmark = [
    pytest.mark.needs_bpf,
    pytest.mark.skipif(not os.path.exists(STATS) and not REQUIRE_ALL,
                       reason="built without -Dbpf (no ktls-shim-stats)")]


def stats(*args):
    return subprocess.run([STATS, *args], capture_output=True, text=True,
                          timeout=60)


def samples(text):
    """{(name, frozenset(labels)): value} through the client's parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"twice: {key}"
            out[key] = s.value
    return out


def test_textfile_has_the_kernel_counters(tmp_path):
    path = tmp_path / "ktls.prom"
    before = tls_stat()
    r = stats("show", "--prometheus", "--output", str(path))
    after = tls_stat()
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    text = path.read_text(encoding="utf-8")
    got = samples(text)
    assert got[("ktls_kernel_tls_stat_available", frozenset())] == \
        (1 if KERNEL else 0)
    assert got[("ktls_shim_ebpf_loaded", frozenset())] == \
        (1 if os.path.exists(PINNED) else 0)
    assert bool(before) == KERNEL, before
    if not KERNEL:
        assert len(got) == 2, text
        return
    # Every counter of the kernel's, between the reads before and after.
    tx_sw = ("ktls_kernel_sockets_total",
             frozenset({("direction", "tx"), ("path", "sw")}))
    assert before["TlsTxSw"] <= got[tx_sw] <= after["TlsTxSw"], text
    kernel = [k for k in got if k[0].startswith("ktls_kernel_")
              and k[0] != "ktls_kernel_tls_stat_available"]
    assert len(kernel) == len(before), (kernel, before)
    assert not any(dict(k[1]).get("counter") for k in kernel), \
        "a counter of the 6.1/7.x kernels missing from the map"


def test_stdout_is_the_same_text():
    r = stats("show", "--prometheus")
    assert r.returncode == 0, r.stderr
    assert ("ktls_kernel_tls_stat_available", frozenset()) in samples(
        r.stdout)


def promtool_check(text):
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60)


# What promtool must refuse, made from our own text: a format error (its
# parser, exit 1) and a lint error (every gauge turned counter, a name
# without _total: exit 3).
BROKEN = {
    "second_type_line": lambda t: t.replace(
        "# TYPE ktls_shim_ebpf_loaded gauge\n",
        "# TYPE ktls_shim_ebpf_loaded gauge\n"
        "# TYPE ktls_shim_ebpf_loaded gauge\n", 1),
    "counter_without_total": lambda t: t.replace(" gauge\n", " counter\n"),
}


@pytest.mark.parametrize("broken", [None, *(
    pytest.param(b, marks=pytest.mark.host_only("promtool refusing a text: "
                                                "the same on every kernel"))
    for b in BROKEN)])
def test_promtool_checks_the_textfile(broken):
    """Whatever this kernel gives (the tls_stat counters in the VM, two
    gauges on a host without kTLS), promtool's parser and linter find
    nothing to say; the same text broken (on the host), they refuse it."""
    if not os.access(PROMTOOL, os.X_OK):
        msg = f"promtool not installed ({PROMTOOL}: scripts/install-deps)"
        if REQUIRE_ALL:
            pytest.fail(msg)
        pytest.skip(msg)
    r = stats("show", "--prometheus")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    if broken is None:
        p = promtool_check(text)
        assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p
        return
    bad = BROKEN[broken](text)
    assert bad != text
    p = promtool_check(bad)
    assert p.returncode == {"second_type_line": 1,
                            "counter_without_total": 3}[broken], p
    assert ("second TYPE line" if broken == "second_type_line"
            else 'should have "_total" suffix') in p.stdout + p.stderr, p


@pytest.mark.host_only("usage errors: the same on every kernel")
def test_output_error_names_the_file(tmp_path):
    bad = tmp_path / "no" / "ktls.prom"
    r = stats("show", "--prometheus", "--output", str(bad))
    assert r.returncode == 1
    assert r.stderr == (f"ktls-shim-stats: --output {bad}: No such file "
                        "or directory\n"), r.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.host_only("usage errors: the same on every kernel")
@pytest.mark.parametrize("args,says", [
    (["show", "--yaml"], "show: unknown option '--yaml'"),
    (["show", "--prometheus", "--output"], "option '--output' needs a file"),
])
def test_bad_show_option_exit_2(args, says):
    r = stats(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[0].startswith(f"ktls-shim-stats: {says}"), \
        r.stderr


def test_node_exporter_serves_the_metrics(tmp_path):
    r = stats("show", "--prometheus", "--output", str(tmp_path / "ktls.prom"))
    assert r.returncode == 0, r.stderr
    port = free_port()
    ne = subprocess.Popen(
        ["prometheus-node-exporter", "--collector.disable-defaults",
         "--collector.textfile",
         f"--collector.textfile.directory={tmp_path}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=30) as resp:
            text = resp.read().decode("utf-8")
    finally:
        ne.terminate()
        err = ne.communicate(timeout=30)[1].decode(errors="replace")
    got = samples(text)
    # node_exporter read the file without complaint, and serves it.
    assert got[("node_textfile_scrape_error", frozenset())] == 0, err
    assert got[("ktls_kernel_tls_stat_available", frozenset())] == \
        (1 if KERNEL else 0)
    assert ("ktls_shim_ebpf_loaded", frozenset()) in got
