"""CPython's own test_ssl (Debian package libpython3.X-testsuite), with
and without the shim: the same tests must pass and fail. It exercises
OpenSSL's API the way a large real program does (options, callbacks,
non-blocking I/O, unwrap, session reuse, SNI, ALPN...), and in the VM ~200
of its sessions move into the kernel under the shim."""
import os
import re
import subprocess

import pytest

from conftest import (KERNEL, OSSL_REKEYS, PY_VER, REKEY, plain_env, shim_env,
                      shim_summary)

TEST_SSL = f"/usr/lib/python{PY_VER}/test/test_ssl.py"


def start_test_ssl(env, workdir, name):
    """test_ssl in the background, so that the unshimmed reference run
    shares the VM's two CPUs with the shimmed one instead of running
    before it: each in its own working directory (python -m test makes
    its work dir in the cwd), its output in files there (a pipe nobody
    reads while the other run goes on would fill and stall it)."""
    d = workdir / f"test_ssl-{name}"
    d.mkdir()
    with open(d / "stdout", "w") as out, open(d / "stderr", "w") as err:
        p = subprocess.Popen(["/usr/bin/python3", "-m", "test", "-v",
                              "test_ssl"], env=env, cwd=str(d), stdout=out,
                             stderr=err)
    return p, d, name


def finish_test_ssl(run, timeout=900):
    p, d, name = run
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError(f"{name}: test_ssl took over {timeout} s")
    out = (d / "stdout").read_text() + (d / "stderr").read_text()
    bad = set(re.findall(r"^(?:FAIL|ERROR): (\S+ \(\S+\))", out, re.M))
    ran = re.search(r"^Ran (\d+) tests", out, re.M)
    assert ran, f"{name}: test_ssl did not run:\n{out[-3000:]}"
    return p.returncode, bad, int(ran.group(1)), out


@pytest.fixture(scope="module")
def plain_run(workdir):
    """The unshimmed reference run, started now and collected (once) when
    the first test has started its shimmed run."""
    assert os.path.exists(TEST_SSL), \
        f"libpython{PY_VER}-testsuite is not installed (scripts/install-deps)"
    run, done = start_test_ssl(plain_env(), workdir, "plain"), []

    def result():
        if not done:
            done.append(finish_test_ssl(run))
        return done[0]
    try:
        yield result
    finally:
        if run[0].poll() is None:  # a test failed before collecting it
            run[0].kill()
            run[0].wait()


# auto: OpenSSL's installer plus the shim's engine for TLS 1.3 RX; shim:
# the shim's engine for every direction (keys, sequence numbers, message
# callback chained in front of the tests' own msg_callback tests). For CI's
# time, shim only on the kernel where it moves every direction (6.14+).
#
# Known differences, per OpenSSL version; each must still differ (a fix
# flips it to a failure, so the list gets updated):
# - 3.2+, test_psk's wrong-PSK handshake: OpenSSL's own kTLS moves a TLS
#   1.2 server's RX at the client's ChangeCipherSpec, so the kernel reads
#   the Finished that does not decrypt; after that decrypt error the
#   kernel fails the socket's sends, OpenSSL's alert cannot go out, and
#   the client sees a reset (ConnectionResetError) where it expects the
#   alert (SSLError). The handshake fails either way; no byte is taken.
KNOWN = ({"test_psk (test.test_ssl.ThreadedTests.test_psk)"}
         if OSSL_REKEYS and KERNEL else set())
@pytest.mark.parametrize("engine", ["auto", "shim"]
                         if REKEY and not OSSL_REKEYS else ["auto"])
def test_cpython_test_ssl_same_results(engine, shim_config, workdir,
                                       plain_run):
    env = shim_env(shim_config, KTLS_SHIM_LOG_LEVEL="info",
                   KTLS_SHIM_ENGINE=engine)
    rc1, bad1, n1, out = finish_test_ssl(
        start_test_ssl(env, workdir, f"shimmed-{engine}"))
    rc0, bad0, n0, _ = plain_run()
    assert n1 == n0
    assert bad1 - KNOWN == bad0 - KNOWN, (sorted(bad1 - bad0),
                                          sorted(bad0 - bad1))
    assert KNOWN <= bad1 - bad0, f"fixed? {sorted(KNOWN - (bad1 - bad0))}"
    assert rc1 == rc0 or KNOWN, out[-3000:]
    summ = shim_summary(out)
    assert summ["sessions"] >= 100, summ
    if KERNEL:
        # Most of its connections are TCP sockets the kernel takes over.
        assert summ["tx_kernel"] >= 100, summ
        assert summ["rx_kernel"] >= 10, summ
        if engine == "shim":
            assert f"tx_kernel_by_shim={summ['tx_kernel']}" in \
                summ["rest"], summ
    else:
        assert summ["tx_kernel"] == 0, summ
