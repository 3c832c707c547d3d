"""Debian's nginx, unmodified, with a stock-like config (`sendfile on;`,
TLS 1.2 and TLS 1.3 server blocks) under the shim. nginx itself takes the
zero-copy path (SSL_sendfile) when OpenSSL reports kTLS TX after the
handshake; the shim's summary counts the bytes that went out through
sendfile() on kTLS sockets, and /proc/net/tls_stat the kernel sessions."""
import os
import re
import shutil
import signal
import subprocess

import pytest

from conftest import (BIG, KERNEL, Proc, delta, free_port, make_file,
                      plain_env, sha256_file, shim_env, shim_summary,
                      tls_stat, wait_port)

NGINX = "/usr/sbin/nginx"

CONF = """
daemon off;
master_process on;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000;
    default_type application/octet-stream;
    client_body_temp_path {d}/tmp_client;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    server {{ listen 127.0.0.1:{p12} ssl; ssl_protocols TLSv1.2; root {d}/www; }}
    server {{ listen 127.0.0.1:{p13} ssl; ssl_protocols TLSv1.3; root {d}/www; }}
}}
"""


@pytest.fixture(scope="module")
def nginx(workdir, certs, shim_config):
    assert os.path.exists(NGINX), "nginx is not installed (scripts/install-deps)"
    d = workdir / "nginx"
    (d / "www").mkdir(parents=True)
    files = {}
    for name, size in (("1k.bin", 1024), ("1m.bin", 1 << 20), ("big.bin", BIG)):
        files[name] = make_file(d / "www" / name, size, seed=size)
    p12, p13 = free_port(), free_port()
    (d / "nginx.conf").write_text(CONF.format(
        d=d, cert=certs["rsa"][0], key=certs["rsa"][1], p12=p12, p13=p13))
    log = d / "shim.log"
    before = tls_stat()
    proc = Proc([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d)],
                shim_env(shim_config, KTLS_SHIM_LOG=f"file:{log}"), quiet=True,
                reap=False)
    wait_port(p12), wait_port(p13)
    state = {"dir": d, "files": files, "ports": {"1.2": p12, "1.3": p13},
             "log": log, "before": before, "proc": proc}
    try:
        yield state
    finally:
        if proc.p.poll() is None:
            proc.p.send_signal(signal.SIGQUIT)  # graceful: summaries
            proc.wait(timeout=120)


def curl(args, timeout=900):
    r = subprocess.run(["curl", "-sS", "-k", *args], env=plain_env(),
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("name", ["1k.bin", "1m.bin", "big.bin"])
def test_nginx_serves_files_intact(nginx, tls, name, workdir):
    out = workdir / f"ngx-{tls}-{name}"
    port = nginx["ports"][tls]
    curl([f"--tlsv{tls}", "--tls-max", tls, "-o", str(out),
          f"https://127.0.0.1:{port}/{name}"])
    assert sha256_file(out) == nginx["files"][name]


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_nginx_range_and_keepalive(nginx, tls, workdir):
    port = nginx["ports"][tls]
    src = (nginx["dir"] / "www" / "1m.bin").read_bytes()
    # One curl, many URLs: one kept-alive connection, many requests.
    outs = [workdir / f"ka-{tls}-{i}" for i in range(20)]
    args = [f"--tlsv{tls}", "--tls-max", tls]
    for o in outs:
        args += ["-o", str(o), f"https://127.0.0.1:{port}/1m.bin"]
    r = curl(args + ["-w", "%{num_connects}\n"])
    assert sum(int(x) for x in r.stdout.split()) == 1  # connection reused
    assert all(o.read_bytes() == src for o in outs)
    rng = curl([f"--tlsv{tls}", "-r", "1000-300000",
                f"https://127.0.0.1:{port}/1m.bin"]).stdout
    assert rng == src[1000:300001]


def test_nginx_concurrent_connections(nginx, workdir):
    n = 200
    args = ["--parallel", "--parallel-max", str(n), "--parallel-immediate"]
    for i in range(n):
        tls = "1.2" if i % 2 else "1.3"
        args += ["-o", str(workdir / f"par-{i}"),
                 f"https://127.0.0.1:{nginx['ports'][tls]}/1m.bin"]
    curl(args)
    want = nginx["files"]["1m.bin"]
    assert all(sha256_file(workdir / f"par-{i}") == want for i in range(n))


def test_nginx_shimmed_s_client(nginx):
    port = nginx["ports"]["1.2"]
    r = subprocess.run(["openssl", "s_client", "-quiet", "-connect",
                        f"127.0.0.1:{port}"],
                       input=b"GET /1m.bin HTTP/1.0\r\nHost: x\r\n\r\n",
                       env=plain_env(), capture_output=True, timeout=300)
    body = r.stdout.split(b"\r\n\r\n", 1)[1]
    assert body == (nginx["dir"] / "www" / "1m.bin").read_bytes()


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_nginx_to_wget(nginx, tls, workdir):
    """wget (Debian's is built on GnuTLS): a second TLS implementation on
    the client side."""
    assert shutil.which("wget"), "wget is not installed (scripts/install-deps)"
    out = workdir / f"wget-{tls}.bin"
    port = nginx["ports"][tls]
    r = subprocess.run(["wget", "-q", "--no-check-certificate", "-O", str(out),
                        f"https://127.0.0.1:{port}/big.bin"],
                       env=plain_env(), capture_output=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert sha256_file(out) == nginx["files"]["big.bin"]


def test_nginx_zero_copy_summary(nginx):
    """Runs last in this module: stops nginx and reads its summaries."""
    proc = nginx["proc"]
    proc.p.send_signal(signal.SIGQUIT)
    proc.wait(timeout=120)
    text = nginx["log"].read_text()
    summaries = [shim_summary(l) for l in text.splitlines() if "summary" in l]
    sessions = sum(s["sessions"] for s in summaries)
    zc = sum(int(m) for m in re.findall(r"sendfile_kernel_bytes=(\d+)", text))
    d = delta(nginx["before"], tls_stat())
    assert sessions >= 200, text[-3000:]
    if KERNEL:
        # Every byte of every file went out through sendfile() on a kTLS
        # socket: at least big.bin four times (curl and wget, both
        # versions) and the 200 parallel 1 MiB files.
        assert zc >= 4 * BIG + 200 * (1 << 20), text[-3000:]
        assert d["TlsTxSw"] >= sessions
        assert "sendfile_emulated" not in text
    else:
        assert zc == 0
        assert "tx:kernel-has-no-tls" in text
