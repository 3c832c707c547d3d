"""No key material left behind by the shim, none in its logs.

The shimmed program is a tls_xfer client that, after its transfer, frees
its SSL and SSL_CTX and stays alive (--hold). Its unshimmed peer writes an
NSS key log (--keylog); from it this test derives the bytes the shim's path
handles: TLS 1.3 application traffic secrets and the AEAD key and IV of each
direction (HKDF-Expand-Label), TLS 1.2 master secret and key of each
direction (the PRF key block). Then it reads every readable mapping of the
held process through /proc/PID/mem and looks for each of them, as bytes and
as the hex text a key log callback receives.

OpenSSL holds its own copies while an SSL object lives, so the scan is made
after SSL_free and SSL_CTX_free; the same program without the shim is
scanned too, as the baseline for what OpenSSL itself leaves behind (it does
leave TLS 1.3 traffic secrets and IVs in freed heap; how many of those copies
survive depends on the heap's layout, which any preload changes, so the
counts are compared for what the shim itself handled). What a pass proves:
once the program has freed its TLS objects, no copy of any of these secrets
is in the shim's own mappings, none is in its logs, and of the secrets the
shim's engine held (the peer's TLS 1.3 traffic secret and the key and IV
derived from it; on kernels that can rekey also our own traffic secret) no
more copies remain than OpenSSL leaves by itself, for each engine setting
(openssl: OpenSSL installs every key and the shim sees none; auto: the
engine moves TLS 1.3 RX where the kernel can rekey; auto with
tls13_rx_without_rekey: everywhere, wiping right after the install). It
does not prove anything about the time between derivation and install, and
it does not look at kernel memory (where kTLS keeps the keys, as it must).

At log_level=debug, the shim's stderr is searched for every secret in hex
(both cases) and raw."""
import binascii
import hashlib
import hmac
import subprocess

import pytest

from conftest import (ASAN_RT, KERNEL, OSSL_REKEYS, REKEY, XFER, MiB, Proc,
                      one_conn_intact, plain_env, shim_env, shim_sessions)

SUITES = {
    # name: (tls, cipher, hash, key length, iv length)
    "tls13-aes128gcm": ("1.3", "TLS_AES_128_GCM_SHA256", "sha256", 16, 12),
    "tls13-aes256gcm": ("1.3", "TLS_AES_256_GCM_SHA384", "sha384", 32, 12),
    "tls13-chacha20": ("1.3", "TLS_CHACHA20_POLY1305_SHA256", "sha256", 32,
                       12),
    "tls12-aes128gcm": ("1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "sha256", 16,
                        4),
    "tls12-aes256gcm": ("1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", "sha384", 32,
                        4),
}


def hkdf_expand_label(secret, label, length, h):
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\0"
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:length]


def tls12_prf(secret, label, seed, length, h):
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, h).digest()
        out += hmac.new(secret, a + seed, h).digest()
    return out[:length]


def secrets_from_keylog(text, suite):
    """name -> bytes, for the one connection in the key log."""
    tls, _, h, klen, ivlen = SUITES[suite]
    h = getattr(hashlib, h)
    log = {}
    for line in text.splitlines():
        label, *rest = line.split()
        log[label] = [binascii.unhexlify(x) for x in rest]
    out = {}
    if tls == "1.3":
        for side in ("CLIENT", "SERVER"):
            s = log[f"{side}_TRAFFIC_SECRET_0"][1]
            out[f"{side.lower()}_traffic_secret"] = s
            out[f"{side.lower()}_key"] = hkdf_expand_label(s, b"key", klen, h)
            out[f"{side.lower()}_iv"] = hkdf_expand_label(s, b"iv", ivlen, h)
    else:
        crand, master = log["CLIENT_RANDOM"]
        srand = log["SERVER_RANDOM"][1]
        block = tls12_prf(master, b"key expansion", srand + crand,
                          2 * klen + 2 * ivlen, h)
        out["master_secret"] = master
        out["client_key"] = block[:klen]
        out["server_key"] = block[klen:2 * klen]
        # The 4-byte salts are too short to search for meaningfully.
    # A key log callback hands secrets over as hex text: look for that too.
    out.update({f"{n}(hex)": b.hex().encode() for n, b in list(out.items())})
    return out


CHUNK = 1 << 24


def scan_memory(pid, needles):
    """name -> list of the mappings (path or [heap], [stack], anon) where
    each needle occurs, over every readable mapping of pid."""
    hits = {n: [] for n in needles}
    with open(f"/proc/{pid}/maps") as maps, \
            open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            where = f[5] if len(f) > 5 else "anon"
            if "r" not in f[1] or where in ("[vvar]", "[vsyscall]"):
                continue
            # In chunks that overlap by a needle's length, so that a copy
            # across a boundary is still seen once.
            over = max(len(b) for b in needles.values()) - 1
            at = lo
            while at < hi:
                try:
                    mem.seek(at)
                    data = mem.read(min(hi - at, CHUNK + over))
                except OSError:
                    break
                for n, b in needles.items():
                    i = data.find(b)
                    while 0 <= i < CHUNK:
                        hits[n].append(where)
                        i = data.find(b, i + 1)
                at += CHUNK
    return hits


def held_client(certs, workdir, suite, cenv):
    """A transfer whose client stays alive after freeing its TLS objects;
    returns (client Proc, conn line, key log text)."""
    tls, cipher = SUITES[suite][:2]
    keylog = workdir / f"keylog-{suite}"
    keylog.write_text("")
    srv = Proc([XFER, "--role", "server", "--port", "0", "--tls", tls,
                "--cipher", cipher, "--cert", certs["ec"][0], "--key",
                certs["ec"][1], "--send", str(MiB), "--keylog", str(keylog)],
               plain_env())
    port = srv.read_port()
    cli = Proc([XFER, "--role", "client", "--port", str(port), "--tls", tls,
                "--cipher", cipher, "--send", str(MiB), "--hold"], cenv,
               stdin=subprocess.PIPE)
    return srv, cli, keylog


def run_and_scan(certs, workdir, suite, cenv):
    srv, cli, keylog = held_client(certs, workdir, suite, cenv)
    try:
        cli.wait_line("HOLD", timeout=300)
        assert srv.wait(timeout=120) == 0, srv.err
        needles = secrets_from_keylog(keylog.read_text(), suite)
        hits = scan_memory(cli.p.pid, needles)
    finally:
        # EOF lets it exit; communicate() in wait() must not see stdin.
        cli.p.stdin.close()
        cli.p.stdin = None
    assert cli.wait(timeout=60) == 0, cli.err
    c, _ = one_conn_intact(cli.out, srv.out, MiB)
    return cli, c, needles, hits


def leaks_in_log(text, needles):
    raw = text.encode("utf-8", "surrogateescape")
    found = []
    for n, b in needles.items():
        if n.endswith("(hex)"):
            continue
        hx = b.hex()
        if hx in text or hx.upper() in text or b in raw:
            found.append(n)
    return found


@pytest.fixture(scope="module")
def baseline(certs, workdir):
    """What OpenSSL itself leaves in the same program, without the shim."""
    memo = {}

    def get(suite):
        if suite not in memo:
            _, _, _, hits = run_and_scan(certs, workdir, suite, plain_env())
            memo[suite] = hits
        return memo[suite]
    return get


# The ASan runtime reserves terabytes of shadow and keeps freed memory in
# quarantine: neither the scan nor the comparison with a plain run means
# anything there.
# openssl: OpenSSL's own kTLS only. auto: plus the shim's engine (TLS 1.3
# RX; where the kernel can rekey it also keeps the current traffic secrets
# for the session's life, wiped when the SSL is freed). auto-without-rekey:
# the engine also on kernels that cannot rekey (wipes right after install).
ENGINES = {
    "openssl": {"KTLS_SHIM_ENGINE": "openssl"},
    "auto": {"KTLS_SHIM_ENGINE": "auto"},
    "auto-without-rekey": {"KTLS_SHIM_ENGINE": "auto",
                           "KTLS_SHIM_TLS13_RX_WITHOUT_REKEY": "yes"},
    "shim": {"KTLS_SHIM_ENGINE": "shim"},
}
# OpenSSL 3.2+: no engine (the shim holds no secret at all); openssl and
# auto are one case there, and engine = shim moves nothing.
if OSSL_REKEYS:
    del ENGINES["openssl"], ENGINES["shim"]


@pytest.mark.skipif(ASAN_RT is not None, reason="not under the ASan runtime")
@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("suite", list(SUITES))
def test_no_secret_left_after_free(suite, engine, certs, workdir, shim_config,
                                   baseline):
    cenv = shim_env(shim_config, **ENGINES[engine])
    cli, c, needles, hits = run_and_scan(certs, workdir, suite, cenv)
    (sess,) = shim_sessions(cli.err)
    if KERNEL:
        # The keys did go through the shim's path into the kernel.
        assert sess["tx"] == "kernel" and c["kernel_tx"] == "1", cli.err
        if engine == "shim":
            assert sess["engine"] == "shim", cli.err
        else:
            shim_rx = (SUITES[suite][0] == "1.3" and engine != "openssl"
                       and (REKEY or engine == "auto-without-rekey")
                       and not OSSL_REKEYS)
            assert ("rx:shim" in sess["engine"]) == shim_rx, cli.err
    base = baseline(suite)
    summary = {n: (len(hits[n]), len(base[n])) for n in needles}
    print(f"{suite} engine={sess['engine']} hits (shim, baseline): {summary}"
          f" where: {dict((n, base[n]) for n in base if base[n])}")
    assert not leaks_in_log(cli.err, needles), cli.err
    # What the shim itself ever held: the engine's RX secret and what it
    # derives from it, and on kernels that can rekey the TX secret too.
    # OpenSSL 3.0 leaves copies of its own in freed heap, and how many of
    # those survive depends on the heap's layout, which any preload
    # changes: the count is compared only for what the shim handled.
    handled = set()
    if sess["engine"] == "shim":
        # What the engine derived: both directions of TLS 1.2; with TLS
        # 1.3 our TX and (from the keylog) the peer's secret, and the
        # peer's key and IV only where it moved RX. Where RX stays in
        # userspace (6.1), OpenSSL's own decryption leaves what it leaves
        # (ChaCha20's key was seen in stack residue once, varying with
        # the stack's layout, not a copy of ours).
        handled = {n.split("(")[0] for n in needles}
        if SUITES[suite][0] == "1.3" and sess["rx"] != "kernel":
            handled -= {"server_key", "server_iv"}
    elif "rx:shim" in sess["engine"]:
        handled = {"server_traffic_secret", "server_key", "server_iv"}
        if REKEY:
            handled.add("client_traffic_secret")
    for n in needles:
        assert not any("ktls-shim" in w for w in hits[n]), (n, hits[n])
        if n.split("(")[0] in handled:
            # Every copy left must be one OpenSSL leaves without the shim.
            assert len(hits[n]) <= len(base[n]), (n, hits[n], base[n])
