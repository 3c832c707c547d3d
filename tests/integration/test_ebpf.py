"""eBPF per-socket kTLS accounting (shim/bpf, tools/ktls-shim-stats).

Where the kernel has kTLS (the VM): load the programs, move known amounts
each way through a shimmed tls_xfer (TLS 1.2, so TX and RX are both in the
kernel) and through sendfile(), then read the pinned maps the way an
operator would (`bpftool -j map dump pinned ...`) and check that the
per-socket counters equal what the application sent and received.

Where it has not (this host's kernel): `ktls-shim-stats load` must fail with
a clear one-line reason, and a shimmed transfer must be unaffected.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import (BUILD, KERNEL, MiB, REQUIRE_ALL, XFER, Proc, delta,
                      make_file, parse_conns, plain_env, shim_env,
                      shim_sessions, tls_stat)

STATS = os.path.join(BUILD, "tools", "ktls-shim-stats")
PIN = "/sys/fs/bpf/ktls-shim"
BPFTOOL = shutil.which("bpftool") or "/usr/sbin/bpftool"
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
TLS12, AES_GCM_128 = 0x0303, 51
# Records that are not application data go through the same functions:
# with TLS 1.2, OpenSSL turns kTLS on at ChangeCipherSpec, so the Finished
# message (16 bytes of plaintext: 4 header + 12 verify_data) is the first
# record each way through the kernel, and close_notify (a 2-byte alert) the
# last. OpenSSL sends those with sendmsg()+TLS_SET_RECORD_TYPE; the kernel
# returns them with a TLS_GET_RECORD_TYPE cmsg other than 23. The eBPF side
# counts them apart (tx_ctrl_bytes, rx_ctrl_bytes), so tx_bytes/rx_bytes are
# the application's bytes exactly. TLS record overhead (5-byte header,
# 8-byte explicit nonce, 16-byte tag) is in none of them: fexit return
# values count plaintext.
FINISHED, CLOSE_NOTIFY = 16, 2
CTRL = FINISHED + CLOSE_NOTIFY

# Under the project's runner (KTLS_REQUIRE_ALL=1; its builds have
# -Dbpf=enabled) a missing tool fails, never skips.
pytestmark = [
    pytest.mark.needs_bpf,
    pytest.mark.skipif(not os.path.exists(STATS) and not REQUIRE_ALL,
                       reason="built without -Dbpf (no clang/bpftool/libbpf)")]

SOCK_FIELDS = {"tx_bytes", "tx_calls", "tx_sw_bytes", "tx_device_bytes",
               "tx_sendpage_bytes", "tx_ctrl_bytes", "tx_errors", "rx_bytes",
               "rx_calls", "rx_splice_bytes", "rx_ctrl_bytes", "rx_errors",
               "first_ns", "last_ns", "pid", "tx_sw", "tx_device", "rx_sw",
               "rx_device", "comm", "closed"}
TOTALS_FIELDS = {"sockets", "tx_bytes", "tx_calls", "tx_sw_bytes",
                 "tx_device_bytes", "tx_ctrl_bytes", "tx_errors", "rx_bytes",
                 "rx_calls", "rx_ctrl_bytes", "rx_errors"}
KTLS_MODE_SW = 2  # ktls_stats.h: from sock_diag TLS_INFO_TXCONF/RXCONF
OWNER_FIELDS = {"pid", "fd", "version", "cipher_type", "tx_mode", "rx_mode",
                "closed", "registered_ns", "closed_ns", "comm"}


def stats(*args, check=None):
    r = subprocess.run([STATS, *args], capture_output=True, text=True,
                       env=plain_env())
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout,
                                       r.stderr)
    return r


def dump(name):
    """Rows of a pinned map as bpftool prints them with BTF: key and value
    by field name (totals, an array: key 0)."""
    r = subprocess.run([BPFTOOL, "-j", "map", "dump", "pinned",
                        f"{PIN}/{name}"], capture_output=True, text=True,
                       check=True)
    rows = {}
    for e in json.loads(r.stdout):
        f = e.get("formatted", e)
        rows[int(f["key"])] = f["value"]
    return rows


def comm(v):
    """bpftool prints char[16] as a string when it is printable."""
    if isinstance(v, str):
        return v
    return bytes(int(x, 0) if isinstance(x, str) else x
                 for x in v).split(b"\0")[0].decode()


def transfer(certs, shim_config, send, peer_send, extra=(), env=None):
    """A plain tls_xfer server; the shimmed tls_xfer client sends `send`
    bytes and receives `peer_send`. Returns (client Proc, its conn line)."""
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", "1.2",
                "--cipher", CIPHER, "--cert", certs["ec"][0],
                "--key", certs["ec"][1], "--send", str(peer_send)],
               plain_env())
    port = srv.read_port()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls",
                "1.2", "--cipher", CIPHER, "--send", str(send), *extra],
               env or shim_env(shim_config))
    assert cli.wait() == 0, cli.err
    assert srv.wait() == 0, srv.err
    (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    return cli, c


@pytest.fixture
def loaded():
    stats("unload")
    r = stats("load", check=0)
    assert "loaded" in r.stdout
    yield
    stats("unload", check=0)
    assert not os.path.exists(PIN)


def row_of(pid):
    rows = {k: v for k, v in dump("sockets").items() if v["pid"] == pid}
    assert len(rows) == 1, dump("sockets")
    return next(iter(rows.items()))


if not KERNEL:
    def test_load_fails_clearly_without_ktls():
        r = stats("load")
        assert r.returncode != 0
        assert r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("ktls-shim-stats: cannot "), r.stderr
        assert ("'tls' module" in lines[0] or "no BTF" in lines[0]
                or "bpffs" in lines[0]), r.stderr
        assert not os.path.exists(f"{PIN}/sockets")
        r = stats("show")
        assert r.returncode != 0 and "not loaded" in r.stderr

    def test_shimmed_transfer_unaffected(certs, shim_config):
        cli, c = transfer(certs, shim_config, 300000, 200000)
        assert int(c["sent"]) == 300000 and int(c["recv"]) == 200000
        (sess,) = shim_sessions(cli.err)
        assert sess["tx"] == sess["rx"] == "kernel-has-no-tls"
        # Nothing about eBPF above debug level, nothing on stdout.
        for line in cli.err.splitlines():
            assert "ebpf" not in line or " debug: " in line, line
        assert "ebpf" not in cli.out

else:
    def test_counts_equal_application_bytes(loaded, certs, shim_config):
        send, peer = 3 * MiB + 12345, MiB + 777
        before = tls_stat()
        cli, c = transfer(certs, shim_config, send, peer)
        d = delta(before, tls_stat())
        assert c["kernel_tx"] == c["kernel_rx"] == "1"
        assert d["TlsTxSw"] == d["TlsRxSw"] == 1, d
        cookie, v = row_of(cli.p.pid)
        assert SOCK_FIELDS <= set(v), sorted(v)
        assert comm(v["comm"]) == "tls_xfer"
        assert v["tx_bytes"] == send == int(c["sent"]), v
        assert v["rx_bytes"] == peer == int(c["recv"]), v
        assert v["tx_sw_bytes"] == send and v["tx_device_bytes"] == 0, v
        assert v["tx_ctrl_bytes"] == CTRL, v
        assert v["rx_ctrl_bytes"] == CTRL, v
        assert v["tx_errors"] == 0, v
        assert v["tx_calls"] >= 1 and v["rx_calls"] >= 1, v
        assert (v["tx_sw"], v["tx_device"], v["rx_sw"]) == (1, 0, 1), v
        # The shim registered the socket under the same cookie (SO_COOKIE).
        owners = dump("owners")
        assert cookie in owners, owners
        o = owners[cookie]
        assert OWNER_FIELDS <= set(o), sorted(o)
        assert o["pid"] == cli.p.pid and comm(o["comm"]) == "tls_xfer"
        assert (o["version"], o["cipher_type"]) == (TLS12, AES_GCM_128)
        # Software crypto both ways, as the kernel's sock_diag reply says
        # (TLS_INFO_TXCONF/RXCONF = TLS_CONF_SW), not just "in the kernel".
        assert (o["tx_mode"], o["rx_mode"]) == (KTLS_MODE_SW, KTLS_MODE_SW)
        # The client exited: its close rolled the row into the totals.
        assert v["closed"] == 1, v
        # The human view and --json agree with the map.
        j = json.loads(stats("show", "--json", check=0).stdout)
        (mine,) = [x for x in j["sockets"] if x["cookie"] == cookie]
        assert mine["tx_bytes"] == send and mine["rx_bytes"] == peer
        assert mine["owner"]["version"] == "TLS1.2"
        assert (mine["owner"]["tx_mode"], mine["owner"]["rx_mode"]) == (
            "sw", "sw")
        assert mine["closed"] is True
        table = stats("show", check=0).stdout
        (line,) = [l for l in table.splitlines()
                   if l.startswith(str(cookie) + " ")]
        assert line.split()[3:8] == ["3x", "TLS1.2", "AES-128-GCM", "sw",
                                     "sw"], line
        # Stats on: the shim says nothing about them.
        assert "ebpf stats off" not in cli.err

    def test_sendfile_counted(loaded, certs, shim_config, workdir):
        path = workdir / "ebpf-sendfile.bin"
        size = 2 * MiB + 4097
        make_file(path, size, seed=11)
        cli, c = transfer(certs, shim_config, 0, 1000,
                          ["--sendfile", str(path), "--chunk", "1000000"])
        assert int(c["sent"]) == size
        _, v = row_of(cli.p.pid)
        assert v["tx_bytes"] == size, v
        assert v["rx_bytes"] == 1000, v
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
        if (major, minor) < (6, 5):
            # 6.1: sendfile arrives through tls_sw_sendpage.
            assert v["tx_sendpage_bytes"] == size, v
        else:
            # 6.5+: through tls_sw_sendmsg with MSG_SPLICE_PAGES.
            assert v["tx_sendpage_bytes"] == 0, v

    def test_two_processes_share_one_instance(loaded, certs, shim_config):
        a, _ = transfer(certs, shim_config, 5000, 6000)
        b, _ = transfer(certs, shim_config, 7000, 8000)
        for p, tx, rx in ((a, 5000, 6000), (b, 7000, 8000)):
            _, v = row_of(p.p.pid)
            assert (v["tx_bytes"], v["rx_bytes"]) == (tx, rx), v
        assert stats("load", check=0).stdout.startswith("already loaded")

    def test_gnutls_socket_counted(loaded, certs, shim_config):
        """A GnuTLS program's socket (shim/gnutls/) is accounted
        for like an OpenSSL one: shimmed gnutls-serv --echo, TLS 1.2 (both
        directions in the kernel on every kernel), an unshimmed OpenSSL
        client; the row's bytes are the echo's, exactly."""
        from conftest import free_port, wait_port
        size = MiB + 4321
        port = free_port()
        srv = Proc(["gnutls-serv", "--echo", "-p", str(port),
                    "--x509certfile", certs["ec"][0],
                    "--x509keyfile", certs["ec"][1], "--priority",
                    "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM"],
                   shim_env(shim_config), quiet=True)
        wait_port(port)  # a probe without a handshake: never in the map
        cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls",
                    "1.2", "--send", str(size), "--recv-until", str(size),
                    "--text"], plain_env())
        assert cli.wait() == 0, cli.err
        (c,) = parse_conns(cli.out)
        assert int(c["sent"]) == int(c["recv"]) == size
        assert c["sent_sha256"] == c["recv_sha256"]
        cookie, v = row_of(srv.p.pid)
        srv.p.terminate()
        srv.p.wait(timeout=30)
        assert comm(v["comm"]) == "gnutls-serv", v
        assert v["rx_bytes"] == size and v["tx_bytes"] == size, v
        assert v["tx_sw_bytes"] == size and v["tx_errors"] == 0, v
        # GnuTLS sent its Finished itself, before the move: the only
        # control records are the client's close_notify and the one
        # gnutls-serv answers with (gnutls_bye, through the kernel).
        assert v["tx_ctrl_bytes"] == CLOSE_NOTIFY, v
        assert v["rx_ctrl_bytes"] == CLOSE_NOTIFY, v
        assert (v["tx_sw"], v["tx_device"], v["rx_sw"]) == (1, 0, 1), v
        o = dump("owners")[cookie]
        assert o["pid"] == srv.p.pid and comm(o["comm"]) == "gnutls-serv"
        assert (o["version"], o["cipher_type"]) == (TLS12, AES_GCM_128)
        assert (o["tx_mode"], o["rx_mode"]) == (KTLS_MODE_SW, KTLS_MODE_SW)

    def test_unload_removes_pins():
        stats("unload")
        stats("load", check=0)
        assert os.path.exists(f"{PIN}/sockets")
        assert os.path.exists(f"{PIN}/owners")
        assert any(n.startswith("link_") for n in os.listdir(PIN))
        stats("unload", check=0)
        assert not os.path.exists(PIN)
        assert "not loaded" in stats("show").stderr

    def test_shim_quiet_when_not_loaded(certs, shim_config):
        stats("unload")
        cli, c = transfer(certs, shim_config, 1000, 1000)
        assert c["kernel_tx"] == "1"
        # One debug line at most, and nothing at info or above.
        lines = [l for l in cli.err.splitlines() if "ebpf" in l]
        assert len(lines) <= 1 and all(" debug: " in l for l in lines), lines

    def closed_totals():
        j = json.loads(stats("show", "--json", check=0).stdout)
        assert TOTALS_FIELDS <= set(j["totals"]["closed"]), j["totals"]
        return j

    def test_totals_survive_closed_sockets(loaded, certs, shim_config):
        """N shimmed transfers, all closed: the totals equal what they
        carried, per process and globally, even once the per-socket rows
        are gone (deleted here as the LRU would evict them)."""
        sizes = [(100000 + i * 4099, 50000 + i * 3001) for i in range(3)]
        base = closed_totals()["totals"]["closed"]
        pids = []
        for send, peer in sizes:
            cli, c = transfer(certs, shim_config, send, peer)
            assert (int(c["sent"]), int(c["recv"])) == (send, peer)
            pids.append(cli.p.pid)
        j = closed_totals()
        t = j["totals"]
        d = {k: t["closed"][k] - base[k] for k in TOTALS_FIELDS}
        assert d["sockets"] == len(sizes), (base, t)
        assert d["tx_bytes"] == sum(a for a, _ in sizes), (base, t)
        assert d["rx_bytes"] == sum(b for _, b in sizes), (base, t)
        assert d["tx_sw_bytes"] == d["tx_bytes"] and d["tx_device_bytes"] == 0
        assert d["tx_ctrl_bytes"] == d["rx_ctrl_bytes"] == len(sizes) * CTRL
        # Errors too (rx: EAGAIN on 7.x, where the client reads ahead).
        rows = [v for v in dump("sockets").values() if v["pid"] in pids]
        assert len(rows) == len(sizes), rows
        assert d["tx_errors"] == 0
        assert d["rx_errors"] == sum(v["rx_errors"] for v in rows), rows
        for k in TOTALS_FIELDS:
            assert t["all"][k] == t["live"][k] + t["closed"][k], (k, t)
        by_pid = {x["pid"]: x["totals"] for x in j["closed_by_pid"]}
        for pid, (send, peer) in zip(pids, sizes):
            assert by_pid[pid]["sockets"] == 1, by_pid
            assert (by_pid[pid]["tx_bytes"], by_pid[pid]["rx_bytes"]) == (
                send, peer), by_pid
        # bpftool sees the same maps with field names.
        assert TOTALS_FIELDS <= set(dump("totals")[0])
        assert dump("pid_totals")[pids[0]]["tx_bytes"] == sizes[0][0]
        # Evict the rows: the totals do not move.
        for cookie, v in dump("sockets").items():
            if v["pid"] in pids:
                assert v["closed"] == 1, v
                subprocess.run([BPFTOOL, "map", "delete", "pinned",
                                f"{PIN}/sockets", "key", *(
                                    str(b) for b in
                                    cookie.to_bytes(8, "little"))],
                               check=True)
        assert not [v for v in dump("sockets").values() if v["pid"] in pids]
        assert closed_totals()["totals"]["closed"] == t["closed"]
        table = stats("show", check=0).stdout
        assert f"closed, pid {pids[0]}" in table, table

    def ebpf_lines(err):
        """The shim's lines about eBPF; none may be above debug level, and
        nothing else may be above it either (no warn/error at all)."""
        for line in err.splitlines():
            assert not re.match(r"ktls-shim\[\d+\] (warn|error):", line), line
        lines = [l for l in err.splitlines() if "ebpf" in l]
        assert all(" debug: " in l for l in lines), lines
        return lines

    @pytest.fixture
    def unloaded():
        stats("unload", check=0)
        yield
        stats("unload", check=0)

    def test_autoload_by_privileged_process(unloaded, certs, shim_config):
        """A root shimmed process, ebpf_load = auto, pins absent: it loads
        the programs itself (libktls-shim-bpf.so) and its socket is counted;
        the next process reuses the pins."""
        assert not os.path.exists(PIN)
        env = shim_env(shim_config, KTLS_SHIM_EBPF_LOAD="auto")
        send, peer = 123457, 65432
        cli, c = transfer(certs, shim_config, send, peer, env=env)
        assert c["kernel_tx"] == c["kernel_rx"] == "1"
        assert ebpf_lines(cli.err) == [
            l for l in cli.err.splitlines()
            if "ebpf stats loaded by this process" in l], cli.err
        assert len(ebpf_lines(cli.err)) == 1, cli.err
        assert os.path.exists(f"{PIN}/sockets")
        # The first record through the kernel (Finished) passed before the
        # load; everything the application sent and received is counted.
        cookie, v = row_of(cli.p.pid)
        assert (v["tx_bytes"], v["rx_bytes"]) == (send, peer), v
        o = dump("owners")[cookie]
        assert (o["tx_mode"], o["rx_mode"]) == (KTLS_MODE_SW, KTLS_MODE_SW)
        # A second process: already loaded, says nothing, is counted.
        cli2, _ = transfer(certs, shim_config, 1000, 2000, env=env)
        assert ebpf_lines(cli2.err) == [], cli2.err
        _, v = row_of(cli2.p.pid)
        assert (v["tx_bytes"], v["rx_bytes"]) == (1000, 2000), v
        assert stats("load", check=0).stdout.startswith("already loaded")

    def test_autoload_two_processes_load_once(unloaded, certs, shim_config):
        """Two root processes moving sockets at the same time: the bpffs
        lock lets one load; both are counted."""
        env = shim_env(shim_config, KTLS_SHIM_EBPF_LOAD="auto")
        srvs = [Proc([XFER, "--role", "server", "--port", "0", "--tls",
                      "1.2", "--cipher", CIPHER, "--cert", certs["ec"][0],
                      "--key", certs["ec"][1], "--send", "3000"],
                     plain_env()) for _ in range(2)]
        ports = [s.read_port() for s in srvs]
        clis = [Proc([XFER, "--role", "client", "--port", str(p), "--tls",
                      "1.2", "--cipher", CIPHER, "--send", "4000"], env)
                for p in ports]
        for p in clis + srvs:
            assert p.wait() == 0, p.err
        loaders = [c for c in clis
                   if any("loaded by this process" in l
                          for l in ebpf_lines(c.err))]
        assert len(loaders) == 1, [c.err for c in clis]
        for c in clis:
            _, v = row_of(c.p.pid)
            assert v["tx_bytes"] == 4000, v

    def test_autoload_never_by_default(unloaded, certs, shim_config):
        cli, c = transfer(certs, shim_config, 1000, 1000)
        assert c["kernel_tx"] == "1"
        (line,) = ebpf_lines(cli.err)
        assert "ebpf_load = never" in line, line
        assert not os.path.exists(PIN)

    def test_autoload_unprivileged_falls_back_silently(unloaded, certs,
                                                       workdir):
        """The same transfer as nobody: no load, no pins, nothing above
        debug level on the program's stderr, nothing on its stdout but its
        own report, bytes intact (kTLS needs no privilege)."""
        conf = "/tmp/ktls-ebpf-nobody.conf"
        with open(conf, "w") as f:
            f.write("ebpf_load = auto\n")
        os.chmod(conf, 0o644)
        env = shim_env(conf)
        env["KTLS_SHIM_LOG_LEVEL"] = "debug"
        srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", "1.2",
                    "--cipher", CIPHER, "--cert", certs["ec"][0],
                    "--key", certs["ec"][1], "--send", "7777"], plain_env())
        port = srv.read_port()
        cli = Proc(["setpriv", "--reuid", "65534", "--regid", "65534",
                    "--clear-groups", XFER, "--role", "client", "--port",
                    str(port), "--tls", "1.2", "--cipher", CIPHER,
                    "--send", "8888"], env)
        assert cli.wait() == 0, cli.err
        assert srv.wait() == 0, srv.err
        (c,), (s,) = parse_conns(cli.out), parse_conns(srv.out)
        assert c["sent_sha256"] == s["recv_sha256"]
        assert c["kernel_tx"] == c["kernel_rx"] == "1"
        assert "ebpf" not in cli.out
        (line,) = ebpf_lines(cli.err)
        assert "not privileged" in line, line
        assert not os.path.exists(PIN)

    @pytest.fixture
    def no_btf(tmp_path):
        """/sys/kernel/btf/vmlinux hidden under an empty file, as on a
        kernel built without CONFIG_DEBUG_INFO_BTF."""
        empty = tmp_path / "empty-btf"
        empty.write_bytes(b"")
        btf = "/sys/kernel/btf/vmlinux"
        subprocess.run(["mount", "--bind", str(empty), btf], check=True)
        try:
            assert os.path.getsize(btf) == 0
            yield
        finally:
            subprocess.run(["umount", btf], check=True)
        assert os.path.getsize(btf) > 0

    def test_autoload_without_btf_falls_back_silently(unloaded, no_btf,
                                                      certs, shim_config):
        env = shim_env(shim_config, KTLS_SHIM_EBPF_LOAD="auto")
        cli, c = transfer(certs, shim_config, 5000, 6000, env=env)
        assert c["kernel_tx"] == c["kernel_rx"] == "1"
        assert int(c["sent"]) == 5000 and int(c["recv"]) == 6000
        (line,) = ebpf_lines(cli.err)
        assert "no usable BTF" in line, line
        assert not os.path.exists(PIN)
        r = stats("load")
        assert r.returncode == 1 and r.stdout == "", r
        (msg,) = r.stderr.strip().splitlines()
        assert msg.startswith("ktls-shim-stats: cannot load: the kernel has "
                              "no usable BTF"), msg
        assert not os.path.exists(PIN)
