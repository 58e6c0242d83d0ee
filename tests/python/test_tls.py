"""wsbridge serving TLS (--tls-cert/--tls-key) to real Python clients.

The certificates are throwaway ones made with the openssl CLI (tls_certs.py): a root CA, an
intermediate and a leaf for localhost and 127.0.0.1. The server gets leaf + intermediate; the
clients trust only the root.

- `websockets` (PyPI) over wss:// to the echo route, with an ssl.SSLContext that trusts only
  the test root (create_default_context(cafile=...) loads that file and not the system store).
- libsql-client (PyPI) over https:// and libsql:// (which it maps to wss://). It cannot be given
  a CA: create_client() takes no ssl argument, its HttpClient and its WebSocket client each make
  a plain aiohttp.ClientSession(), and aiohttp's default connector verifies with
  aiohttp.connector._SSL_CONTEXT_VERIFIED, an ssl.create_default_context() built once when
  aiohttp is imported. So SSL_CERT_FILE (read by that create_default_context through OpenSSL's
  default verify paths) has to be in the environment before the import: those cases
  (tls_libsql_cases.py) run in a child pytest started with SSL_CERT_FILE=<test root> and an
  empty SSL_CERT_DIR. Patching aiohttp's module-level context in this process instead would
  leak the trust into every other test.
"""

import asyncio
import hashlib
import os
import ssl
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from libsql_client import create_client_sync
from websockets.asyncio.client import connect

from conftest import TOKEN, Server
from tls_certs import make_test_certs

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def certs():
    c = make_test_certs()
    yield c
    c.cleanup()


@pytest.fixture
def tls_server(certs):
    s = Server(["--tls-cert", certs.cert_chain, "--tls-key", certs.key])
    assert s.wait_for_line(r"^TLS certificate SHA-256 "), s.output
    yield s
    s.stop()


def trusting(cafile):
    """A client context that trusts only `cafile` (hostname checks and verification on)."""
    ctx = ssl.create_default_context(cafile=cafile)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    return ctx


def run(coro):
    return asyncio.run(coro)


def echo_url(server, host="localhost"):
    return f"wss://{host}:{server.port}/echo"


def test_stdout_names_the_https_url_and_the_leaf_fingerprint(tls_server, certs):
    with open(certs.leaf_cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    out = tls_server.output
    assert out[1].startswith(f"open https://127.0.0.1:{tls_server.port}/"), out
    assert out[2] == f"TLS certificate SHA-256 {fingerprint}", out


def test_wss_echo_text_with_alpn_http11(tls_server, certs):
    ctx = trusting(certs.ca_cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])

    async def go():
        async with connect(echo_url(tls_server), ssl=ctx) as ws:
            tls = ws.transport.get_extra_info("ssl_object")
            assert tls.selected_alpn_protocol() == "http/1.1"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            # The leaf verified against the root alone: the server sent the intermediate too.
            assert dict(x[0] for x in tls.getpeercert()["subject"]) == {"commonName": "localhost"}
            for text in ["hello", "", "héllo ✓ 😀", "x" * 70000]:
                await ws.send(text)
                got = await ws.recv()
                assert isinstance(got, str) and got == text

    run(go())


def test_wss_echo_1_mib_binary(tls_server, certs):
    payload = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(1 << 20))

    async def go():
        async with connect(echo_url(tls_server), ssl=trusting(certs.ca_cert), max_size=None) as ws:
            await ws.send(payload)
            got = await ws.recv()
            assert isinstance(got, bytes) and len(got) == len(payload)
            assert got == payload

    run(go())


def test_wss_100_pipelined_messages_come_back_in_order(tls_server, certs):
    messages = [f"message {i:03d} " + "z" * (i * 97) for i in range(100)]
    messages[50:60] = [m.encode() for m in messages[50:60]]  # some binary ones among them

    async def go():
        async with connect(echo_url(tls_server), ssl=trusting(certs.ca_cert)) as ws:
            for m in messages:  # all sent before any is read
                await ws.send(m)
            got = [await ws.recv() for _ in messages]
            assert got == messages

    run(go())


def test_wss_close_1000_is_echoed(tls_server, certs):
    async def go():
        async with connect(echo_url(tls_server), ssl=trusting(certs.ca_cert)) as ws:
            await ws.send("before close")
            assert await ws.recv() == "before close"
            await ws.close(1000, "bye")
            assert ws.protocol.close_sent.code == 1000
            assert ws.protocol.close_rcvd is not None, "the server sent no Close"
            assert ws.protocol.close_rcvd.code == 1000
            assert ws.protocol.close_rcvd_then_sent is False  # the client closed first
            assert ws.close_code == 1000

    run(go())


def test_wss_to_the_ip_literal_matches_the_ip_san(tls_server, certs):
    async def go():
        async with connect(echo_url(tls_server, "127.0.0.1"), ssl=trusting(certs.ca_cert)) as ws:
            await ws.send("by IP")
            assert await ws.recv() == "by IP"

    run(go())


@pytest.mark.parametrize("which", ["unrelated CA", "system store"])
def test_wss_without_the_test_ca_fails_verification(tls_server, certs, which):
    ctx = trusting(certs.other_ca_cert) if which == "unrelated CA" else ssl.create_default_context()

    async def go():
        async with connect(echo_url(tls_server), ssl=ctx):
            pass

    with pytest.raises(ssl.SSLCertVerificationError) as e:
        run(go())
    assert e.value.verify_code == 20, e.value  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert "unable to get local issuer certificate" in e.value.verify_message


def test_wss_with_the_test_ca_but_another_name_fails_verification(tls_server, certs):
    async def go():
        async with connect(echo_url(tls_server), ssl=trusting(certs.ca_cert),
                           server_hostname="not-localhost.example"):
            pass

    with pytest.raises(ssl.SSLCertVerificationError) as e:
        run(go())
    assert e.value.verify_code == 62, e.value  # X509_V_ERR_HOSTNAME_MISMATCH


LIBSQL_CASES = {
    "https": [
        "test_only_the_test_ca_is_trusted",
        "test_create_insert_with_args_select",
        "test_a_1_mib_blob_round_trips",
        "test_batch_commits_and_a_failing_batch_rolls_back",
        "test_interactive_transactions_are_not_offered_over_https",
        "test_sql_errors_surface_as_errors",
        "test_a_wrong_token_is_refused",
    ],
    "libsql": [
        "test_only_the_test_ca_is_trusted",
        "test_create_insert_with_args_select",
        "test_a_1_mib_blob_round_trips",
        "test_batch_commits_and_a_failing_batch_rolls_back",
        "test_interactive_transactions_commit_and_roll_back",
        "test_sql_errors_surface_as_errors",
        "test_a_wrong_token_is_refused",
    ],
}


@pytest.mark.parametrize("scheme", ["https", "libsql"])
def test_libsql_client_trusting_the_test_ca(tls_server, certs, scheme, tmp_path):
    """tls_libsql_cases.py in a child pytest with SSL_CERT_FILE=<test root> (see the module
    docstring); every case must have run and passed."""
    url = f"{scheme}://localhost:{tls_server.port}"
    report = tmp_path / "report.xml"
    empty_dir = tmp_path / "no-cert-dir"
    empty_dir.mkdir()
    env = dict(os.environ, SSL_CERT_FILE=certs.ca_cert, SSL_CERT_DIR=str(empty_dir),
               WSBRIDGE_TEST_URL=url, WSBRIDGE_TEST_TOKEN=TOKEN)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         f"--junitxml={report}", os.path.join(HERE, "tls_libsql_cases.py")],
        cwd=HERE, env=env, capture_output=True, text=True,
    )
    context = f"child pytest for {url}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report.exists(), context
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = {}
    for case in cases:
        bad = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = bad
    assert list(outcomes) == LIBSQL_CASES[scheme], context
    assert {n: b for n, b in outcomes.items() if b} == {}, context
    assert proc.returncode == 0, context


@pytest.mark.parametrize("scheme", ["https", "libsql"])
def test_libsql_client_without_the_test_ca_fails_verification(tls_server, scheme):
    # This process's aiohttp trusts the system store (or whatever SSL_CERT_FILE named when it
    # was started), never the throwaway root.
    url = f"{scheme}://localhost:{tls_server.port}"
    with create_client_sync(url, auth_token=TOKEN) as c:
        with pytest.raises(Exception) as e:
            c.execute("SELECT 1")
    chain, x = [], e.value
    while x is not None and len(chain) < 10:
        chain.append(x)
        x = x.__cause__ or x.__context__
    # (aiohttp's ClientConnectorCertificateError subclasses SSLCertVerificationError too.)
    verify_errors = [x for x in chain if type(x) is ssl.SSLCertVerificationError]
    assert verify_errors, f"no certificate verification error in {chain!r}"
    assert verify_errors[0].verify_code == 20, verify_errors[0]
