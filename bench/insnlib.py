"""Guest instruction counts (bench/tcg/insn_count.c, a QEMU TCG plugin):
reading the plugin's snapshots, the CSV columns, the report's section and
their checks. Deterministic: the same on any host, under any host load (the
VM runs them with one vCPU and -icount, bench/README.md "Deterministic")."""
import os

GIB = 1 << 30

# Guest instructions per GiB of payload over the window that ktls_bench
# --mark brackets (payload only, both processes, the whole guest), user
# (lower half) and kernel (upper half); spread: (max - min) / min of the
# total over --insn-repeats runs of the same case (empty for one run).
INSN_COLS = ["g_insn_user_per_gib", "g_insn_kernel_per_gib",
             "g_insn_per_gib", "g_insn_spread"]

# The same per connection (handshake, 1 KiB response, close_notify both
# ways), over the timed connections of a conn case.
CONN_INSN_COLS = ["g_insn_user_per_conn", "g_insn_kernel_per_conn",
                  "g_insn_per_conn", "g_insn_spread"]

PLUGIN = os.path.join("bench", "tcg", "libinsn_count.so")
# icount: virtual time = instructions (1 ns each): timer interrupts and
# preemption land at the same instruction in every run. Measured (8 MiB,
# TLS 1.2, 16 KiB writes, three runs each, 6.1 guest): without it, mode b's
# kernel count varied 83.0M..94.5M (-smp 1) and 95.0M..96.8M (-smp 2);
# with -smp 1 -icount shift=0,sleep=off: 90.47M..90.63M (0.17%), mode a
# 49.51M..49.52M (user identical to 30 ppm).
VM_ARGS = ["--smp", "1", "--icount", "shift=0,sleep=off"]


def marks_count(path):
    try:
        with open(path) as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def window(path, before):
    """(user, kernel) instructions between the two marker lines the plugin
    wrote after line `before`; raises RuntimeError otherwise."""
    with open(path) as fh:
        lines = fh.read().splitlines()[before:]
    marks = [ln.split() for ln in lines if ln.startswith("mark ")]
    if len(marks) != 2:
        raise RuntimeError(f"{len(marks)} window markers in {path}, want 2")
    (u0, k0), (u1, k1) = [(int(m[3]), int(m[4])) for m in marks]
    return u1 - u0, k1 - k0


def measure(run, path, repeats):
    """Runs run() (one marked case; returns its record and stderr) once
    uncounted, then `repeats` times; returns the first counted run's
    record, with g_insn_* added. The uncounted run: the first run of a
    case after another one executed more, the next ones agree (measured,
    4 MiB, 6.1 guest, three runs each: mode a 256 B 629.6 M then 606.8 M,
    606.9 M; mode c 4 KiB 49.6 M then 47.49 M, 47.49 M; with the markers
    on the tick grid, ktls_bench mark_aligned)."""
    run()
    first, totals = None, []
    for _ in range(repeats):
        before = marks_count(path)
        r, err = run()
        u, k = window(path, before)
        totals.append(u + k)
        if first is None:
            first = (dict(r, g_insn_user=str(u), g_insn_kernel=str(k)), err)
    if len(totals) > 1:
        first[0]["g_insn_spread"] = \
            f"{(max(totals) - min(totals)) / min(totals):.6f}"
    return first


def row_cols(r, cols=INSN_COLS):
    """The INSN_COLS (CONN_INSN_COLS) of one bulk (conn) record: per GiB
    of payload (per connection); empty strings when not counted."""
    out = dict.fromkeys(cols, "")
    if "g_insn_user" not in r:
        return out
    per = (GIB / float(r["bytes"]) if cols is INSN_COLS
           else 1 / float(r["conns"]))
    u, k = int(r["g_insn_user"]), int(r["g_insn_kernel"])
    out.update({cols[0]: f"{u * per:.0f}", cols[1]: f"{k * per:.0f}",
                cols[2]: f"{(u + k) * per:.0f}",
                cols[3]: r.get("g_insn_spread", "")})
    return out


def md_conn(conn, md_table):
    rows = [r for r in conn if r.get("g_insn_per_conn")]
    if not rows:
        return []
    a = {r["tls"]: r for r in rows if r["mode"] == "a"}
    lines = []
    for r in rows:
        ra = a.get(r["tls"])
        lines.append([
            r["mode"], r["tls"], f"{r['ktls_tx']}/{r['ktls_rx']}",
            f"{int(r['g_insn_user_per_conn']):,}",
            f"{int(r['g_insn_kernel_per_conn']):,}",
            f"{int(r['g_insn_per_conn']):,}",
            f"{int(r['g_insn_per_conn']) - int(ra['g_insn_per_conn']):+,}"
            if ra else "n/a",
            f"{float(r['g_insn_spread']) * 100:.3f}%"
            if r["g_insn_spread"] else "-"])
    return ["**Deterministic**: guest instructions per connection (both "
            "processes, whole guest; QEMU TCG plugin, bench/tcg), between "
            "markers around the timed connections; - a: added against mode "
            "a of the same TLS version (the switch cost in instructions).",
            ""] + md_table(["mode", "TLS", "tx/rx", "user", "kernel",
                            "total", "- a", "spread"], lines) + [""]


def _g(x):
    """Instructions per GiB, in G (10^9)."""
    return f"{float(x) / 1e9:.2f}"


def md_section(bulk, size_label, cipher_label, md_table):
    rows = [r for r in bulk if r.get("g_insn_per_gib")]
    if not rows:
        return []
    a = {(r["tls"], r["cipher"], r["write_size"]): r for r in rows
         if r["mode"] == "a"}
    L = ["## Deterministic: guest instructions per GiB", "",
         "**Deterministic** (not a time): guest instructions executed per "
         "GiB of payload, counted by a QEMU TCG plugin "
         "(bench/tcg/insn_count.c) between two markers that bracket the "
         "payload (after the warm-up, until the receiver has it all), both "
         "processes and the whole guest kernel, in G (10^9). user/kernel: "
         "by the instruction's address (lower/upper half). x a: total "
         "against mode a of the same TLS version, cipher and write size "
         "(below 1: less work). A `rep movs` copy counts one instruction "
         "per element moved (TCG repeats it per iteration), so copies show "
         "up here too; the copy columns give the bytes copied through "
         "userspace per payload byte. spread: (max - min) / min of the "
         "total over repeated runs of the case.", ""]
    lines = []
    for r in rows:
        ra = a.get((r["tls"], r["cipher"], r["write_size"]))
        x = (f"{float(r['g_insn_per_gib']) / float(ra['g_insn_per_gib']):.2f}"
             if ra else "n/a")
        lines.append([
            r["mode"], r["tls"], cipher_label.get(r["cipher"], r["cipher"]),
            size_label(r["write_size"]),
            f"{r['ktls_tx']}/{r['ktls_rx']}"
            + (" sf" if r["sendfile_used"] == "1" else ""),
            _g(r["g_insn_user_per_gib"]), _g(r["g_insn_kernel_per_gib"]),
            _g(r["g_insn_per_gib"]), x,
            r["s_syscalls_per_gib"], r["s_copy_gib_per_gib"],
            r["r_copy_gib_per_gib"],
            f"{float(r['g_insn_spread']) * 100:.3f}%"
            if r["g_insn_spread"] else "-"])
    L += md_table(["mode", "TLS", "cipher", "write", "tx/rx", "user G/GiB",
                   "kernel G/GiB", "total G/GiB", "x a", "s calls/GiB",
                   "s copy", "r copy", "spread"], lines)
    return L + [""] + _crossover(rows, a, size_label, cipher_label, md_table)


def _crossover(rows, a, size_label, cipher_label, md_table):
    """Per mode: the smallest write size from which it executes fewer guest
    instructions per GiB than (a) at that and every larger size tested."""
    combos = sorted({(r["tls"], r["cipher"]) for r in rows
                     if r["mode"] in "bcd"})
    sizes = sorted({int(r["write_size"]) for r in rows}, reverse=True)
    ix = {(r["mode"], r["tls"], r["cipher"], int(r["write_size"])): r
          for r in rows}
    lines = []
    for t, c in combos:
        row = [f"TLS {t}", cipher_label.get(c, c)]
        for m in "bcd":
            best, seen = None, False
            for sz in sizes:
                x, ra = ix.get((m, t, c, sz)), a.get((t, c, str(sz)))
                if not x or not ra:
                    continue
                seen = True
                if float(x["g_insn_per_gib"]) < float(ra["g_insn_per_gib"]):
                    best = sz
                else:
                    break
            row.append("n/a" if not seen else "never" if best is None else
                       "all" if best == sizes[-1] else
                       f">= {size_label(best)}")
        lines.append(row)
    if not lines:
        return []
    return ["Small writes, deterministic: the smallest write size from which "
            "the mode executes fewer guest instructions per GiB than (a) at "
            "that and every larger size of this run (\"never\": not even "
            "at the largest; \"all\": already at the smallest).", ""] + \
        md_table(["TLS", "cipher", "b", "c", "d"], lines) + [""]


def check_rows(path, rows, probs, cols=INSN_COLS):
    for i, r in enumerate(rows, start=2):
        if not r.get(cols[2]):
            continue
        where = f"{path}:{i}"
        if r["emulated"] != "yes":
            probs.add(where, "guest instruction counts outside the VM")
        try:
            u, k, t = (float(r[c]) for c in cols[:3])
        except ValueError:
            probs.add(where, "g_insn_* are not all numbers")
            continue
        if abs(u + k - t) > 2 or t <= 0:
            probs.add(where, f"g_insn user {u} + kernel {k} != total {t}")


# ---- for the process-level benches (nginx-bench, nbd-bench) ---------------

def vm_setup(build, want):
    """ktls-vm arguments that load the counter, and the inner bench's
    --marks argument; ([], []) when not wanted or not built. The marks file
    lives in a fresh directory shared with the guest."""
    plugin = os.path.join(build, PLUGIN)
    if want == "off" or not os.path.isfile(plugin):
        if want == "on":
            raise SystemExit(f"{plugin} is missing (scripts/install-deps "
                             "puts qemu-plugin.h in place; then rebuild)")
        return [], []
    import tempfile
    d = tempfile.mkdtemp(prefix="ktls-insns.", dir="/var/tmp")
    marks = os.path.join(d, "tcg-marks")
    return (VM_ARGS + ["--share", d, "--plugin", f"{plugin},out={marks}"],
            ["--marks", marks])


def counted(build, marks, fn):
    """Runs fn() between two executions of bench/tcg/tcg-mark; returns
    (fn's result, user, kernel) with the guest instructions in between, or
    (result, None, None) without marks."""
    import subprocess
    if not marks:
        return fn(), None, None
    mark = os.path.join(build, "bench", "tcg", "tcg-mark")
    before = marks_count(marks)
    subprocess.run([mark], check=True)
    res = fn()
    subprocess.run([mark], check=True)
    u, k = window(marks, before)
    return res, u, k


def per_gib(u, k, nbytes):
    """The deterministic columns of a process-level bench row."""
    if u is None:
        return {}
    f = GIB / nbytes
    return {"g_insn_user_per_GiB": round(u * f),
            "g_insn_kernel_per_GiB": round(k * f),
            "g_insn_per_GiB": round((u + k) * f)}
