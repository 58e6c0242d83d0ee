"""`GET /metrics` read by a real Prometheus parser while real clients use the server.

The page is parsed with prometheus_client's `text_string_to_metric_families` (PyPI, the
reference Python client's parser of the text format). The work behind it is done by real
clients: `websockets` to `/echo` (messages, then a Close with 1000) and libsql-client over
http:// (`/v1/execute` and `/v1/batch`, one statement failing). Scrapes go over one kept-alive
http.client connection, so the token is checked once per test, not once per scrape.

The parser names a counter's family without its `_total` (the samples keep it), so families are
looked up by sample name here: `wsbridge_upgrades_total`, not `wsbridge_upgrades`.
"""

import asyncio
import http.client
import math
import time

import pytest
from libsql_client import LibsqlError, create_client_sync
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from conftest import TOKEN

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every family on the page, by the name its samples carry, with its declared type.
FAMILIES = {
    "wsbridge_connections": "gauge",
    "wsbridge_connections_accepted_total": "counter",
    "wsbridge_connections_refused_total": "counter",
    "wsbridge_upgrades_total": "counter",
    "wsbridge_upgrade_refusals_total": "counter",
    "wsbridge_http_responses_total": "counter",
    "wsbridge_bytes_total": "counter",
    "wsbridge_websocket_frames_total": "counter",
    "wsbridge_websocket_closes_sent_total": "counter",
    "wsbridge_websocket_closes_received_total": "counter",
    "wsbridge_memory_budget_used_bytes": "gauge",
    "wsbridge_memory_budget_limit_bytes": "gauge",
    "wsbridge_memory_budget_over": "gauge",
    "wsbridge_memory_shed_connections_total": "counter",
    "wsbridge_sql_statement_duration_seconds": "histogram",
    "wsbridge_sql_statement_errors_total": "counter",
    "wsbridge_sql_open_streams": "gauge",
    "wsbridge_terminal_sessions": "gauge",
    "wsbridge_terminal_sessions_started_total": "counter",
    "wsbridge_pty_bytes_total": "counter",
}
HISTOGRAM = "wsbridge_sql_statement_duration_seconds"
# Sample names to the family that holds them (a histogram's are `_bucket`, `_sum`, `_count`).
FAMILY_OF = {name: name for name in FAMILIES}
FAMILY_OF.update({f"{HISTOGRAM}{suffix}": HISTOGRAM for suffix in ("_bucket", "_sum", "_count")})

# From the auth gate (src/auth/gate.rs): checks an idle address may have judged at once, and
# connections one address may keep waiting for a check (more are answered 429).
BURST = 64
MAX_WAITING = 32


class Page:
    """One parsed scrape: `families` by sample name (see the module docstring)."""

    def __init__(self, text):
        self.text = text
        self.families = {}
        for family in text_string_to_metric_families(text):
            key = family.name + "_total" if family.type == "counter" else family.name
            assert key not in self.families, f"family {key} twice\n{text}"
            self.families[key] = family

    def samples(self, name):
        family = self.families[FAMILY_OF[name]]
        return [s for s in family.samples if s.name == name]

    def value(self, name, **labels):
        """The sample's value; 0 when the page has no such sample (a labeled counter shows only
        the label values seen so far)."""
        found = [s.value for s in self.samples(name) if s.labels == labels]
        assert len(found) <= 1, f"{name}{labels} more than once\n{self.text}"
        return found[0] if found else 0

    def by_label(self, name, label):
        return {s.labels[label]: s.value for s in self.samples(name)}



class Scraper:
    """GET /metrics over one kept-alive connection."""

    def __init__(self, server):
        # The timeout only keeps a hung server from hanging the suite; nothing is timed.
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=60)

    def get(self, token=TOKEN):
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self.conn.request("GET", "/metrics", headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.headers, resp.read()

    def page(self):
        status, headers, body = self.get()
        assert status == 200, (status, body)
        assert headers["Content-Type"] == CONTENT_TYPE
        return Page(body.decode("utf-8"))

    def poll(self, done, what, attempts=100):
        """Scrape until `done(page)` holds (at most `attempts` scrapes, a short pause between)."""
        for _ in range(attempts):
            page = self.page()
            if done(page):
                return page
            time.sleep(0.02)
        pytest.fail(f"{what}: not seen in {attempts} scrapes; the last page:\n{page.text}")

    def close(self):
        self.conn.close()


@pytest.fixture
def scraper(server):
    s = Scraper(server)
    yield s
    s.close()


def check_page(page):
    """Every family, each with its type and HELP; the histogram well formed."""
    text = page.text
    assert {k: f.type for k, f in page.families.items()} == FAMILIES, text
    for key, family in page.families.items():
        assert family.documentation, f"{key} has no HELP"
        for s in family.samples:
            assert math.isfinite(s.value) and s.value >= 0, f"{s}\n{text}"
            if family.type == "counter":
                assert s.value == int(s.value), f"{s}\n{text}"

    buckets = page.samples(f"{HISTOGRAM}_bucket")
    bounds = [float(s.labels["le"]) for s in buckets]
    assert bounds[-1] == math.inf and buckets[-1].labels["le"] == "+Inf", text
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), text
    counts = [s.value for s in buckets]
    assert all(a <= b for a, b in zip(counts, counts[1:])), f"buckets not cumulative\n{text}"
    (count,) = page.samples(f"{HISTOGRAM}_count")
    (total,) = page.samples(f"{HISTOGRAM}_sum")
    assert counts[-1] == count.value, text
    assert total.value >= 0 and (count.value > 0 or total.value == 0), text
    assert all(set(s.labels) == {"le"} for s in buckets), text


def echo_session(server, messages, on_open):
    """`websockets` to /echo: every message sent and its echo read, `on_open()` called while the
    connection is up, then a Close with 1000 and the server's Close back."""

    async def go():
        url = f"ws://{server.host}:{server.port}/echo"
        # No permessage-deflate (so the payloads cross as they are: see the byte counts) and
        # no keepalive pings (so the frames are exactly the messages and the Close).
        async with connect(url, compression=None, ping_interval=None, max_size=None) as ws:
            for m in messages:
                await ws.send(m)
                assert await ws.recv() == m
            on_open()
            await ws.close(1000, "done")
            assert ws.protocol.close_rcvd is not None, "the server sent no Close"
            assert ws.protocol.close_rcvd.code == 1000
            assert ws.close_code == 1000

    asyncio.run(go())


def test_an_idle_server_page_parses_with_every_family(scraper):
    page = scraper.page()
    check_page(page)
    assert page.value("wsbridge_connections_accepted_total") == 1  # the scrape's own
    assert page.by_label("wsbridge_connections", "route") == {"http": 1}, page.text
    assert page.by_label("wsbridge_upgrades_total", "route") == {"echo": 0, "sql": 0, "tty": 0}
    assert page.by_label("wsbridge_connections_refused_total", "limit") == {
        "max_connections": 0, "max_handshakes": 0,
    }
    assert set(page.by_label("wsbridge_bytes_total", "direction")) == {"in", "out"}
    assert set(page.by_label("wsbridge_pty_bytes_total", "direction")) == {"output", "input"}
    assert page.value(f"{HISTOGRAM}_count") == 0
    assert page.value("wsbridge_sql_statement_errors_total") == 0
    assert page.value("wsbridge_memory_budget_over") == 0
    assert page.value("wsbridge_memory_budget_limit_bytes") == 512 * 1024 * 1024  # the default
    assert page.value("wsbridge_terminal_sessions") == 0
    assert page.value("wsbridge_terminal_sessions_started_total") == 0


def test_echo_client_is_counted(server, scraper):
    messages = ["hello", "", "héllo ✓ 😀", b"\x00\x01binary\xff", "x" * 5000]
    before = scraper.page()
    assert before.value("wsbridge_upgrades_total", route="echo") == 0
    during = []

    echo_session(server, messages, lambda: during.append(scraper.page()))

    (open_page,) = during
    check_page(open_page)
    assert open_page.value("wsbridge_upgrades_total", route="echo") == 1, open_page.text
    assert open_page.value(
        "wsbridge_connections", route="echo", state="open", transport="tcp") == 1, open_page.text
    assert open_page.value("wsbridge_connections", route="http", state="open",
                           transport="tcp") == 1, open_page.text  # the scraper's
    # The live connection's frames are in the count already: every message and its echo.
    frames = open_page.by_label("wsbridge_websocket_frames_total", "direction")
    assert frames == {"in": len(messages), "out": len(messages)}, open_page.text

    # The server's Close (echoing 1000) reached the client before close() returned, but it
    # may be counted after: scrape until it is, and the connection is gone.
    after = scraper.poll(
        lambda p: p.value("wsbridge_websocket_closes_sent_total", code="1000") >= 1
        and p.value("wsbridge_connections", route="echo", state="open", transport="tcp") == 0,
        "the server's Close 1000 counted and the echo connection gone",
    )
    check_page(after)
    assert after.by_label("wsbridge_websocket_closes_received_total", "code") == {"1000": 1}
    assert after.by_label("wsbridge_websocket_closes_sent_total", "code") == {"1000": 1}
    assert after.by_label("wsbridge_upgrades_total", "route") == {"echo": 1, "sql": 0, "tty": 0}
    assert after.by_label("wsbridge_upgrade_refusals_total", "status") == {}
    frames = after.by_label("wsbridge_websocket_frames_total", "direction")
    assert frames == {"in": len(messages) + 1, "out": len(messages) + 1}, after.text  # + Close
    assert after.by_label("wsbridge_connections", "route") == {"http": 1}, after.text
    # The upgrade's 101 is not a plain HTTP response.
    assert "101" not in after.by_label("wsbridge_http_responses_total", "status"), after.text

    # Bytes: at least every payload both ways, plus the upgrade request and its answer.
    payload = sum(len(m.encode() if isinstance(m, str) else m) for m in messages)
    grew = {d: after.value("wsbridge_bytes_total", direction=d)
            - before.value("wsbridge_bytes_total", direction=d) for d in ("in", "out")}
    assert grew["in"] > payload and grew["out"] > payload, (grew, payload)
    assert after.value("wsbridge_connections_accepted_total") == 2  # the scraper + the echo
    # Nothing SQL or terminal happened.
    assert after.value(f"{HISTOGRAM}_count") == 0
    assert after.value("wsbridge_terminal_sessions_started_total") == 0
    assert after.by_label("wsbridge_pty_bytes_total", "direction") == {"output": 0, "input": 0}


def test_sql_client_is_counted(server, scraper):
    before = scraper.page()
    url = f"http://{server.host}:{server.port}"
    with create_client_sync(url, auth_token=TOKEN) as client:
        client.execute("CREATE TABLE m(x INTEGER)")
        client.execute("INSERT INTO m VALUES (?)", [1])
        assert client.execute("SELECT x FROM m").rows[0][0] == 1
        with pytest.raises(LibsqlError) as e:
            client.execute("SELECT * FROM no_such_table")
        assert "no such table: no_such_table" in str(e.value)
        executed, failed = 4, 1
        # A batch: the client sends BEGIN, the statements, COMMIT and a ROLLBACK that runs
        # only if COMMIT fails; so four steps run here.
        client.batch([("INSERT INTO m VALUES (?)", [2]), "SELECT count(*) FROM m"])
        executed += 4
    after = scraper.page()
    check_page(after)

    def grew(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew(f"{HISTOGRAM}_count") == executed, after.text
    assert grew("wsbridge_sql_statement_errors_total") == failed, after.text
    assert after.value(f"{HISTOGRAM}_sum") > before.value(f"{HISTOGRAM}_sum"), after.text
    # Each /v1 request's stream ended with it.
    assert after.value("wsbridge_sql_open_streams") == 0, after.text
    # HTTP, not upgrades: nothing on the WebSocket side.
    assert after.by_label("wsbridge_upgrades_total", "route") == {"echo": 0, "sql": 0, "tty": 0}
    assert grew("wsbridge_websocket_frames_total", direction="in") == 0
    # Answers: the three executes that succeeded, the batch and the scrape before are 200s;
    # the failing statement's answer is one 4xx.
    statuses = {s: after.value("wsbridge_http_responses_total", status=s)
                - before.value("wsbridge_http_responses_total", status=s)
                for s in after.by_label("wsbridge_http_responses_total", "status")}
    assert statuses.pop("200") == 3 + 1 + 1, (statuses, after.text)
    assert list(statuses.values()) == [1] and 400 <= int(next(iter(statuses))) < 500, statuses


def test_metrics_needs_the_token_and_a_missing_one_is_no_guess(server):
    # Far more token-less requests than the gate's burst and waiting room together: if each
    # were judged as a (wrong) token, the address's credit would be spent and the right-token
    # requests below would queue, MAX_WAITING of them at most, the rest answered 429 (as they
    # are when wrong tokens are sent in place of these token-less requests).
    unauthenticated = BURST + MAX_WAITING + 8
    bare = Scraper(server)
    for _ in range(unauthenticated):
        status, headers, body = bare.get(token=None)
        assert status == 401, (status, body)
        assert headers["WWW-Authenticate"] == "Bearer"
        assert b"# TYPE" not in body
    bare.close()

    # Right-token requests on fresh connections, all sent before any answer is read: each is
    # judged the moment it arrives while the address has its credit, so every one is a 200.
    conns = [http.client.HTTPConnection(server.host, server.port, timeout=60)
             for _ in range(MAX_WAITING + 8)]
    for c in conns:
        c.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    answers = []
    for c in conns:
        resp = c.getresponse()
        answers.append((resp.status, resp.headers["Content-Type"], resp.read()))
        c.close()
    assert [a[0] for a in answers] == [200] * len(conns), [a[:2] for a in answers]
    assert {a[1] for a in answers} == {CONTENT_TYPE}
    for _, _, body in answers:
        Page(body.decode("utf-8"))

    # A wrong token is refused too (and is a guess).
    wrong = Scraper(server)
    status, headers, body = wrong.get(token="wrong-token-0123456789abcdefghijklmnop")
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer", (status, body)
    wrong.close()

    scraper = Scraper(server)
    page = scraper.page()
    scraper.close()
    check_page(page)
    responses = page.by_label("wsbridge_http_responses_total", "status")
    assert responses == {"401": unauthenticated + 1, "200": len(conns)}, page.text
