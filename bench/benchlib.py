"""Shared by bench/run-bench and bench/check-output: the column sets, the
raw-record to CSV-row conversion, the Markdown report, the gnuplot plots and
the output checker. Standard library only; plots need gnuplot (gnuplot-nox).
"""
import csv
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile

import insnlib  # noqa: E402  (same directory, on sys.path)

GIB = 1 << 30
MIB = 1 << 20

MODES = {
    "a": "userspace OpenSSL",
    "b": "shim: kTLS, SSL_write",
    "c": "shim: kTLS, SSL_sendfile",
    "d": "OpenSSL's own kTLS",
    "e": "plain TCP (no TLS)",
}
CIPHERS = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"]
CIPHER_LABEL = {"aes-128-gcm": "AES-128-GCM", "aes-256-gcm": "AES-256-GCM",
                "chacha20-poly1305": "ChaCha20-Poly1305", "-": "-"}
SIZES = [512, 4096, 16384, 1 << 20]

META_COLS = ["date", "kernel", "cpu_model", "host_cpu_model", "emulated"]

BULK_COLS = META_COLS + [
    "kind", "mode", "mode_desc", "tls", "cipher", "version", "suite",
    "write_size", "bytes", "warmup_bytes", "segments",
    # what the kernel did (getsockopt SOL_TLS), and what OpenSSL believed
    "ktls_tx", "ktls_rx", "lib_ktls_tx", "lib_ktls_rx", "sendfile_used",
    "wall_s", "throughput_mib_s",
    "s_user_s", "s_sys_s", "r_user_s", "r_sys_s",
    "s_cpu_s_per_gib", "r_cpu_s_per_gib",
    "s_user_s_per_gib", "s_sys_s_per_gib", "r_user_s_per_gib",
    "r_sys_s_per_gib",
    "s_syscalls", "r_syscalls", "s_syscalls_per_gib", "r_syscalls_per_gib",
    "s_sendfile_calls", "r_recvmsg_calls",
    "s_copy_bytes", "r_copy_bytes", "s_copy_gib_per_gib",
    "r_copy_gib_per_gib", "verified_bytes",
    # the figures above come from the least disturbed segment (least CPU
    # per byte; throughput: the fastest); these from all segments together
    "s_cpu_spread", "r_cpu_spread", "s_cpu_s_per_gib_all",
    "r_cpu_s_per_gib_all", "throughput_all_mib_s",
] + insnlib.INSN_COLS  # deterministic, VM only (bench/insnlib.py)
# Runs from before the instruction counts lack those columns.
BULK_COLS_LEGACY = BULK_COLS[:-len(insnlib.INSN_COLS)]
BULK_NUM = BULK_COLS[BULK_COLS.index("write_size"):]
BULK_NUM.remove("ktls_tx"), BULK_NUM.remove("ktls_rx")
BULK_NUM.remove("lib_ktls_tx"), BULK_NUM.remove("lib_ktls_rx")
BULK_NUM.remove("sendfile_used")
BULK_FLAGS = ["ktls_tx", "ktls_rx", "lib_ktls_tx", "lib_ktls_rx",
              "sendfile_used"]

CONN_COLS = META_COLS + [
    "kind", "mode", "mode_desc", "tls", "cipher", "version", "suite",
    "conns", "resp_bytes",
    "ktls_tx", "ktls_rx", "c_ktls_tx", "c_ktls_rx",
    "wall_s", "conns_per_s", "s_hs_ms", "c_hs_ms",
    "s_cpu_ms_per_conn", "c_cpu_ms_per_conn",
    "s_calls_per_conn", "c_calls_per_conn",
    # strace -f, all system calls of each process (the shim's own too),
    # per connection: (count at N2 conns - count at N1) / (N2 - N1)
    "s_syscalls_per_conn", "c_syscalls_per_conn",
    "s_strace_per_conn", "c_strace_per_conn",
    # as for bulk: the above from each side's least-CPU segment (conns/s:
    # the client's fastest); these from all segments together
    "segments", "s_cpu_spread", "c_cpu_spread", "conns_per_s_all",
    "s_cpu_ms_per_conn_all", "c_cpu_ms_per_conn_all",
] + insnlib.CONN_INSN_COLS  # deterministic, VM only (bench/insnlib.py)
CONN_COLS_LEGACY = CONN_COLS[:-len(insnlib.CONN_INSN_COLS)]
CONN_NUM = ["conns", "resp_bytes", "wall_s", "conns_per_s", "s_hs_ms",
            "c_hs_ms", "s_cpu_ms_per_conn", "c_cpu_ms_per_conn",
            "s_calls_per_conn", "c_calls_per_conn", "s_syscalls_per_conn",
            "c_syscalls_per_conn", "segments", "s_cpu_spread",
            "c_cpu_spread", "conns_per_s_all", "s_cpu_ms_per_conn_all",
            "c_cpu_ms_per_conn_all"] + insnlib.CONN_INSN_COLS
CONN_OPTIONAL = ["s_syscalls_per_conn", "c_syscalls_per_conn"  # no strace
                 ] + insnlib.CONN_INSN_COLS
CONN_FLAGS = ["ktls_tx", "ktls_rx", "c_ktls_tx", "c_ktls_rx"]

INTERPOSE_COLS = META_COLS + [
    "kind", "op", "callgrind_calls", "plain_instr_per_call",
    "shim_instr_per_call", "added_instr_per_call",
    "excluded_added_instr_per_call", "wall_calls",
    "plain_ns_per_call", "shim_ns_per_call", "wall_ratio",
]
INTERPOSE_NUM = INTERPOSE_COLS[INTERPOSE_COLS.index("callgrind_calls"):]

PLOTS = ["throughput", "cpu-send", "cpu-recv"]


def outputs(stem):
    """Every file one run writes, by role."""
    d = {"bulk": stem + ".csv", "conn": stem + "-conn.csv",
         "interpose": stem + "-interpose.csv", "md": stem + ".md"}
    for p in PLOTS:
        d["png-" + p] = f"{stem}-{p}.png"
    return d


def fnum(x, nd=3):
    """A number for a table: 3 significant digits, no exponent noise."""
    if x is None or x == "":
        return ""
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    digits = max(0, nd - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{digits}f}"


# ---- raw records -> rows ---------------------------------------------------

def parse_kv(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def bulk_row(meta, r):
    f = {k: float(v) for k, v in r.items()
         if isinstance(v, str) and re.fullmatch(r"-?[0-9.]+", v)}
    n, rn = f["s_bytes"], f["r_bytes"]  # each side's timed part
    s_gib, r_gib = GIB / n, GIB / rn
    tls = r["mode"] != "e"
    s_copy = f["s_copy_out_bytes"] + f["s_copy_in_bytes"] + f["s_file_bytes"]
    r_copy = f["r_copy_out_bytes"] + f["r_copy_in_bytes"] + f["r_file_bytes"]
    row = {c: meta.get(c, "") for c in META_COLS}
    row.update({
        "kind": "bulk", "mode": r["mode"], "mode_desc": MODES[r["mode"]],
        "tls": r["tls"] if tls else "-",
        "cipher": r["cipher"] if tls else "-",
        "version": r["version"], "suite": r["suite"],
        "write_size": int(f["size"]), "bytes": int(f["bytes"]),
        "warmup_bytes": int(f["warmup"]), "segments": int(f["segments"]),
        "ktls_tx": int(f["s_kernel_tx"]), "ktls_rx": int(f["r_kernel_rx"]),
        "lib_ktls_tx": int(f["s_lib_tx"]), "lib_ktls_rx": int(f["r_lib_rx"]),
        "sendfile_used": int(f["sendfile_used"]),
        "wall_s": f"{f['wall_s']:.6f}",
        "throughput_mib_s": f"{f['thr_bytes'] / MIB / f['wall_s']:.3f}",
        "s_user_s": f"{f['s_user_s']:.6f}", "s_sys_s": f"{f['s_sys_s']:.6f}",
        "r_user_s": f"{f['r_user_s']:.6f}", "r_sys_s": f"{f['r_sys_s']:.6f}",
        "s_cpu_s_per_gib":
            f"{(f['s_user_s'] + f['s_sys_s']) * s_gib:.6f}",
        "r_cpu_s_per_gib":
            f"{(f['r_user_s'] + f['r_sys_s']) * r_gib:.6f}",
        "s_user_s_per_gib": f"{f['s_user_s'] * s_gib:.6f}",
        "s_sys_s_per_gib": f"{f['s_sys_s'] * s_gib:.6f}",
        "r_user_s_per_gib": f"{f['r_user_s'] * r_gib:.6f}",
        "r_sys_s_per_gib": f"{f['r_sys_s'] * r_gib:.6f}",
        "s_syscalls": int(f["s_calls"]), "r_syscalls": int(f["r_calls"]),
        "s_syscalls_per_gib": f"{f['s_calls'] * s_gib:.1f}",
        "r_syscalls_per_gib": f"{f['r_calls'] * r_gib:.1f}",
        "s_sendfile_calls": int(f["s_sendfile"]),
        "r_recvmsg_calls": int(f["r_recvmsg"]),
        "s_copy_bytes": int(s_copy), "r_copy_bytes": int(r_copy),
        "s_copy_gib_per_gib": f"{s_copy / n:.4f}",
        "r_copy_gib_per_gib": f"{r_copy / rn:.4f}",
        "verified_bytes": int(f["r_verified"]),
        "s_cpu_spread": f"{f['s_spread']:.3f}",
        "r_cpu_spread": f"{f['r_spread']:.3f}",
        "s_cpu_s_per_gib_all":
            f"{f['s_all_cpu_s'] * GIB / f['s_all_bytes']:.6f}",
        "r_cpu_s_per_gib_all":
            f"{f['r_all_cpu_s'] * GIB / f['r_all_bytes']:.6f}",
        "throughput_all_mib_s":
            f"{f['r_all_bytes'] / MIB / f['r_all_wall_s']:.3f}",
    })
    row.update(insnlib.row_cols(r))
    return row


def conn_row(meta, r, strace=None):
    f = {k: float(v) for k, v in r.items()
         if isinstance(v, str) and re.fullmatch(r"-?[0-9.]+", v)}
    k = f["conns"]
    sk, ck = f["s_bytes"], f["r_bytes"]  # connections in each side's segment
    tls = r["mode"] != "e"
    row = {c: meta.get(c, "") for c in META_COLS}
    row.update({
        "kind": "conn", "mode": r["mode"], "mode_desc": MODES[r["mode"]],
        "tls": r["tls"] if tls else "-",
        "cipher": r["cipher"] if tls else "-",
        "version": r["version"], "suite": r["suite"],
        "conns": int(k), "resp_bytes": int(f["size"]),
        "ktls_tx": int(f["s_kernel_tx"]), "ktls_rx": int(f["s_kernel_rx"]),
        "c_ktls_tx": int(f["r_kernel_tx"]), "c_ktls_rx": int(f["r_kernel_rx"]),
        "wall_s": f"{f['wall_s']:.6f}",
        "conns_per_s": f"{f['thr_bytes'] / f['wall_s']:.2f}",
        "s_hs_ms": f"{f['s_hs_s'] * 1e3 / sk:.4f}",
        "c_hs_ms": f"{f['r_hs_s'] * 1e3 / ck:.4f}",
        "s_cpu_ms_per_conn":
            f"{(f['s_user_s'] + f['s_sys_s']) * 1e3 / sk:.4f}",
        "c_cpu_ms_per_conn":
            f"{(f['r_user_s'] + f['r_sys_s']) * 1e3 / ck:.4f}",
        "s_calls_per_conn": f"{f['s_calls'] / sk:.2f}",
        "c_calls_per_conn": f"{f['r_calls'] / ck:.2f}",
        "s_syscalls_per_conn": "", "c_syscalls_per_conn": "",
        "s_strace_per_conn": "", "c_strace_per_conn": "",
        "segments": int(f["segments"]),
        "s_cpu_spread": f"{f['s_spread']:.3f}",
        "c_cpu_spread": f"{f['r_spread']:.3f}",
        "conns_per_s_all": f"{f['r_all_bytes'] / f['r_all_wall_s']:.2f}",
        "s_cpu_ms_per_conn_all":
            f"{f['s_all_cpu_s'] * 1e3 / f['s_all_bytes']:.4f}",
        "c_cpu_ms_per_conn_all":
            f"{f['r_all_cpu_s'] * 1e3 / f['r_all_bytes']:.4f}",
    })
    if strace:
        for side in ("s", "c"):
            per = strace[side]
            row[f"{side}_syscalls_per_conn"] = f"{sum(per.values()):.2f}"
            row[f"{side}_strace_per_conn"] = " ".join(
                f"{n}:{v:.2f}" for n, v in sorted(per.items())
                if abs(v) >= 0.05)
    row.update(insnlib.row_cols(r, insnlib.CONN_INSN_COLS))
    return row


def write_csv(path, cols, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---- the report -------------------------------------------------------------

def _ktls_ok(row):
    """kTLS actually active where the mode is about kTLS."""
    if row["mode"] in ("b", "d"):
        return row["ktls_tx"] == "1"
    if row["mode"] == "c":
        return row["ktls_tx"] == "1" and row["sendfile_used"] == "1"
    return True


def size_label(n):
    n = int(n)
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"


def mode_label(m, rows):
    """'b' plus a warning where kTLS did not happen in some of its rows."""
    bad = [r for r in rows if r["mode"] == m and not _ktls_ok(r)]
    lab = f"{m}: {MODES[m]}"
    if bad:
        lab += " [kTLS NOT active: fallback]" if len(bad) == len(
            [r for r in rows if r["mode"] == m]) else " [kTLS partly inactive]"
    return lab


def index_bulk(rows):
    ix = {}
    for r in rows:
        ix[(r["mode"], r["tls"], r["cipher"], int(r["write_size"]))] = r
    return ix


def ratio(ix, m, tls, c, size, col, invert=False):
    a, x = ix.get(("a", tls, c, size)), ix.get((m, tls, c, size))
    if not a or not x or not _ktls_ok(x):
        return None
    va, vx = float(a[col]), float(x[col])
    if va <= 0 or vx <= 0:
        return None
    return va / vx if invert else vx / va


def crossover(ix, m, tls, c, sizes, better):
    """Smallest write size from which mode m beats a at every larger size
    (better(m_row, a_row) -> bool), or None; and whether m lost anywhere."""
    res = None
    for s in sorted(sizes, reverse=True):
        a, x = ix.get(("a", tls, c, s)), ix.get((m, tls, c, s))
        if not a or not x or not _ktls_ok(x):
            return None, None
        if better(x, a):
            res = s
        else:
            break
    lost = [s for s in sizes if not better(ix[(m, tls, c, s)],
                                           ix[("a", tls, c, s)])]
    return res, lost


def combos(rows):
    seen = []
    for r in rows:
        k = (r["tls"], r["cipher"])
        if r["mode"] != "e" and k not in seen:
            seen.append(k)
    return seen


def md_table(header, lines):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for ln in lines:
        out.append("| " + " | ".join(str(x) for x in ln) + " |")
    return out


def fratio(x):
    return "n/a" if x is None else f"{x:.2f}"


def headline(bulk):
    """The figures the issue asks for, as {(metric, mode, size): median}."""
    ix = index_bulk(bulk)
    out = {}
    for size in sorted({int(r["write_size"]) for r in bulk}):
        for m in "bcd":
            for metric, col, inv in (("send_cpu", "s_cpu_s_per_gib", False),
                                     ("recv_cpu", "r_cpu_s_per_gib", False),
                                     ("throughput", "throughput_mib_s",
                                      False)):
                vals = sorted(v for v in (ratio(ix, m, t, c, size, col, inv)
                                          for t, c in combos(bulk))
                              if v is not None)
                if vals:
                    out[(metric, m, size)] = vals[len(vals) // 2] if len(
                        vals) % 2 else (vals[len(vals) // 2 - 1] +
                                        vals[len(vals) // 2]) / 2
    return out


def write_md(path, stem, meta, bulk, conn, interpose, command):
    base = os.path.basename(stem)
    emulated = meta.get("emulated") == "yes"
    L = [f"# ktls-shim benchmark {base}", ""]
    if emulated:
        L += ["> **EMULATED.** Measured inside QEMU/TCG (software CPU "
              "emulation, `tests/vm/ktls-vm`) because this machine's kernel "
              "has no kTLS. Times and throughputs are emulated: they are "
              "no speed claims. Quote only ratios between modes of this "
              "run, and counts (system calls, bytes copied through "
              "userspace), which do not depend on the CPU. Even the ratios "
              "are distorted: TCG emulates AES-NI/PCLMUL/AVX and kernel "
              "entry at different relative costs than real hardware.", ""]
    L += [f"- Command: `{command}`",
          f"- Date: {meta.get('date')}; kernel `{meta.get('kernel')}`; "
          f"measured {'emulated (QEMU TCG)' if emulated else 'natively'} on "
          f"CPU model `{meta.get('cpu_model')}` (host CPU "
          f"`{meta.get('host_cpu_model')}`), {meta.get('nproc')} CPUs; "
          f"OpenSSL {meta.get('openssl', '?')}",
          f"- kTLS probe: `{meta.get('probe')}`; CPU flags seen: "
          f"{meta.get('cpu_flags') or '-'}",
          f"- Bulk: {size_label(meta.get('bytes', 0))} per case (after an "
          "untimed warm-up the same way: a quarter of that, at most 4 MiB) "
          "over loopback TCP, sender = TLS server, receiver = TLS client, "
          "separate processes; the sender takes the data from a cached "
          f"{size_label(meta.get('file_size', 0))} file (read() per write, "
          "or SSL_sendfile in mode c); the receiver reads in the same size. "
          "Each side times its part in "
          f"{bulk[0]['segments'] if bulk else '?'} consecutive segments; "
          "CPU = user+sys from getrusage over the segment with the least "
          "CPU per byte (the least disturbed by other load; `spread` = "
          "worst/best segment, the CSV also has all segments together), "
          "throughput = the receiver's fastest segment.",
          f"- Host load: {meta.get('other_vms', '?')} other QEMU VM(s) "
          "running on the host when the run started, "
          f"{meta.get('other_vms_end', '?')} when it ended; load average "
          f"{meta.get('loadavg', '?')}.", ""]

    ix = index_bulk(bulk)
    sizes = sorted({int(r["write_size"]) for r in bulk})
    inactive = sorted({r["mode"] for r in bulk if not _ktls_ok(r)})
    if inactive:
        L += [f"> **kTLS was not active** in mode(s) {', '.join(inactive)} "
              "(getsockopt(SOL_TLS) found no key in the kernel: this "
              "kernel's fallback). Those rows measure userspace TLS; no "
              "kTLS ratio is computed from them.", ""]

    L += ["## Headline: ratios to (a) userspace OpenSSL", "",
          "Medians over the TLS version x cipher combinations of this run; "
          "CPU = send (or receive) side CPU seconds per GiB, below 1 is "
          "cheaper than (a); throughput above 1 is faster than (a).", ""]
    h = headline(bulk)
    lines = []
    for size in sizes:
        lines.append([size_label(size)] + [
            fratio(h.get((metric, m, size)))
            for metric in ("send_cpu", "recv_cpu", "throughput")
            for m in "bcd"])
    L += md_table(["write size", "send CPU b/a", "c/a", "d/a",
                   "recv CPU b/a", "c/a", "d/a",
                   "throughput b/a", "c/a", "d/a"], lines)
    L += ["", "Per TLS version and cipher (send-side CPU/GiB ratio; "
          "throughput ratio):", ""]
    lines = []
    for t, c in combos(bulk):
        for size in sizes:
            lines.append([f"TLS {t}", CIPHER_LABEL[c], size_label(size)] + [
                fratio(ratio(ix, m, t, c, size, "s_cpu_s_per_gib"))
                for m in "bcd"] + [
                fratio(ratio(ix, m, t, c, size, "throughput_mib_s"))
                for m in "bcd"])
    L += md_table(["TLS", "cipher", "write", "send CPU b/a", "c/a", "d/a",
                   "thr b/a", "c/a", "d/a"], lines)

    L += ["", "## Small writes: where kTLS stops paying", "",
          "For each mode, the smallest write size from which it needs less "
          "send-side CPU per GiB than (a) at that and every larger size "
          "tested (\"never\": not even at the largest; \"all\": already at "
          "the smallest), then the same for CPU of both sides together "
          "and for throughput.", ""]
    lines = []
    for t, c in combos(bulk):
        row = [f"TLS {t}", CIPHER_LABEL[c]]
        for test in (
            lambda x, a: float(x["s_cpu_s_per_gib"]) < float(
                a["s_cpu_s_per_gib"]),
            lambda x, a: float(x["s_cpu_s_per_gib"]) + float(
                x["r_cpu_s_per_gib"]) < float(a["s_cpu_s_per_gib"]) + float(
                a["r_cpu_s_per_gib"]),
            lambda x, a: float(x["throughput_mib_s"]) > float(
                a["throughput_mib_s"])):
            for m in "bcd":
                s, lost = crossover(ix, m, t, c, sizes, test)
                if lost is None:
                    row.append("n/a")
                elif s is None:
                    row.append("never")
                elif s == sizes[0]:
                    row.append("all")
                else:
                    row.append(f">= {size_label(s)}")
        lines.append(row)
    L += md_table(["TLS", "cipher", "send CPU: b", "c", "d",
                   "both sides CPU: b", "c", "d", "throughput: b", "c", "d"],
                  lines)

    L += ["", "## Bulk transfer: every case", "",
          "thr = throughput (MiB/s"
          + (", emulated" if emulated else "") + "); CPU in s/GiB (user+sys) "
          "for the sender (s) and receiver (r); calls/GiB = calls per GiB of "
          "payload made by the program and libssl (read, write, recvmsg, "
          "sendmsg, sendfile, file reads, ...); copy = GiB copied between "
          "kernel and userspace per GiB of payload (file read + socket "
          "write on the sender; socket read on the receiver); "
          "tx/rx = kernel kTLS TX on the sender, RX on the receiver "
          "(getsockopt SOL_TLS).", ""]
    lines = []
    for r in bulk:
        lines.append([
            r["mode"], r["tls"], CIPHER_LABEL.get(r["cipher"], r["cipher"]),
            size_label(r["write_size"]),
            f"{r['ktls_tx']}/{r['ktls_rx']}" + (
                " sf" if r["sendfile_used"] == "1" else ""),
            fnum(r["throughput_mib_s"]), fnum(r["s_cpu_s_per_gib"]),
            fnum(r["s_cpu_spread"]),
            fnum(r["r_cpu_s_per_gib"]), fnum(r["s_user_s_per_gib"]),
            fnum(r["s_sys_s_per_gib"]), fnum(r["s_syscalls_per_gib"]),
            fnum(r["r_syscalls_per_gib"]), fnum(r["s_copy_gib_per_gib"]),
            fnum(r["r_copy_gib_per_gib"])])
    L += md_table(["mode", "TLS", "cipher", "write", "tx/rx", "thr",
                   "s CPU/GiB", "s spread", "r CPU/GiB", "s user", "s sys",
                   "s calls/GiB", "r calls/GiB", "s copy", "r copy"], lines)
    L += ["", "Modes: " + "; ".join(f"({m}) {d}" for m, d in MODES.items())
          + ". \"sf\": the sender used SSL_sendfile.", ""]
    L += insnlib.md_section(bulk, size_label, CIPHER_LABEL, md_table)

    if conn:
        L += ["## Connections: handshake-to-kernel switch cost", "",
              f"{conn[0]['conns']} sequential connections per row: TCP "
              "connect, handshake, "
              f"{size_label(conn[0]['resp_bytes'])} response, close_notify "
              "both ways, after untimed warm-up connections, in "
              f"{conn[0]['segments']} segments as for bulk (per side the "
              "least-CPU segment; conns/s: the client's fastest). "
              "hs = mean time in SSL_accept/SSL_connect (the "
              "kernel key install happens inside it); CPU = user+sys per "
              "connection; calls = I/O calls by the program and libssl; "
              "syscalls = every system call per connection counted with "
              "strace -f (the shim's own included), from two runs of "
              "different length so start-up cancels out. Server = s, "
              "client = c.", ""]
        lines = []
        for r in conn:
            lines.append([
                r["mode"], r["tls"], CIPHER_LABEL.get(r["cipher"],
                                                      r["cipher"]),
                f"{r['ktls_tx']}/{r['ktls_rx']}",
                fnum(r["conns_per_s"]), fnum(r["s_hs_ms"]),
                fnum(r["c_hs_ms"]), fnum(r["s_cpu_ms_per_conn"]),
                fnum(r["c_cpu_ms_per_conn"]), fnum(r["s_calls_per_conn"]),
                fnum(r["s_syscalls_per_conn"]) or "-",
                fnum(r["c_syscalls_per_conn"]) or "-"])
        L += md_table(["mode", "TLS", "cipher", "server tx/rx",
                       "conns/s" + (" (emul.)" if emulated else ""),
                       "s hs ms", "c hs ms", "s CPU ms", "c CPU ms",
                       "s calls", "s syscalls", "c syscalls"], lines)
        # The extra system calls, by name, against (a).
        cix = {(r["mode"], r["tls"]): r for r in conn}
        extra = []
        for (m, t), r in cix.items():
            a = cix.get(("a", t))
            if m in ("b", "d") and a and r["s_strace_per_conn"]:
                for side in ("s", "c"):
                    pa = dict((kv.split(":")[0], float(kv.split(":")[1]))
                              for kv in a[f"{side}_strace_per_conn"].split())
                    pr = dict((kv.split(":")[0], float(kv.split(":")[1]))
                              for kv in r[f"{side}_strace_per_conn"].split())
                    d = {n: pr.get(n, 0) - pa.get(n, 0)
                         for n in set(pa) | set(pr)}
                    d = {n: v for n, v in d.items() if abs(v) >= 0.05}
                    tot = sum(d.values())
                    extra.append([m, t, "server" if side == "s" else "client",
                                  f"{tot:+.1f}", " ".join(
                                      f"{n} {v:+.1f}" for n, v in
                                      sorted(d.items())) or "-",
                                  fnum(float(r[f"{side}_hs_ms"]) - float(
                                      a[f"{side}_hs_ms"]))])
        if extra:
            L += ["", "Extra system calls and handshake time per connection "
                  "against (a), from strace:", ""]
            L += md_table(["mode", "TLS", "side", "syscalls", "by name",
                           "hs ms" + (" (emul.)" if emulated else "")],
                          extra)
        L += [""] + insnlib.md_conn(conn, md_table)

    if interpose:
        r0 = interpose[0]
        L += ["## Interposition cost on fds that are not kTLS sockets", "",
              f"Measured natively on the host (kernel `{r0['kernel']}`, "
              f"CPU `{r0['cpu_model']}`), not in the VM: instructions per "
              "call from callgrind (deterministic; `bench/interpose-overhead`)"
              " and wall time per call of the loop itself (the fastest of "
              "several runs; this machine is shared, so expect noise of a "
              "few percent).", ""]
        L += md_table(["call", "instr without", "with shim", "added",
                       "added, program excluded", "ns without", "ns with",
                       "wall ratio"],
                      [[r["op"], fnum(r["plain_instr_per_call"]),
                        fnum(r["shim_instr_per_call"]),
                        fnum(r["added_instr_per_call"]),
                        fnum(r["excluded_added_instr_per_call"]),
                        fnum(r["plain_ns_per_call"]),
                        fnum(r["shim_ns_per_call"]), fnum(r["wall_ratio"])]
                       for r in interpose])
        L += [""]

    L += ["## Plots", ""]
    for p in PLOTS:
        L += [f"![{p}]({base}-{p}.png)", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(L))


# ---- plots ------------------------------------------------------------------

# colour, point type
MODE_STYLE = {"a": ("#000000", 5), "b": ("#1f5fbf", 7), "c": ("#2a9d3a", 9),
              "d": ("#d9531e", 11), "e": ("#888888", 13)}


def _gp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_plots(stem, meta, bulk):
    """throughput, sender CPU/GiB, receiver CPU/GiB by write size: one panel
    per TLS version x cipher, one line per mode; log-log, so ratios between
    modes read as vertical distances."""
    gp = shutil.which("gnuplot")
    if not gp:
        raise RuntimeError("gnuplot not found (apt-get install gnuplot-nox)")
    emulated = meta.get("emulated") == "yes"
    panels = combos(bulk)
    ix = index_bulk(bulk)
    modes = [m for m in "abcde" if any(r["mode"] == m for r in bulk)]
    cols = {"throughput": ("throughput_mib_s", "MiB/s"
                           + (" (emulated)" if emulated else "")),
            "cpu-send": ("s_cpu_s_per_gib", "sender CPU s/GiB"
                         + (" (emulated)" if emulated else "")),
            "cpu-recv": ("r_cpu_s_per_gib", "receiver CPU s/GiB"
                         + (" (emulated)" if emulated else ""))}
    titles = {"throughput": "Throughput by write size",
              "cpu-send": "Sender CPU (user+sys) per GiB by write size",
              "cpu-recv": "Receiver CPU (user+sys) per GiB by write size"}
    ncol = min(3, max(1, len(panels)))
    nrow = max(1, math.ceil(len(panels) / ncol))
    with tempfile.TemporaryDirectory() as tmp:
        script = []
        for p in PLOTS:
            col, ylab = cols[p]
            title = (f"{titles[p]} - kernel {meta.get('kernel')}, "
                     + ("EMULATED (QEMU TCG): compare modes, not absolute "
                        "values" if emulated else
                        f"native, {meta.get('cpu_model')}")
                     + ("" if str(meta.get("probe", "")).startswith(
                         "ktls=1") else " - NO kTLS in this kernel"))
            script += [
                f"set terminal pngcairo size {560 * ncol},{500 * nrow + 40} "
                "font 'sans,9'",
                f"set output {_gp_str(os.path.abspath(f'{stem}-{p}.png'))}",
                f"set multiplot layout {nrow},{ncol} title {_gp_str(title)}",
                "set termoption noenhanced",
                "set logscale xy", "set grid",
                "set xrange [256:2097152]",
                "set xtics ('512' 512, '4K' 4096, '16K' 16384, '1M' 1048576)",
                "set xlabel 'write size (bytes)' offset 0,0.5",
                "set bmargin 7",
                f"set ylabel {_gp_str(ylab)}",
                "set key below font ',8' maxrows 3 samplen 2",
            ]
            for t, c in panels:
                plots = []
                for i, m in enumerate(modes):
                    rows = [ix.get((m, t if m != "e" else "-",
                                    c if m != "e" else "-", s))
                            for s in SIZES + sorted(
                                {int(r["write_size"]) for r in bulk} -
                                set(SIZES))]
                    rows = sorted((r for r in rows if r),
                                  key=lambda r: int(r["write_size"]))
                    if not rows:
                        continue
                    dat = os.path.join(tmp, f"{p}-{t}-{c}-{m}.dat")
                    with open(dat, "w") as fh:
                        for r in rows:
                            v = max(float(r[col]), 1e-9)
                            fh.write(f"{r['write_size']} {v}\n")
                    lab = mode_label(m, [r for r in bulk if r["mode"] == m
                                         and (m == "e" or (r["tls"], r[
                                             "cipher"]) == (t, c))])
                    plots.append(
                        f"{_gp_str(dat)} using 1:2 with linespoints "
                        f"lw 2 pt {MODE_STYLE[m][1]} "
                        f"dt {2 if m == 'e' else 1} "
                        f"lc rgb '{MODE_STYLE[m][0]}' title {_gp_str(lab)}")
                script.append(
                    f"set title {_gp_str(f'TLS {t} {CIPHER_LABEL[c]}')}")
                script.append("plot " + ", ".join(plots))
            script.append("unset multiplot")
            script.append("unset output")
        gpfile = os.path.join(tmp, "plots.gp")
        with open(gpfile, "w") as fh:
            fh.write("\n".join(script) + "\n")
        r = subprocess.run([gp, gpfile], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("gnuplot failed: " + r.stderr[-2000:])


# ---- checking ----------------------------------------------------------------

class Problems(list):
    def add(self, where, what):
        self.append(f"{where}: {what}")


def _check_csv(path, cols, num, flags, kind, probs, optional=(),
               legacy=None):
    if not os.path.isfile(path):
        probs.add(path, "missing")
        return []
    with open(path, newline="") as fh:
        rd = csv.reader(fh)
        try:
            header = next(rd)
        except StopIteration:
            probs.add(path, "empty")
            return []
        if legacy and header == legacy:
            cols = legacy
            num = [c for c in num if c in legacy]
        if header != cols:
            probs.add(path, f"columns differ: {header} != {cols}")
            return []
        rows = []
        for i, fields in enumerate(rd, start=2):
            if len(fields) != len(cols):
                probs.add(f"{path}:{i}", f"{len(fields)} fields, want "
                          f"{len(cols)}")
                continue
            r = dict(zip(cols, fields))
            rows.append(r)
            for c in num:
                v = r[c]
                if v == "" and c in optional:
                    continue
                try:
                    x = float(v)
                    if not math.isfinite(x) or x < 0:
                        raise ValueError
                except ValueError:
                    probs.add(f"{path}:{i}", f"{c}={v!r} is not a number "
                              ">= 0")
            for c in flags:
                if r[c] not in ("0", "1"):
                    probs.add(f"{path}:{i}", f"{c}={r[c]!r} is not 0/1")
            if r["kind"] != kind:
                probs.add(f"{path}:{i}", f"kind={r['kind']!r}, want {kind}")
            if r["emulated"] not in ("yes", "no"):
                probs.add(f"{path}:{i}", f"emulated={r['emulated']!r}")
            for c in ("date", "kernel", "cpu_model"):
                if not r[c]:
                    probs.add(f"{path}:{i}", f"{c} is empty")
            if "mode" in r and r["mode"] not in MODES:
                probs.add(f"{path}:{i}", f"mode={r['mode']!r}")
        if not rows:
            probs.add(path, "no rows")
        return rows


def _check_png(path, probs):
    try:
        with open(path, "rb") as fh:
            b = fh.read()
    except OSError as e:
        probs.add(path, str(e))
        return
    if b[:8] != b"\x89PNG\r\n\x1a\n":
        probs.add(path, "no PNG signature")
        return
    if len(b) < 33 or b[12:16] != b"IHDR":
        probs.add(path, "no IHDR chunk")
        return
    w, h = struct.unpack(">II", b[16:24])
    if w < 200 or h < 150:
        probs.add(path, f"implausible size {w}x{h}")
    if b[-8:-4] != b"IEND":
        probs.add(path, "does not end with IEND (truncated?)")
    if len(b) < 2000:
        probs.add(path, f"only {len(b)} bytes: an empty plot?")


def _check_md(path, emulated, probs):
    try:
        text = open(path).read()
    except OSError as e:
        probs.add(path, str(e))
        return
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        probs.add(path, "does not start with a '# ' title")
    tables = 0
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            n = block[0].count("|")
            if len(block) < 3 or not re.fullmatch(r"\|(---\|)+", block[1]):
                probs.add(path, f"malformed table at '{block[0][:40]}'")
            for ln in block:
                if ln.count("|") != n:
                    probs.add(path, f"ragged table row '{ln[:60]}'")
            tables += 1
        else:
            i += 1
    if tables < 3:
        probs.add(path, f"only {tables} tables")
    if emulated and "EMULATED" not in text:
        probs.add(path, "emulated figures without the EMULATED caveat")


def check(stem):
    """Problems with the outputs of the run at stem ([] if none)."""
    probs = Problems()
    o = outputs(stem)
    bulk = _check_csv(o["bulk"], BULK_COLS, BULK_NUM, BULK_FLAGS, "bulk",
                      probs, optional=insnlib.INSN_COLS,
                      legacy=BULK_COLS_LEGACY)
    insnlib.check_rows(o["bulk"], bulk, probs)
    conn = _check_csv(o["conn"], CONN_COLS, CONN_NUM, CONN_FLAGS, "conn",
                      probs, optional=CONN_OPTIONAL, legacy=CONN_COLS_LEGACY)
    insnlib.check_rows(o["conn"], conn, probs, insnlib.CONN_INSN_COLS)
    _check_csv(o["interpose"], INTERPOSE_COLS, INTERPOSE_NUM, [],
               "interpose", probs)
    for i, r in enumerate(bulk, start=2):
        where = f"{o['bulk']}:{i}"
        if r["mode"] in ("a", "e") and (r["ktls_tx"] == "1" or
                                        r["ktls_rx"] == "1"):
            probs.add(where, f"mode {r['mode']} with kTLS in the kernel")
        if r["sendfile_used"] == "1" and (r["mode"] != "c" or
                                          r["ktls_tx"] != "1"):
            probs.add(where, "sendfile_used without mode c on kTLS")
        if r["sendfile_used"] == "1" and float(r["s_copy_gib_per_gib"]) > 0.01:
            probs.add(where, "sendfile, yet payload copied through userspace")
        if r["ktls_tx"] != r["lib_ktls_tx"]:
            probs.add(where, "OpenSSL and the kernel disagree on TX")
        if int(r["verified_bytes"]) <= 0:
            probs.add(where, "received data were not checked")
    for i, r in enumerate(conn, start=2):
        if r["mode"] in ("a", "e") and r["ktls_tx"] == "1":
            probs.add(f"{o['conn']}:{i}",
                      f"mode {r['mode']} with kTLS in the kernel")
    _check_md(o["md"], any(r["emulated"] == "yes" for r in bulk), probs)
    for p in PLOTS:
        _check_png(o["png-" + p], probs)
    return probs


def find_stems(path):
    """A stem, a results directory (its newest run), or a file of a run."""
    if os.path.isdir(path):
        stems = sorted((os.path.join(path, f[:-4]) for f in os.listdir(path)
                        if f.endswith(".csv") and not f.endswith(
                            ("-conn.csv", "-interpose.csv"))),
                       key=lambda s: os.path.getmtime(s + ".csv"))
        return stems[-1:]
    for suf in [".csv", "-conn.csv", "-interpose.csv", ".md"] + [
            f"-{p}.png" for p in PLOTS]:
        if path.endswith(suf):
            return [path[:-len(suf)]]
    return [path]
