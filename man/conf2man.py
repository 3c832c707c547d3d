#!/usr/bin/env python3
"""ktls-preload.conf(5) from ktls-preload.conf itself, so the page and the
file (whose keys tests/unit/test_config.c checks against the parser's
table) cannot drift apart.

The file's shape: a header comment; then blocks separated by blank lines,
each a comment ending in one "key = default" line, the comment naming the
key's KTLS_SHIM_* variable; then comment-only blocks (program sections),
whose "# [program ...]" and "# key = value" lines are examples.

usage: conf2man.py ktls-preload.conf VERSION OUTPUT"""
import re
import sys

ENV_RE = re.compile(r"\s*\bKTLS_SHIM_[A-Z0-9_]+\b")
KEY_RE = re.compile(r"^([a-z0-9_]+) = ?(.*)$")
EXAMPLE_RE = re.compile(r"^(\[program .*\]|[a-z0-9_]+ = .*)$")


def esc(text):
    """Roff-safe text: backslashes, and a line starting with . or '."""
    text = text.replace("\\", "\\e")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def blocks(lines):
    cur = []
    for line in lines:
        if line.strip():
            cur.append(line.rstrip("\n"))
        elif cur:
            yield cur
            cur = []
    if cur:
        yield cur


def uncomment(lines):
    return [l[1:].strip() if l.startswith("#") else l for l in lines]


def paragraph(text_lines):
    """Comment lines as filled text, example lines as a .nf block."""
    out, prose = [], []
    for l in text_lines:
        if EXAMPLE_RE.match(l):
            if prose:
                out.append(esc(" ".join(prose)))
                prose = []
            out += [".nf", esc(l), ".fi"]
        elif l:
            prose.append(l)
        elif prose:
            out += [esc(" ".join(prose)), ".PP"]
            prose = []
    if prose:
        out.append(esc(" ".join(prose)))
    return out


def key_entry(block):
    m = KEY_RE.match(block[-1])
    key, default = m.group(1), m.group(2)
    text = uncomment(block[:-1])
    env = sorted({e.strip() for l in text for e in ENV_RE.findall(l)})
    # A line that only named the variable goes; the paragraph goes on.
    text = [ENV_RE.sub("", l).rstrip() for l in text
            if not l or ENV_RE.sub("", l).strip()]
    out = [".TP", f'.B "{key} = {esc(default)}"' if default else
           f'.B "{key} ="']
    out += paragraph(text)
    if env:
        out.append(f"Environment: \\fB{', '.join(env)}\\fR.")
    return out


def render(src, version):
    all_blocks = list(blocks(open(src)))
    head, rest = all_blocks[0], all_blocks[1:]
    out = [f'.TH KTLS-PRELOAD.CONF 5 "" "ktls-shim {version}" '
           '"File Formats"',
           ".SH NAME",
           "ktls-preload.conf \\- configuration of libktls-shim.so",
           ".SH DESCRIPTION"]
    # The header's first line names the file: the NAME section says it.
    out += paragraph(uncomment(head[1:]))
    out.append(".SH KEYS")
    tail = []
    for b in rest:
        if KEY_RE.match(b[-1]):
            out += key_entry(b)
        else:
            tail += uncomment(b) + [""]
    if tail:
        out += [".SH PER-PROGRAM SECTIONS"] + paragraph(tail)
    out += [".SH SEE ALSO",
            ".BR libktls-shim (7),",
            ".BR ktls-run (1),",
            ".BR ktls-shim-stats (8)"]
    return "\n".join(out) + "\n"


def main():
    src, version, dst = sys.argv[1:4]
    with open(dst, "w") as f:
        f.write(render(src, version))


if __name__ == "__main__":
    main()
