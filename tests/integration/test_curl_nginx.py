"""curl over HTTP/2 (issue 17): unmodified curl, shimmed, against an
unshimmed nginx (the real HTTP/2 server users put it in front of), 64 MiB
down and then 64 MiB up (WebDAV PUT) on the same connection, TLS 1.2 and
1.3. curl's own BIO is proven and moved as in test_own_bio.py; HTTP/2 adds
what HTTP/1.1 does not: nghttp2's framing, several frames per SSL_write,
window updates interleaved with the body, and the connection reused for
the upload. Every case: sha256 at both ends both ways (nginx stores the
upload: its file is hashed), the shim's session line and summary,
/proc/net/tls_stat deltas where the kernel has kTLS."""
import os
import shutil
import signal
import subprocess

import pytest

from conftest import (MiB, Proc, delta, free_port, make_file, plain_env,
                      sha256_file, shim_env, tls_stat, wait_port)
from test_own_bio import check_curl_session, no_asan

NGINX = "/usr/sbin/nginx"
# The size: 64 MiB is 4,000+ records each way, in one connection,
# with HTTP/2 flow control in between (nginx's default 64 KiB stream
# window: curl's window updates go out between the records it reads).
# Measured in the 7.2 VM (TCG): ~7 s each way. KTLS_CURL_H2_BYTES: less
# (Debian 13's suite, tests/meson.build).
N = int(os.environ.get("KTLS_CURL_H2_BYTES", str(64 * MiB)))

CONF = """
worker_processes 1;
user root;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_max_body_size 0;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {d}/www;
        location /up/ {{ root {d}; dav_methods PUT; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def h2_nginx(workdir, certs):
    """An unshimmed nginx serving HTTP/2 over TLS 1.2 and 1.3, taking
    PUTs into d/up: (dir, port, the served file's sha256, the upload's
    source and its sha256)."""
    assert os.path.exists(NGINX), "nginx is not installed (scripts/install-deps)"
    d = workdir / "curl-h2"
    for sub in ("www", "up", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    down_sha = make_file(d / "www" / "down.bin", N, seed=31)
    up = workdir / "curl-h2-up.bin"
    up_sha = make_file(up, N, seed=32)
    port = free_port()
    (d / "nginx.conf").write_text(CONF.format(
        d=d, port=port, cert=certs["ec"][0], key=certs["ec"][1]))
    proc = Proc([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d)],
                plain_env(), quiet=True, reap=False)
    wait_port(port)
    try:
        yield d, port, down_sha, up, up_sha
    finally:
        if proc.p.poll() is None:
            proc.p.send_signal(signal.SIGQUIT)
            proc.wait(timeout=120)
        # The VM's /tmp is memory: later modules need the room.
        shutil.rmtree(d, ignore_errors=True)
        up.unlink(missing_ok=True)


def curl_h2_down_up(h2_nginx, tls, out, env):
    """One curl process, HTTP/2 only: GET the file, then PUT one over
    the same connection (--next; connects=1 then 0)."""
    d, port, _, up, _ = h2_nginx
    v = ["--http2", f"--tlsv{tls}", "--tls-max", tls]
    w = ["-w", "connects=%{num_connects} http=%{http_version} "
               "code=%{response_code}\\n"]
    base = f"https://127.0.0.1:{port}"
    r = subprocess.run(
        ["curl", "-sS", "-k", *v, *w, "-o", str(out), f"{base}/down.bin",
         "--next", "-sS", "-k", *v, *w, "-o", os.devnull, "-T", str(up),
         f"{base}/up/{tls}.bin"],
        env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@no_asan
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_curl_http2_down_up(tls, h2_nginx, shim_config, workdir):
    d, _, down_sha, _, up_sha = h2_nginx
    out = workdir / f"curl-h2-{tls}.out"
    before = tls_stat()
    r = curl_h2_down_up(h2_nginx, tls, out, shim_env(shim_config))
    dl = delta(before, tls_stat())
    # Both transfers over HTTP/2, one connection: a second session would
    # be a second move.
    assert r.stdout.split("\n")[:2] == [
        "connects=1 http=2 code=200", "connects=0 http=2 code=201"], r.stdout
    assert sha256_file(out) == down_sha
    assert sha256_file(d / "up" / f"{tls}.bin") == up_sha
    out.unlink()
    # The file each way and HTTP/2's frames around it (9 bytes a frame of
    # at most 16 KiB, headers, settings, window updates).
    check_curl_session(r.stderr, dl, tls, N, N // 256)
