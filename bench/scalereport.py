"""bench/scale-bench's callgrind reading, report and checks."""
import glob
import os
import re

KIB = 1024


def callgrind_objects(path):
    """Self instructions (Ir) per object of one callgrind dump, and its
    total. A cost line right after `calls=` is the call's inclusive cost,
    already counted in the callee: skipped."""
    names, objs, cur, skip, total = {}, {}, None, False, None
    for line in open(path, errors="replace"):
        if line.startswith(("ob=", "cob=")):
            # Compressed names: "(id) name" the first time, in either.
            k, _, v = line.strip().partition("=")
            m = re.match(r"\((\d+)\)(?: (.*))?", v)
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if k == "ob":
                cur = names.get(m.group(1)) if m else v
        elif line.startswith("calls="):
            skip = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2 and cur:
                b = os.path.basename(cur)
                objs[b] = objs.get(b, 0) + int(parts[1])
        elif line.startswith("totals:"):
            total = int(line.split()[1])
    return objs, total


def callgrind_dumps(tmp, run, tls, shim):
    """{"n=10 write": {"total": Ir, "objects": {...}}, ...}"""
    out = {}
    for path in glob.glob(os.path.join(tmp, f"cg.{run}.{tls}.*.*")):
        desc = ""
        for line in open(path, errors="replace"):
            if line.startswith("desc: Trigger: Client Request: "):
                desc = line.split("Client Request: ", 1)[1].strip()
                break
        if not desc:
            continue
        objs, total = callgrind_objects(path)
        out[desc] = {"total": total, "objects": objs,
                     "shim": objs.get(os.path.basename(shim), 0)}
    return out


def stage(r, what="stage"):
    return [s for s in r["stages"] if s["what"] == what]


def per_call(r):
    """[(open, op, calls, total Ir per call, shim Ir per call)]"""
    rows = []
    cg = r.get("callgrind", {})
    for s in stage(r):
        for op, calls in (("write", s["writes"]), ("read", s["reads"])):
            d = cg.get(f"n={s['open']} {op}")
            if d and calls:
                rows.append((s["open"], op, calls, d["total"] / calls,
                             d["shim"] / calls))
    return rows


def flat(rows, op, col=3):
    v = [x[col] for x in rows if x[1] == op]
    return (max(v) - min(v)) / min(v) if v and min(v) else None


def slope(r, key):
    """Bytes per connection between the first and last stage."""
    st = [s for s in stage(r) if key in s]
    if len(st) < 2:
        return None
    a, b = st[0], st[-1]
    return (b[key] - a[key]) / (b["open"] - a["open"])


def runs(res, tls):
    return {r["run"]: r for r in res["runs"] if r["tls"] == tls}


def memory_table(res):
    out = ["| TLS | what | without shim | with shim | shim's cost |",
           "|---|---|---|---|---|"]
    for tls in dict.fromkeys(r["tls"] for r in res["runs"]):
        rr = runs(res, tls)
        if "plain" not in rr or "shim" not in rr:
            continue
        for key, label in (("VmRSS", "RSS"), ("RssAnon", "anonymous RSS"),
                           ("heap", "malloc heap in use"),
                           ("slab", "kernel slab (whole VM)")):
            p, s = slope(rr["plain"], key), slope(rr["shim"], key)
            if p is None or s is None:
                continue
            out.append(f"| {tls} | {label}, bytes per connection | {p:,.0f} "
                       f"| {s:,.0f} | {s - p:+,.0f} |")
    return out


def stages_table(res):
    out = ["| TLS | run | open | resumed | kernel TX | kernel RX | RSS MiB "
           "| heap MiB | slab MiB | at (s) |", "|---|---|---|---|---|---|---|"
           "---|---|---|"]
    mib = lambda v: f"{v / 2**20:.1f}" if v is not None else ""  # noqa: E731
    for r in res["runs"]:
        for s in r["stages"]:
            out.append(
                f"| {r['tls']} | {r['run']}{'' if s['what'] == 'stage' else ' (drained)'} "
                f"| {s['open']} | {s['resumed']} | {s['kernel_tx']} | "
                f"{s['kernel_rx']} | {mib(s.get('VmRSS'))} | "
                f"{mib(s['heap'] if r['run'] in ('plain', 'shim') else None)} "
                f"| {mib(s.get('slab'))} | {s['t_s']} |")
    return out


def calls_table(res):
    out = ["| TLS | run | open | call | calls | instructions per call | "
           "of which in the shim |", "|---|---|---|---|---|---|---|"]
    flats = []
    for r in res["runs"]:
        rows = per_call(r)
        for n, op, calls, tot, shim in rows:
            out.append(f"| {r['tls']} | {r['run']} | {n} | SSL_{op}_ex 1 KiB "
                       f"| {calls} | {tot:,.0f} | {shim:,.0f} |")
        for op in ("write", "read"):
            f = flat(rows, op)
            if f is not None:
                flats.append(f"- TLS {r['tls']}, {r['run']}, SSL_{op}_ex: "
                             f"largest / smallest - 1 = {100 * f:.2f} % "
                             f"({'flat within 10 %' if f <= 0.10 else 'NOT flat'})")
    return out, flats


def registered_before(res, r):
    """Sockets the shim registered in `owners` in the same boot before run
    r: each shimmed run's connections and its first (full) one."""
    n = 0
    for x in res["runs"]:
        if x is r:
            return n
        if x.get("boot") == r.get("boot") and x["run"] in ("shim",
                                                           "callgrind"):
            n += res["conns"] + 1
    return n


def maps_table(res):
    out = ["| TLS | when | map | type | max_entries | rows | live rows of "
           "the client | evicted live | owners rows evicted |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        if r["run"] != "shim" or not res["ktls"]:
            continue
        before = registered_before(res, r)
        snaps = [(f"{s['open']} open" + (", drained" if s["what"] != "stage"
                                          else ""), s, s.get("maps", {}))
                 for s in r["stages"]]
        snaps.append(("after close", None, r.get("maps_after_close", {})))
        for when, s, m in snaps:
            for name, v in m.items():
                # Runs before 2026-12-07T0430 read bpftool's hex "value"
                # instead of "formatted": no per-pid figure in them.
                parsed = v.get("rows_parsed")
                live = v["live_rows_of_client"] if parsed else "-"
                ev = gone = ""
                if name == "owners" and s and parsed:
                    ev = str(s["kernel_tx"] - v["live_rows_of_client"])
                if name == "owners":  # this run's sessions and first one
                    gone = str(before + res["conns"] + 1 - v["rows"])
                out.append(f"| {r['tls']} | {when} | {name} | {v['type']} | "
                           f"{v['max_entries']} | {v['rows']} | "
                           f"{live} | {ev} | {gone} |")
    return out


def report(res):
    emu = res["where"] != "native"
    L = [f"# Scale: {res['conns']} concurrent connections, kernel "
         f"{res['kernel']} ({res['where']})", ""]
    if emu:
        L += ["EMULATED: times come from QEMU's software CPU (TCG) and are "
              "no speed claim. Instruction counts (callgrind, userspace of "
              "the client only) are deterministic; memory figures are "
              "deterministic-ish (allocator and page granularity).", ""]
    L += [f"One epoll client, `bench/scale_client`, held {res['conns']} "
          "connections open to an unshimmed `tls_load --role server --mode "
          f"epoll` (each sends {res['data_per_conn']} bytes: one record); "
          "every connection after the first resumed its session. Stages: "
          f"{', '.join(map(str, res['stages']))} open at once. Hard "
          f"open-file limit set to {res['nofile_hard']} before exec. eBPF "
          f"accounting loaded: {'yes' if res['ebpf'] else 'no'}.", "",
          "## Memory per connection", "",
          "Slope between the first and the last stage (bytes per added "
          "connection); the shim's cost = with - without.", ""]
    L += memory_table(res)
    t, flats = calls_table(res)
    L += ["", "## Per-call cost (callgrind, deterministic)", "",
          "User-space instructions of the client per call, collected only "
          "around the probe: 100 SSL_write_ex of 1 KiB over the stage's 10 "
          "newest connections, then SSL_read_ex of 1 KiB through each one's "
          "4 KiB record. Kernel work (kTLS crypto) is not in it.", ""]
    L += t + [""] + flats
    L += ["", "## eBPF maps", "",
          "`evicted live` = sessions the kernel holds for this client minus "
          "its live rows in `owners`; `owners rows evicted` = sockets the "
          "shim registered since the VM booted (earlier shimmed runs, this "
          "one's connections and its first, full-handshake one) minus the "
          "rows there.", ""]
    L += maps_table(res)
    L += ["", "## Every stage", ""] + stages_table(res)
    L += [f"- FAILED: {r['run']} TLS {r['tls']}: {r['error'][-300:]}"
          for r in res["runs"] if r.get("error")]
    L += ["", "Wall time per run (s): " + ", ".join(
        f"{r['run']} TLS {r['tls']} {r['wall_s']}" for r in res["runs"]), ""]
    return "\n".join(L) + "\n"


def check(res):
    """What must hold for the figures to mean anything."""
    bad = []
    for r in res["runs"]:
        tag = f"{r['run']} TLS {r['tls']}"
        if r.get("error"):
            bad.append(f"{tag}: {r['error'][-300:]}")
        for s in stage(r):
            if s["resumed"] != s["open"] - 0:
                bad.append(f"{tag}: {s['resumed']} of {s['open']} resumed")
            moved = r["run"] in ("shim", "callgrind") and res["ktls"]
            if s["kernel_tx"] != (s["open"] if moved else 0):
                bad.append(f"{tag}: kernel TX on {s['kernel_tx']} of "
                           f"{s['open']}")
            cur = s["tls_stat_delta"].get("TlsCurrTxSw", 0)
            if res["ktls"] and cur != (s["open"] if moved else 0):
                bad.append(f"{tag}: TlsCurrTxSw delta {cur}, open "
                           f"{s['open']}")
        if r["run"] in ("callgrind", "cg-plain") and \
                len(per_call(r)) != 2 * len(stage(r)):
            bad.append(f"{tag}: callgrind dumps missing")
    return bad
