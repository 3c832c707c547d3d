"""Shared fixtures for the integration suites.

Every test runs real programs: one side with libktls-shim.so preloaded, the
peer without it (a real, unshimmed OpenSSL or GnuTLS). KTLS_EXPECT says what
the kernel under us must do: "kernel" (kTLS present: sessions must move) or
"fallback" (no kTLS: sessions must stay in userspace, bytes intact). The VM
runner sets "kernel", so a VM that lost kTLS fails instead of skipping.
"""
import errno
import glob
import hashlib
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

BUILD = os.environ.get("KTLS_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
SHIM = os.path.join(BUILD, "shim", "libktls-shim.so")
XFER = os.path.join(BUILD, "tests", "tls_xfer")
# Its GnuTLS twin (tests/tools/gnutls_xfer.c): same stream, same report.
GXFER = os.path.join(BUILD, "tests", "gnutls_xfer")
PY = "/usr/bin/python3"  # Debian's, linked against the system libssl
# Its X.Y, read rather than assumed (3.11 on Debian 12, 3.13 on Debian 13):
# the program name the shim logs ("python3.13") and the testsuite's path.
PY_VER = subprocess.run(
    [PY, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
    capture_output=True, text=True, check=True).stdout.strip()
PY_VERSION = tuple(int(x) for x in PY_VER.split("."))
# The libssl the test programs (tls_xfer, Debian's openssl and python3)
# link: the system's, as (major, minor). 3.2+ moves TLS 1.3 RX and gives
# the kernel each KeyUpdate's next key itself; the shim's engine and its
# record layer for a libssl without kTLS need 3.0/3.1's record layer.
OSSL = tuple(int(x) for x in subprocess.run(
    [PY, "-c", "import ssl; print('%d %d' % ssl.OPENSSL_VERSION_INFO[:2])"],
    capture_output=True, text=True, check=True).stdout.split())
OSSL_REKEYS = OSSL >= (3, 2)
# PostgreSQL (test_own_bio.py) is in Debian 12's test host
# (scripts/install-deps) but not in the Debian 13 root
# (tests/vm/ktls-userland: 20 more packages, 35 MB to fetch and 136 MB
# installed, measured with apt in a scratch copy of the root).
PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))), None)
PG_ABSENT_HERE = not PG_BIN and OSSL_REKEYS


def _build_option(name):
    try:
        with open(os.path.join(BUILD, "meson-info",
                               "intro-buildoptions.json")) as f:
            return {o["name"]: o["value"] for o in json.load(f)}.get(name)
    except (OSError, ValueError):
        return None


# A build made without eBPF on purpose (-Dbpf=disabled, by hand: every
# build of the project's runners, the Debian 13 root's too, has it) has no
# ktls-shim-stats: the cases that need it (marker needs_bpf) are
# deselected there. Any other build without it fails them.
BPF_DISABLED = _build_option("bpf") == "disabled"
HERE = os.path.dirname(os.path.abspath(__file__))


def installed_path(name):
    """Where `meson install` puts the build's file called name (meson's
    own record of it), e.g. the config file the shim reads by default."""
    import json
    with open(os.path.join(BUILD, "meson-info", "intro-installed.json")) as f:
        for src, dst in json.load(f).items():
            if os.path.basename(src) == name:
                return dst
    raise LookupError(f"{name}: not installed by this build")


# The config file the built shim reads when KTLS_SHIM_CONFIG is unset.
CONFIG_PATH = installed_path("ktls-preload.conf")
MiB = 1 << 20


def kernel_has_ktls():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    s, _ = srv.accept()
    try:
        c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
        return True
    except OSError:
        return False
    finally:
        for x in (c, s, srv):
            x.close()


EXPECT = os.environ.get("KTLS_EXPECT") or (
    "kernel" if kernel_has_ktls() else "fallback")
assert EXPECT in ("kernel", "fallback"), EXPECT
KERNEL = EXPECT == "kernel"


def kernel_rekeys():
    """TLS 1.3 rekey (6.14+) came with its counters."""
    try:
        with open("/proc/net/tls_stat") as f:
            return "TlsRxRekeyOk" in f.read()
    except FileNotFoundError:
        return False


# Whether the shim's engine moves TLS 1.3 RX by default here: only where a
# KeyUpdate from the peer can be followed (tls13_rx_without_rekey = no).
REKEY = KERNEL and kernel_rekeys()

# linux/tls.h and linux/tcp.h: TLS_TX_MAX_PAYLOAD_LEN is the newest (the
# 7.2 VM kernel has it; 6.1 and 6.12 do not).
SOL_TLS, TLS_TX, TCP_ULP, TLS_TX_MAX_PAYLOAD_LEN = 282, 1, 31, 5


def kernel_limits_tx():
    """Whether this kernel takes TLS_TX_MAX_PAYLOAD_LEN: a TLS 1.2 socket
    with a zero AES-128-GCM key, asked for 512-byte records."""
    if not KERNEL:
        return False
    ls = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(ls.getsockname())
    s, _ = ls.accept()
    try:
        c.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
        c.setsockopt(SOL_TLS, TLS_TX,
                     struct.pack("HH", 0x0303, 51) + bytes(36))
        c.setsockopt(SOL_TLS, TLS_TX_MAX_PAYLOAD_LEN, struct.pack("H", 512))
        return True
    except OSError as e:
        assert e.errno in (errno.ENOPROTOOPT, errno.EINVAL), e
        return False
    finally:
        for x in (c, s, ls):
            x.close()


def rx_moves(tls):
    """Whether a default-config session's RX ends in the kernel here."""
    return KERNEL and (tls == "1.2" or REKEY)


def rx_state(tls):
    """What the shim reports for RX of a default-config session here."""
    if not KERNEL:
        return "kernel-has-no-tls"
    return "kernel" if rx_moves(tls) else "kernel-cannot-rekey-tls13"

# Bytes each way in the big transfers; the VM (software-emulated CPU) is slow.
BIG = int(os.environ.get("KTLS_TEST_BYTES", str(64 * MiB)))


# Set by the project's own runner (tests/meson.build: every integration and
# VM suite): each tool the suites use must be there, and a missing one is a
# failure, never a skip. Unset (pytest by hand), a test whose tool is
# missing skips, and SKIP_ALLOWLIST lets that skip through.
REQUIRE_ALL = os.environ.get("KTLS_REQUIRE_ALL") == "1"
# promtool (test_prometheus.py): on Debian 12, scripts/install-deps takes it
# alone out of Debian's prometheus package, which it does not install (a
# server, 96 MB), to the first path; Debian 13 packages it apart
# (tests/vm/ktls-userland's root installs it): the second. KTLS_PROMTOOL
# overrides.
PROMTOOL = os.environ.get("KTLS_PROMTOOL") or next(
    (p for p in ("/var/cache/ktls-shim/bin/promtool", "/usr/bin/promtool")
     if os.access(p, os.X_OK)), "/var/cache/ktls-shim/bin/promtool")
ROOT = os.geteuid() == 0

# Figures a test wants in CI's log (load, soak), printed after the results.
FIGURES = []


# ---- Tests cannot pass silently --------------------------------------------
#
# A skipped test fails the run unless its node id and its skip reason match
# an entry here, and the entry's own condition (checked here, not taken from
# the test) holds where it runs. A case that cannot run on one kernel but
# runs on another is deselected, never skipped (host_only and
# kernel_cannot_rekey below; the
# duplicate cuts in KERNEL_DUPLICATES).
# (node id regex, reason regex, condition, why the skip is legitimate)
SKIP_ALLOWLIST = [
    (r"test_secrets\.py::test_no_secret_left_after_free\[",
     r"^not under the ASan runtime$", lambda: bool(ASAN_RT),
     "not under the ASan runtime: its shadow and quarantine make the memory "
     "scan meaningless; the other build runs it"),
    (r"(test_programs\.py::test_shimmed_curl_falls_back_and_works|"
     r"test_own_bio\.py::test_curl_\w+|"
     r"test_curl_nginx\.py::test_curl_\w+)(\[[\w.-]+\])?$",
     r"^curl 7\.88 with the ASan runtime preloaded hangs", lambda: bool(ASAN_RT),
     "not under the ASan runtime: curl hangs in setlocale() with it, shim "
     "or not; the other build runs it"),
    (r"test_own_bio\.py::test_postgres_\w+(\[[\w.-]+\])?$",
     r"^psql and postgres with the ASan runtime preloaded hang",
     lambda: bool(ASAN_RT),
     "not under the ASan runtime: psql and postgres hang with it, shim or "
     "not; the other build runs them"),
    (r"test_valgrind\.py::", r"^the ASan build cannot run under valgrind",
     lambda: bool(ASAN_RT), "not under the ASan runtime: valgrind cannot "
     "run it; the other build runs it"),
    (r"test_hostile_config\.py::", r"^needs root", lambda: not ROOT,
     "needs root (runs a program as nobody, or a privileged one)"),
    (r"test_own_bio\.py::test_postgres_", r"^needs root", lambda: not ROOT,
     "needs root (runs PostgreSQL as nobody)"),
    (r"test_own_bio\.py::test_postgres_", r"^postgresql not installed",
     lambda: not REQUIRE_ALL,
     "missing tool, by hand only (KTLS_REQUIRE_ALL unset)"),
    (r"test_haproxy_apache\.py::test_apache_", r"^needs root",
     lambda: not ROOT, "needs root (Apache serves as nobody)"),
    (r"test_haproxy_apache\.py::", r"^(haproxy|apache2) not installed",
     lambda: not REQUIRE_ALL,
     "missing tool, by hand only (KTLS_REQUIRE_ALL unset)"),
    (r"test_(setuid|install)\.py::", r"^needs root", lambda: not ROOT or (
        not REQUIRE_ALL and not shutil.which("unshare")),
     "needs root (and unshare): mount namespace, setuid copy"),
    (r"test_(ebpf|check|prometheus)\.py::", r"^built without -Dbpf",
     lambda: not REQUIRE_ALL,
     "missing tool, by hand only (KTLS_REQUIRE_ALL unset)"),
    (r"test_prometheus\.py::test_promtool_", r"^promtool not installed",
     lambda: not REQUIRE_ALL,
     "missing tool, by hand only (KTLS_REQUIRE_ALL unset)"),
    (r"test_faults\.py::", r"^built without -Dfault_injection",
     lambda: not REQUIRE_ALL,
     "missing tool, by hand only (KTLS_REQUIRE_ALL unset)"),
    (r"test_(gnutls|nbd_x509|qemu)\.py::",
     r"^(nbdkit/nbdcopy|qemu-img|qemu/nbd tools) not installed",
     lambda: not REQUIRE_ALL,
     "missing tool, by hand only (KTLS_REQUIRE_ALL unset)"),
]


def skip_allowed(nodeid, reason):
    """The allowlist's why for this skip, or None."""
    for node_re, reason_re, cond, why in SKIP_ALLOWLIST:
        if (re.search(node_re, nodeid) and re.search(reason_re, reason)
                and cond()):
            return why
    return None


def _skip_reason(rep):
    lr = rep.longrepr
    text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


def _fail_unlisted_skip(rep, nodeid):
    if not rep.skipped or hasattr(rep, "wasxfail"):
        return
    reason = _skip_reason(rep)
    if skip_allowed(nodeid, reason) is None:
        rep.outcome = "failed"
        rep.longrepr = (f"skipped, and no SKIP_ALLOWLIST entry (conftest.py) "
                        f"allows it here: {nodeid}: {reason!r}"
                        f" (KTLS_REQUIRE_ALL={int(REQUIRE_ALL)})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_unlisted_skip(outcome.get_result(), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at import (pytest.skip(allow_module_level))."""
    outcome = yield
    _fail_unlisted_skip(outcome.get_result(), collector.nodeid)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host_only(why): deselected where the kernel has kTLS "
        "(the case means the same on every kernel; the VM is slow)")
    config.addinivalue_line(
        "markers", "kernel_cannot_rekey: runs only where kTLS is there and "
        "cannot rekey (6.1); deselected elsewhere, never skipped")
    config.addinivalue_line(
        "markers", "needs_bpf: needs ktls-shim-stats (-Dbpf); deselected "
        "in a build made with -Dbpf=disabled, failed in any other without")
    config.addinivalue_line(
        "markers", "needs_postgresql: deselected in the Debian 13 root, "
        "which has no PostgreSQL (PG_ABSENT_HERE); elsewhere a missing "
        "PostgreSQL is a skip")
    config.addinivalue_line(
        "markers", "openssl_30_record_layer(why): the shim's engine or its "
        "record layer at work, which need OpenSSL 3.0/3.1's record layer; "
        "deselected over 3.2+, where such sessions stay in userspace (one "
        "case per module checks that they do and say why)")


# Which VM suite this is (tests/meson.build sets it: bookworm and sid for
# Debian 12, trixie-sid and trixie-trixie for the Debian 13 root; the first
# field below is a regex matched against the whole name): a case
# listed here for a suite is deselected there because the other kernel (or
# this kernel, in another case) runs it with the same outcome. The kernels
# differ in: TLS 1.3 rekey (7.2 only; 6.1 keeps TLS 1.3 RX in userspace by
# default), sendfile (sendpage on 6.1), a partial record polling readable
# (6.1); every case that reaches those stays on both kernels, at least one
# per test (e.g. TLS 1.2 AES-128-GCM everywhere, every cipher in
# test_shim_vs_shim and test_engine_shim).
# Seconds: --durations=0 of a vm-bookworm run (1,400 s) and a vm-sid run
# (1,395 s) on a host shared with another build; vm-bookworm with these
# cuts and its smaller sizes (tests/meson.build) then took 752 s, less
# loaded (tests whose time does not depend on sizes: 1.18x faster).
VM_SUITE = os.environ.get("KTLS_VM_SUITE", "")
# (suite that drops it, node id regex, why)
KERNEL_DUPLICATES = [
    # 15 s: RX under a limit we asked for stays on every kernel, and a peer
    # ignoring it fails the same way; sid and the host run them.
    ("bookworm", r"test_record_size\.py::test_(gnutls_own_record_size_limit_"
     r"keeps_rx|peer_over_our_limit_fails_as_in_userspace|openssl_server_"
     r"ignores_record_size_limit)\[",
     "RX under our own limit stays on every kernel; TLS 1.2 without a "
     "limit in force moves on every kernel"),
    # 128 s: TLS 1.2 with unshimmed OpenSSL/GnuTLS peers at 64 MiB, the
    # ciphers other than AES-128-GCM: both directions move on both kernels
    # (sid runs these three, 6.1 AES-128-GCM: see the sid entry below); 6.1
    # still runs every cipher through its kernel in test_shim_vs_shim and
    # test_engine_shim.
    ("bookworm", r"test_matrix\.py::test_(shim_client_vs_openssl_server|"
     r"shim_server_vs_openssl_client|shim_client_vs_gnutls_echo|"
     r"engine_shim_vs_gnutls_echo)\[tls1\.2-ECDHE-ECDSA-(AES256-GCM-SHA384|"
     r"CHACHA20-POLY1305|AES128-CCM)\]",
     "TLS 1.2 moves both ways on both kernels"),
    # 43 s: TLS 1.3 CCM is refused before the kernel is asked
    # (cipher-unsupported): the host and sid run it.
    ("bookworm", r"test_matrix\.py::test_\w+\[tls1\.3-TLS_AES_128_CCM_SHA256"
     r"[-\]]", "cipher-unsupported on every kernel"),
    # 32 s: engine = openssl: TLS 1.3 TX in the kernel, RX stays with
    # OpenSSL 3.0 on every kernel (no kernel RX, no rekey); sid runs it.
    ("bookworm", r"test_matrix\.py::test_tls13_rx_engine\[.*-openssl\]",
     "TLS 1.3 RX stays with OpenSSL on every kernel"),
    # ~10 s: Python's ssl with engine = shim over TLS 1.2, and a shimmed
    # s_server's TLS 1.2 TX (SSL_write, no sendfile): both directions in
    # the kernel as with auto, which 6.1 runs (and test_matrix's
    # engine_shim the shim's installer); Debian 13's programs run them on
    # sid (vm-trixie-sid), the host Debian 12's.
    ("bookworm", r"test_programs\.py::(test_python_ssl\[\w+-1\.2-shim\]|"
     r"test_curl_downloads_from_shimmed_s_server\[1\.2\])",
     "TLS 1.2 moves both ways on both kernels"),
    # 12 s: TLS 1.2 resumption: the shim's installer as above (sid runs
    # it), and tls13_rx_without_rekey, which changes nothing for TLS 1.2
    # (1.2-auto runs here).
    ("bookworm", r"test_resumption\.py::test_client_resumes_sessions\["
     r"1\.2-(shim|auto-without-rekey)\]",
     "TLS 1.2 moves both ways on both kernels"),
    # 15 s: no secret left after free, TLS 1.2 suites: the shim's memory
    # hygiene does not depend on the kernel; sid runs them.
    ("bookworm", r"test_secrets\.py::test_no_secret_left_after_free\["
     r"tls12-", "TLS 1.2 moves both ways on both kernels"),
    # 39 s: 200 parallel nginx connections: the shim's per-fd state under
    # one epoll worker does not depend on the kernel (sid runs it); 6.1's
    # sendfile path (sendpage) stays covered by the other nginx tests.
    ("bookworm", r"test_nginx\.py::test_nginx_concurrent_connections$",
     "concurrency in the shim, not the kernel"),
    # The config's and the environment's refusals, allowlists and
    # overrides, setuid programs: what they decide is the shim's, before
    # any kernel is asked; they assert only "moved" or not, which 6.1 and
    # 7.2 answer alike (TX). The host and sid run them (config_env:
    # Debian 13's sid suite, vm-trixie-sid).
    ("bookworm", r"test_(config_env|hostile_config|setuid)\.py::",
     "the config decides before the kernel is asked"),
    # Programs' own transports: whether the shim proves one is its watch
    # of libc calls during the handshake, the same on every kernel. 6.1
    # runs what differs there: TLS 1.3 TX in the kernel while RX stays on
    # the program's transport (qemu-img both ways, a migration, GnuTLS
    # push and vec); the rest, refusals included, on sid (qemu with
    # Debian 12; the GnuTLS push/pull tool with Debian 13's GnuTLS 3.8.9,
    # vm-trixie-sid) and the host.
    ("bookworm", r"test_qemu\.py::(test_qemu_img_with_nbdkit\[\w+-psk\]|"
     r"test_qemu_img_custom_transports_off|test_qemu_nbd_serves_nbdcopy|"
     r"test_migration\[(source|destination|multifd)\])",
     "the transport's proof does not depend on the kernel"),
    ("bookworm", r"test_custom_transport\.py::(test_own_transport_refused|"
     r"test_custom_transports_off|test_own_transport_moves\[(push-1\.2|"
     r"vec-1\.2|vec-1\.3-blocking|send)-)",
     "the transport's proof does not depend on the kernel"),
    # The refusals' blocking twins: the host runs them; Debian 13's sid the
    # non-blocking ones, where a refused session must leave the kernel
    # untouched.
    ("trixie-sid", r"test_custom_transport\.py::test_own_transport_"
     r"refused\[\w+-(client|server)-blocking\]",
     "the transport's proof does not depend on the kernel"),
    # Cut when qemu's and the custom transports' tests joined (a CI run
    # of 38m54s: vm-sid 810 s, vm-bookworm 429 s), each the same outcome
    # on both kernels, so one of them runs it (and the host, always):
    # 11 s: the open/close soak is the shim's fd table, not the kernel's
    # (Debian 13's sid suite runs it, and vm-asan-sid with Debian 12).
    ("bookworm", r"test_soak\.py::", "the shim's fd table, not the kernel"),
    # ~25 s: the record layer for a libssl without kTLS over TLS 1.2 moves
    # both directions on both kernels (sid runs these; 6.1 runs TLS 1.3,
    # where RX differs); its cipher matrix is split between the kernels.
    ("bookworm", r"test_openssl_without_ktls\.py::(test_record_layer_moves_"
     r"both_directions\[\w+-1\.2-|test_peek_pending_and_close_notify\[1\.2-|"
     r"test_s_client_fetches\[1\.2\]|test_ssl_bio_program_stays_with_openssl"
     r"\[1\.2\]|test_record_layer_cipher_matrix\[1\.2-ECDHE-ECDSA-(AES256-GCM"
     r"|CHACHA20))", "TLS 1.2 moves both ways on both kernels"),
    ("sid", r"test_openssl_without_ktls\.py::test_record_layer_cipher_matrix"
     r"\[1\.2-ECDHE-ECDSA-(AES128-GCM|AES128-CCM)",
     "TLS 1.2 moves both ways on both kernels"),
    # ~30 s: TLS 1.2 with hostile peers, abortive closes and gnutls-cli:
    # both directions in the kernel on both kernels (6.1 runs them).
    ("sid", r"test_hostile_peer\.py::test_hostile_peer\[\w+-\w+-1\.2-|"
     r"test_keyupdate\.py::test_abortive_close_by_peer\[1\.2-|"
     r"test_gnutls\.py::test_gnutls_cli_shimmed_receives\[1\.2\]",
     "TLS 1.2 moves both ways on both kernels"),
    # 19 s: 200 parallel nginx connections, the shim's per-fd state under
    # one worker: the host runs it, and test_load's 1,000 concurrent moved
    # connections run on both kernels.
    ("sid|trixie-sid", r"test_nginx\.py::test_nginx_concurrent_connections$",
     "concurrency in the shim, not the kernel"),
    # nginx to a peer that asked for small records, engine = auto: OpenSSL
    # declines the session (record-size-limited) before any kernel is
    # asked; 6.1 runs it. engine = shim differs by kernel (TX in the
    # kernel with the limit on 7.2, in userspace on 6.1): both run it.
    ("sid|trixie-sid", r"test_nginx\.py::test_nginx_peer_max_fragment_length"
     r"\[auto-",
     "OpenSSL declines before any kernel is asked"),
    # 31 s: memcheck over OpenSSL's own kTLS TX with the engine's RX
    # (auto): the engine's TLS 1.3 paths run under memcheck with
    # engine = shim (server-tls1.3-shim); the host runs auto under it.
    ("sid", r"test_valgrind\.py::test_transfer_under_memcheck\["
     r"client-tls1\.3-auto\]", "the engine's paths run in the shim case"),
    # 40 s: memcheck over the record layer for libssl without kTLS (TLS
    # 1.2, sendfile): the host runs it (host-plain), the ASan VM suite its
    # kernel paths (record_layer_moves, python_ssl no-ktls), the unit
    # tests under memcheck the crypto_info it builds.
    ("sid|trixie-sid", r"test_valgrind\.py::test_transfer_under_memcheck\["
     r"server-tls1\.2-no-ktls\]", "its kernel paths run under ASan"),
    # 37 s: CPython's test_ssl with engine = shim: the engine's sessions
    # under a large real program run in test_programs' python_ssl cases
    # (every engine, both kernels) and test_matrix; auto, the default,
    # runs here in full.
    ("sid", r"test_cpython_ssl\.py::test_cpython_test_ssl_same_results"
     r"\[shim\]", "engine = shim runs in test_programs and test_matrix"),
    # ~50 s: qemu-nbd's other two credential/direction pairs, the
    # migration into an unshimmed-source destination, and two refusals:
    # the proof is the same on every kernel; the host runs them all.
    # Since Debian 13 joined: qemu-nbd (all four) and qemu-img with
    # custom_transports = no run with qemu 10.0 on sid (vm-trixie-sid)
    # and Debian 12's qemu-img both ways on 6.1; Debian 12 on sid keeps
    # qemu-img and the migrations (~20 s).
    ("sid", r"test_qemu\.py::(test_qemu_nbd_serves_nbdcopy|"
     r"test_qemu_img_custom_transports_off|test_migration\[destination\])",
     "the transport's proof does not depend on the kernel"),
    ("trixie-sid", r"test_custom_transport\.py::test_own_transport_refused\["
     r"(dupfd|sendto)-", "the transport's proof does not depend on the kernel"),
    # ~15 s: TLS 1.3 record padding: whether TX stays is decided by the
    # shim (and OpenSSL) before any key reaches the kernel, the same on
    # 6.1 and 7.2 (only RX differs, which test_matrix covers); sid and
    # the host run it.
    ("bookworm", r"test_record_padding\.py::",
     "padding keeps TX whatever the kernel"),
    # Measured in a vm-sid run (1,395 s, loaded likewise):
    # 16 s: the other half of the first entry: TLS 1.2 AES-128-GCM with
    # unshimmed peers runs on 6.1 only, the other ciphers on sid only
    # (7.2's TLS 1.2 AES-128-GCM: test_shim_vs_shim, test_engine_shim).
    ("sid", r"test_matrix\.py::test_(shim_client_vs_openssl_server|"
     r"shim_server_vs_openssl_client|shim_client_vs_gnutls_echo|"
     r"engine_shim_vs_gnutls_echo)\[tls1\.2-ECDHE-ECDSA-AES128-GCM-SHA256\]",
     "TLS 1.2 moves both ways on both kernels"),
    # 18 s: tls13_rx_without_rekey forced on where the kernel rekeys: the
    # same session as auto (openssl,rx:shim), which test_shim_*_vs_openssl_*
    # and test_shim_client_vs_gnutls_echo run on sid; 6.1 runs these.
    ("sid", r"test_matrix\.py::test_tls13_rx_engine(\[.*-auto-without-rekey\]"
     r"|_vs_gnutls_echo\[)",
     "auto-without-rekey is auto on a kernel that rekeys"),
    # 5 s (promtool's first start, emulated): 6.1's tls_stat counters are
    # a subset of 7.2's, rendered by the same code; sid runs it.
    ("bookworm", r"test_prometheus\.py::test_promtool_checks_the_textfile"
     r"\[None\]$", "the same text format; 7.2 has every counter 6.1 has"),
    # 6 s: ktls-run's TLS 1.2 s_server session moves the same on every
    # kernel; 6.1 and Debian 13's 6.12 (vm-trixie-trixie) run it.
    ("sid", r"test_check\.py::test_ktls_run_s_server_moves_where_check_"
     r"says_ok$", "TLS 1.2 moves both ways on every kernel"),
    # Debian 13 on the newest kernel (vm-trixie-sid) runs every program
    # suite (tests/meson.build). 26 s: memcheck over the GnuTLS engine:
    # GnuTLS 3.7.9 and 3.8.9 reach the same shim code (neither has
    # record_get_max_send_size or kTLS of its own); vm-sid runs it.
    ("trixie-sid", r"test_valgrind\.py::test_transfer_under_memcheck\["
     r"client-tls1\.3-gnutls\]", "the same GnuTLS engine paths over 3.7.9"),
    # ~40 s: with OpenSSL 3.5 on a kernel that rekeys, OpenSSL installs both
    # directions itself and the shim only polices and verifies, the same
    # for either role: every cipher runs with both sides shimmed
    # (test_shim_vs_shim), as a server against an unshimmed OpenSSL client
    # and as a client against unshimmed GnuTLS; and engine = openssl or the
    # RX gate forced open is auto there (6.12, vm-trixie-trixie, runs the
    # gate, where it matters).
    ("trixie-sid", r"test_matrix\.py::(test_shim_client_vs_openssl_server|"
     r"test_tls13_rx_engine)", "OpenSSL 3.5 installs both ways itself"),
    # Cut after a CI run of ~39 min (vm-trixie-sid the biggest suite):
    # with OpenSSL 3.5 the kernels differ only in TLS 1.3 (6.12 cannot
    # rekey), so Debian 13's TLS 1.2 hostile peers, abortive closes,
    # resumptions and server matrix run on 6.12 (vm-trixie-trixie, which
    # runs those files whole) and not again on sid; and the environment's
    # refusals, which the shim decides before any library or kernel is
    # asked, run on both hosts (Debian 12 and the Debian 13 chroot).
    ("trixie-sid", r"test_hostile_peer\.py::test_hostile_peer\[\w+-\w+-1\.2-|"
     r"test_keyupdate\.py::test_abortive_close_by_peer\[1\.2-|"
     r"test_resumption\.py::test_client_resumes_sessions\[1\.2-|"
     r"test_matrix\.py::test_shim_server_vs_openssl_client\[tls1\.2-|"
     r"test_config_env\.py::test_bad_environment_one_line_and_program_works",
     "TLS 1.2 moves both ways on 6.12 and 7.2; refusals before any kernel"),
    # OpenSSL sessions over a program's own BIO (test_own_bio.py): sid
    # runs them all. 6.1 runs what differs there (TLS 1.3 stays, both
    # directions or neither); TLS 1.2 moves, the proof's refusals, the
    # config's off switch and the engines are the same on every kernel.
    ("bookworm", r"test_own_bio\.py::(test_curl_own_bio_moves\[1\.2\]|"
     r"test_curl_custom_transports_off|test_own_bio_send_recv_moves\[1\.2-|"
     r"test_own_bio_refused|test_postgres_own_bio\[\w+-1\.2\]|"
     r"test_postgres_custom_transports_off|test_own_bio_engines|"
     r"test_own_bio_key_updates)",
     "TLS 1.2 moves, and the proof is the same, on every kernel"),
    # ~18 s (the cluster's initdb 11 s, two cases): PostgreSQL's TLS 1.3
    # staying on 6.1 (both directions or neither) is the shim's decision
    # before any program's, which curl's and tls_xfer's own-BIO TLS 1.3
    # cases show there; sid runs PostgreSQL both ways, both versions.
    ("bookworm", r"test_own_bio\.py::test_postgres_own_bio\[\w+-1\.3\]",
     "TLS 1.3 stays on 6.1 whatever the own BIO; curl's case shows it"),
    # ~50 s of Debian 12 on sid (ci15: the suite took 621 s, 92 more than
    # before these programs joined): curl over HTTP/2's TLS 1.2 (Debian
    # 13's curl 8.14 runs it on sid; the 64 MiB here are the TLS 1.3
    # case's), HAProxy 2.6's TLS server and client chain, both versions,
    # with its CPython backend (HAProxy 3.0 runs the chain on sid over
    # the same record layer, OpenSSL 3.5 under it) and its partial record
    # (on 6.1 here, and with HAProxy 3.0 on sid). Debian 12's sid keeps
    # HAProxy's 200 connections and Apache's refusal.
    ("sid", r"test_curl_nginx\.py::test_curl_http2_down_up\[1\.2\]|"
     r"test_haproxy_apache\.py::test_haproxy_(server_and_client|"
     r"partial_record_nonblocking)",
     "the same shim path with Debian 13's programs on sid, or on 6.1"),
    # KeyUpdates on a moved own-BIO session: the shim's record layer's,
    # alike over 3.0 and 3.5; 3.5's run (vm-trixie-sid) also shows the
    # TLS 1.3 secrets its keylog callback keeps only for own BIOs.
    ("sid", r"test_own_bio\.py::test_own_bio_key_updates",
     "the record layer's KeyUpdates, shown with OpenSSL 3.5 on sid"),
    # ~70 s (6.1: 54 s for both versions of the HAProxy chain; sid: 19 s
    # for the 200 connections and Apache; a loaded host): HAProxy and
    # Apache (Debian 12): sid runs them all (TLS 1.2
    # and 1.3 move there; on 6.1 TLS 1.2 moves the same and TLS 1.3 stays
    # as curl's does, which test_own_bio shows on 6.1; Apache's refusal
    # is the proof's, before any kernel). 6.1 runs what its kernel
    # changes: a partial record polls readable there, so HAProxy's epoll
    # loop meets the shim's WANT_READ.
    ("bookworm", r"test_haproxy_apache\.py::test_(haproxy_server_and_client|"
     r"haproxy_parallel|apache_stays_intact)",
     "TLS 1.2 moves, and the proof is the same, on every kernel"),
    # HAProxy 3.0 over OpenSSL 3.5 (Debian 13) on sid: its TLS server and
    # client chain, both versions, and the partial record on its epoll
    # loop (19 s). The 200 connections at once (13 s) are the shim's fd
    # table and record layer, alike with OpenSSL 3.0 (Debian 12's sid runs
    # them; HAProxy 3.0 moved 200 of 200 here, by hand); Apache is not in
    # the root.
    ("trixie-sid", r"test_haproxy_apache\.py::test_(haproxy_parallel|"
     r"apache_stays_intact)",
     "the fd table at 200 is HAProxy 2.6's run's; no Apache in the root"),
    # OpenSSL 3.5's own-BIO sessions move as 3.0's do (the shim's record
    # layer serves them, not libssl's): sid runs curl 8.14 both versions,
    # tls_xfer's non-blocking send/recv BIO in both roles, each refused
    # BIO once (3.5 reads its records its own way) and engine = shim
    # (3.5's engine_all is off: a path of its own). Blocking sockets,
    # engine = openssl and the off switch are the config's and the
    # record layer's, the same with either libssl (Debian 12 runs them).
    ("trixie-sid", r"test_own_bio\.py::(test_own_bio_send_recv_moves\[1\.[23]-"
     r"blocking-|test_own_bio_refused\[\w+-server\]|"
     r"test_own_bio_engines\[openssl\]|test_curl_custom_transports_off)",
     "the config and the record layer, alike with libssl 3.0 and 3.5"),
    # 6.12 runs the one thing its missing rekey changes: curl 8.14's TLS
    # 1.3 session stays, both directions or neither.
    ("trixie-trixie", r"test_own_bio\.py::(?!test_curl_own_bio_moves\[1\.3\])",
     "TLS 1.2 and the proof are the same on 7.2"),
]


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        dup = any(re.fullmatch(suite, VM_SUITE) and
                  re.search(node_re, item.nodeid)
                  for suite, node_re, _ in KERNEL_DUPLICATES)
        host_only = KERNEL and item.get_closest_marker("host_only")
        no_rekey_only = (not KERNEL or REKEY) and item.get_closest_marker(
            "kernel_cannot_rekey")
        rl30_only = OSSL_REKEYS and item.get_closest_marker(
            "openssl_30_record_layer")
        no_bpf = BPF_DISABLED and item.get_closest_marker("needs_bpf")
        no_pg = PG_ABSENT_HERE and item.get_closest_marker(
            "needs_postgresql")
        (drop if dup or host_only or no_rekey_only or rl30_only or no_bpf
         or no_pg else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter):
    for line in FIGURES:
        terminalreporter.write_line(line)


def pytest_report_header(config):
    return (f"ktls-shim integration: expect={EXPECT} kernel={os.uname().release}"
            f" bytes={BIG} shim={SHIM}")


def tls_stat():
    try:
        with open("/proc/net/tls_stat") as f:
            return {k: int(v) for k, v in (l.split() for l in f if l.strip())}
    except FileNotFoundError:
        return {}


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("ktls")


@pytest.fixture(scope="session")
def certs(workdir):
    """An ECDSA P-256 and an RSA-2048 self-signed certificate."""
    out = {}
    for kind, args in (("ec", ["-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-256"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        cert, key = workdir / f"{kind}.crt", workdir / f"{kind}.key"
        subprocess.run(["openssl", "req", "-x509", *args, "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=localhost"], check=True,
                       capture_output=True)
        out[kind] = (str(cert), str(key))
    return out


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def x509_dirs(workdir, name):
    """A test CA and certificates it signed for 127.0.0.1 (and
    localhost), in the file names GnuTLS programs look for in a directory:
    the server's (ca-cert.pem, server-cert.pem, server-key.pem: nbdkit
    --tls-certificates, qemu's tls-creds-x509 endpoint=server) and the
    client's (ca-cert.pem, client-cert.pem, client-key.pem: libnbd's
    tls-certificates, qemu's endpoint=client; a server that verifies its
    peer, as qemu's does by default, gets the client's certificate)."""
    srv, cli = workdir / f"{name}-server", workdir / f"{name}-client"
    for d in (srv, cli):
        d.mkdir(exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ca_key, ca = workdir / f"{name}-ca.key", srv / "ca-cert.pem"
    _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca),
             "-subj", "/CN=ktls-shim test CA", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign")
    shutil.copy(ca, cli / "ca-cert.pem")
    for role, d in (("server", srv), ("client", cli)):
        csr, ext = workdir / f"{name}-{role}.csr", workdir / f"{name}-{role}.ext"
        _openssl("req", *ec, "-keyout", str(d / f"{role}-key.pem"), "-out",
                 str(csr), "-subj", "/CN=127.0.0.1")
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       f"extendedKeyUsage={role}Auth\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey",
                 str(ca_key), "-CAcreateserial", "-out",
                 str(d / f"{role}-cert.pem"), "-days", "2", "-extfile",
                 str(ext))
    return srv, cli


@pytest.fixture(scope="session")
def shim_config(workdir):
    """An empty config file, so a stray /etc/ktls-preload.conf cannot
    change what the tests see."""
    p = workdir / "empty.conf"
    p.write_text("# tests: defaults only\n")
    return str(p)


# With -Dsanitizers=true the shim is built with ASan/UBSan; the programs it
# is preloaded into are not, so the ASan runtime must be preloaded first.
# Their own leaks are not ours to judge: leak detection off, UB still fatal.
ASAN_RT = os.environ.get("KTLS_ASAN_RUNTIME")
# Sanitizer reports go to files here, and _sanitizer_reports fails the test
# that produced one: a report from a program whose exit status the test does
# not check (a peer, a killed server, an expected failure) must not pass.
SAN_DIR = tempfile.mkdtemp(prefix="ktls-san.") if ASAN_RT else None


def san_options(leaks=False):
    """leaks=True for programs whose every allocation is ours to judge
    (tls_load in the soak)."""
    return dict(ASAN_OPTIONS=f"detect_leaks={int(leaks)}:abort_on_error=1:"
                             f"log_path={SAN_DIR}/asan",
                UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:"
                              f"log_path={SAN_DIR}/ubsan")


# ASan's notice that a program switches stacks itself (qemu's coroutines:
# makecontext/swapcontext): a warning about what it may report later, not a
# report. A real one after it still fails the test.
SAN_NOTICE = re.compile(
    r"^==\d+==WARNING: ASan (doesn't fully support makecontext/swapcontext|"
    r"is ignoring requested __asan_handle_no_return).*\n|"
    r"^False positive error reports may follow\n|"
    r"^For details see https://github\.com/google/sanitizers/issues/189\n",
    re.M)


@pytest.fixture(autouse=True)
def _sanitizer_reports():
    yield
    if not SAN_DIR:
        return
    reports = []
    for name in sorted(os.listdir(SAN_DIR)):
        path = os.path.join(SAN_DIR, name)
        with open(path, errors="replace") as f:
            text = f.read()
        os.unlink(path)
        if SAN_NOTICE.sub("", text).strip():
            reports.append(f"== {name}\n{text}")
    if reports:
        pytest.fail("sanitizer reports:\n" + "\n".join(reports)[-30000:],
                    pytrace=False)


def shim_env(config, **extra):
    env = dict(os.environ)
    env.update(LD_PRELOAD=f"{ASAN_RT}:{SHIM}" if ASAN_RT else SHIM,
               KTLS_SHIM_LOG_LEVEL="debug", KTLS_SHIM_CONFIG=config)
    if ASAN_RT:
        env.update(san_options())
    env.update(extra)
    return env


NO_KTLS = os.path.join(BUILD, "tests", "libno-ktls-bio.so")


def no_ktls_env(config, **extra):
    """The shim in front of a libssl that acts as one built without kTLS
    (tests/tools/no_ktls_bio.c): the shim's own record layer's case."""
    env = shim_env(config, **extra)
    env["LD_PRELOAD"] += ":" + NO_KTLS
    return env


# LD_PRELOAD for no_ktls_env's case, where a test takes an env dict.
NO_KTLS_PRELOAD = (f"{ASAN_RT}:{SHIM}" if ASAN_RT else SHIM) + ":" + NO_KTLS


def own_bio_moves(tls):
    """Whether a session over a program's own BIO, proven, moves: both
    directions or neither, so TLS 1.3 only where the kernel can follow a
    KeyUpdate on RX. Any libssl 3: the shim's record layer serves the
    session through the public SSL_* calls, not OpenSSL's record layer."""
    return KERNEL and (tls == "1.2" or REKEY)


def own_moves(tls):
    """Whether the shim's record layer moves a session of a libssl without
    kTLS (or engine = shim's): as own_bio_moves, and only over 3.0/3.1,
    where the engine takes OpenSSL's socket-BIO sessions (3.2+ moves
    those itself, and a libssl 3.2+ without kTLS keeps them)."""
    return own_bio_moves(tls) and not OSSL_REKEYS


def engine_label(tls, engine="auto"):
    """The session line's engine= for a session that moves by default
    under KTLS_SHIM_ENGINE=engine (auto, openssl, shim). 3.0: the shim's
    engine takes TLS 1.3 RX where the kernel rekeys; 3.2+: OpenSSL moves
    everything itself."""
    if OSSL_REKEYS:
        return "openssl"
    if engine == "shim":
        return "shim"
    return ("openssl,rx:shim" if tls == "1.3" and REKEY and engine == "auto"
            else "openssl")


# Engines a test runs a shimmed program under: the shim's engine and its
# record layer (no-ktls) only over 3.0/3.1's record layer; over 3.2+ those
# sessions stay in userspace, which test_matrix.py and
# test_openssl_without_ktls.py check once.
ENGINES_30 = ["auto", "shim", "no-ktls"]
ENGINES_HERE = ENGINES_30 if not OSSL_REKEYS else ["auto"]


# What a session over a libssl 3.2+ without kTLS reports, both directions:
# the shim's record layer needs 3.0/3.1's, so it stays with OpenSSL.
OWN_UNSUPPORTED = "openssl-without-ktls"
# And one under engine = shim with libssl 3.2+.
ENGINE_SHIM_UNSUPPORTED = "engine-shim-needs-openssl-3.0"


def plain_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("KTLS_SHIM") or k == "LD_PRELOAD":
            del env[k]
    return env


SESSION_RE = re.compile(
    r"session fd=(-?\d+) (\S+) (\S+) tx=(\S+) rx=(\S+) engine=(\S+)")
SUMMARY_RE = re.compile(r"summary \S+ sessions=(\d+) tx_kernel=(\d+) "
                        r"rx_kernel=(\d+) kernel_bytes_tx=(\d+) "
                        r"kernel_bytes_rx=(\d+)(.*)")


def shim_sessions(stderr):
    return [dict(zip(("fd", "version", "cipher", "tx", "rx", "engine"), m))
            for m in SESSION_RE.findall(stderr)]


def shim_summary(stderr):
    m = SUMMARY_RE.search(stderr)
    assert m, f"no shim summary line in:\n{stderr[-2000:]}"
    keys = ("sessions", "tx_kernel", "rx_kernel", "bytes_tx", "bytes_rx")
    d = {k: int(v) for k, v in zip(keys, m.groups()[:5])}
    d["rest"] = m.group(6)
    return d


CONN_RE = re.compile(r"^conn=.*$", re.M)


def parse_conns(stdout):
    return [dict(kv.split("=", 1) for kv in line.split())
            for line in CONN_RE.findall(stdout)]


def one_conn_intact(cli_out, srv_out, nbytes, back=None):
    """The single connection of two ends moved nbytes from the first to the
    second and back (default nbytes) the other way, and both ends agree on
    every byte; returns the two conn lines, first end's first."""
    back = nbytes if back is None else back
    (c,), (s,) = parse_conns(cli_out), parse_conns(srv_out)
    assert int(c["sent"]) == int(s["recv"]) == nbytes
    assert int(s["sent"]) == int(c["recv"]) == back
    assert c["sent_sha256"] == s["recv_sha256"]
    assert s["sent_sha256"] == c["recv_sha256"]
    return c, s


_procs = []


@pytest.fixture(autouse=True)
def _reap_children():
    """A failed test must not leave its servers running (and holding
    ports, or the VM's CPU) for the tests after it."""
    yield
    while _procs:
        p = _procs.pop()
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait()


class Proc:
    """A child whose stdout/stderr are collected to strings."""

    def __init__(self, argv, env, stdin=None, cwd=None, quiet=False,
                 reap=True):
        """quiet: discard the output of chatty servers, whose writes would
        otherwise block on a full pipe nobody reads until the end.
        reap=False: a fixture of wider scope owns its end."""
        self.argv = argv
        out = subprocess.DEVNULL if quiet else subprocess.PIPE
        self.p = subprocess.Popen(argv, env=env, stdout=out, stderr=out,
                                  stdin=stdin, cwd=cwd, text=True)
        if reap:
            _procs.append(self)
        self.out = ""
        self.err = ""

    def _read_until(self, pred, what, timeout):
        """Raw reads (no Python buffering that select cannot see) until
        pred(text so far) holds; what was read stays in self.out."""
        fd = self.p.stdout.fileno()
        end = time.time() + timeout
        while not pred(self.out):
            r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
            chunk = os.read(fd, 65536) if r else b""
            if not chunk:
                raise AssertionError(f"{self.argv[0]}: never printed {what}")
            self.out += chunk.decode(errors="replace")

    def read_port(self, timeout=60):
        """tls_xfer servers print 'PORT n' first."""
        self._read_until(lambda t: re.search(r"^PORT \d+\n", t, re.M),
                         "PORT", timeout)
        return int(re.search(r"^PORT (\d+)", self.out, re.M).group(1))

    def wait_line(self, text, timeout=60):
        """Readiness from a line such as s_server's ACCEPT, without a probe
        connection that would use up -naccept."""
        self._read_until(lambda t: text in t, repr(text), timeout)

    def wait(self, timeout=900):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            raise AssertionError(f"{self.argv} timed out; stderr:\n{err}")
        self.out += out or ""
        self.err += err or ""
        return self.p.returncode


def gnutls_xfer_pair(role, certs, gx_opts, peer_opts, env):
    """gnutls_xfer in role (env: shimmed) against an unshimmed tls_xfer,
    each with its options; returns both Procs once both exited 0, and the
    /proc/net/tls_stat delta over the run."""
    cert, key = certs["ec"]
    before = tls_stat()
    if role == "server":
        gx = Proc([GXFER, "--role", "server", "--port", "0", "--cert",
                   cert, "--key", key] + gx_opts, env)
        port = gx.read_port()
        peer = Proc([XFER, "--role", "client", "--port", str(port)] +
                    peer_opts, plain_env())
    else:
        peer = Proc([XFER, "--role", "server", "--port", "0", "--cert", cert,
                     "--key", key] + peer_opts, plain_env())
        port = peer.read_port()
        gx = Proc([GXFER, "--role", "client", "--port", str(port)] +
                  gx_opts, env)
    assert gx.wait() == 0, gx.err[-3000:]
    assert peer.wait() == 0, peer.err[-3000:]
    return gx, peer, delta(before, tls_stat())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def make_file(path, size, seed=1):
    """Deterministic, incompressible-looking content."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    rnd = bytearray(block)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            n = min(left, len(rnd))
            rnd[0:8] = i.to_bytes(8, "little")
            f.write(rnd[:n])
            left -= n
            i += 1
    return sha256_file(path)
