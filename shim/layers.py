#!/usr/bin/env python3
"""Fails the build on an #include that crosses the shim's layers the wrong
way. shim/meson.build states the same graph for the linker; this is its
include-side half, with a message that names the file, the line and the
rule.

usage: layers.py SHIM_DIR STAMP
"""
import pathlib
import re
import sys

# Each layer and the layers it may include from (its own is implied).
ALLOWED = {
    "core": set(),
    "tls": {"core"},
    "kernel": {"core", "tls"},
    "bpf": {"core"},
    "session": {"core", "tls", "kernel", "bpf"},
    "openssl": {"core", "tls", "kernel", "bpf", "session"},
    "gnutls": {"core", "tls", "kernel", "bpf", "session"},
    "interpose": {"core", "tls", "kernel", "bpf", "session", "openssl",
                  "gnutls"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')


def violations(shim):
    for layer, allowed in ALLOWED.items():
        for src in sorted((shim / layer).glob("*.[ch]")):
            for no, line in enumerate(src.read_text().splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                to = m.group(1)
                if to != layer and to not in allowed:
                    yield (f"{src.relative_to(shim.parent)}:{no}: layer "
                           f"'{layer}' includes from '{to}', which it may "
                           f"not use (allowed: "
                           f"{', '.join(sorted(allowed)) or 'none'})")
        # A file in a folder no rule knows is a layer nobody placed.
    for d in sorted(p for p in shim.iterdir() if p.is_dir()):
        if d.name not in ALLOWED:
            yield f"{d.relative_to(shim.parent)}: a folder that is no layer"


def main():
    shim, stamp = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    bad = list(violations(shim))
    for b in bad:
        print(f"layers.py: {b}", file=sys.stderr)
    if bad:
        return 1
    stamp.write_text("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
