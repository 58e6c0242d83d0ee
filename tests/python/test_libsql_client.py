"""The real PyPI `libsql-client` (0.3.1) over http:// against wsbridge.

Over http:// that client speaks the legacy Hrana-over-HTTP v1 API (read from its source,
libsql_client/http.py): `execute` is `POST /v1/execute {"stmt": ...}` -> `{"result": ...}`,
`batch` is `POST /v1/batch {"batch": ...}` -> `{"result": ...}`, wrapped by the client in
BEGIN / steps / COMMIT / ROLLBACK with `ok` conditions. A non-2xx answer with a JSON body
carrying "message" (and "code") becomes that LibsqlError; any other non-2xx becomes
"Server returned HTTP status N". `transaction()` over http:// is refused by the client itself.
"""

import math

import pytest
from libsql_client import LibsqlError, Statement, create_client_sync

from conftest import TOKEN


@pytest.fixture
def client(url):
    c = create_client_sync(url, auth_token=TOKEN)
    yield c
    c.close()


def test_execute_with_positional_and_named_args(client, proxy):
    rs = client.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
    assert rs.rows == [] and rs.columns == ()

    rs = client.execute("INSERT INTO t(name, n) VALUES (?, ?)", ["a", 10])
    assert rs.rows_affected == 1
    assert rs.last_insert_rowid == 1
    rs = client.execute("INSERT INTO t(name, n) VALUES (:name, :n)", {"name": "b", "n": 20})
    assert rs.rows_affected == 1
    assert rs.last_insert_rowid == 2
    rs = client.execute(Statement("INSERT INTO t(name, n) VALUES (?1, ?2)", ("c", 30)))
    assert rs.last_insert_rowid == 3

    rs = client.execute("UPDATE t SET n = n + 1 WHERE n >= ?", [20])
    assert rs.rows_affected == 2

    rs = client.execute("SELECT id, name, n AS num FROM t WHERE n > ? ORDER BY id", [0])
    assert rs.columns == ("id", "name", "num")
    assert [r.astuple() for r in rs.rows] == [(1, "a", 10), (2, "b", 21), (3, "c", 31)]
    assert rs.rows[1]["name"] == "b" and rs.rows[1]["num"] == 21
    assert rs.rows[2].asdict() == {"id": 3, "name": "c", "num": 31}
    assert rs.rows_affected == 0

    assert set(proxy.request_lines()) == {"POST /v1/execute"}
    assert set(proxy.statuses()) == {200}


def test_batch_runs_in_one_transaction(client, proxy):
    results = client.batch([
        "CREATE TABLE b(x INTEGER, y TEXT)",
        ("INSERT INTO b VALUES (?, ?)", [1, "one"]),
        ("INSERT INTO b VALUES (:x, :y)", {"x": 2, "y": "two"}),
        Statement("INSERT INTO b VALUES (?, ?)", [3, "three"]),
        "SELECT x, y FROM b ORDER BY x",
        "SELECT count(*) AS c FROM b",
    ])
    assert len(results) == 6
    assert [r.rows_affected for r in results[1:4]] == [1, 1, 1]
    assert [r.last_insert_rowid for r in results[1:4]] == [1, 2, 3]
    assert [r.astuple() for r in results[4]] == [(1, "one"), (2, "two"), (3, "three")]
    assert results[5].columns == ("c",) and results[5][0]["c"] == 3

    # A failing step: the client's batch is BEGIN ... COMMIT, with ROLLBACK when a step fails,
    # so the insert before the failure must not stay.
    with pytest.raises(LibsqlError) as e:
        client.batch([
            ("INSERT INTO b VALUES (?, ?)", [4, "four"]),
            "INSERT INTO no_such_table VALUES (5)",
            ("INSERT INTO b VALUES (?, ?)", [6, "six"]),
        ])
    assert "no such table: no_such_table" in str(e.value)
    assert client.execute("SELECT count(*) FROM b").rows[0][0] == 3
    assert client.execute("SELECT count(*) FROM b WHERE x IN (4, 6)").rows[0][0] == 0

    # The database is not left inside the failed batch's transaction: a later batch commits.
    client.batch([("INSERT INTO b VALUES (?, ?)", [7, "seven"])])
    assert client.execute("SELECT y FROM b WHERE x = 7").rows[0][0] == "seven"

    assert set(proxy.request_lines()) == {"POST /v1/batch", "POST /v1/execute"}


def test_values_of_every_type_round_trip(client):
    client.execute("CREATE TABLE v(k INTEGER PRIMARY KEY, x)")
    text = 'héllo ✓ 😀\n\t"quoted" \\ \x00end'
    values = [
        0, 2**63 - 1, -(2**63), -1, 9007199254740993,
        3.25, -0.5, 1e300, 3.0, 5e-324,
        text, "",
        bytes(range(256)), b"",
        None,
    ]
    types = ["integer"] * 5 + ["real"] * 5 + ["text"] * 2 + ["blob"] * 2 + ["null"]
    for k, v in enumerate(values):
        client.execute("INSERT INTO v VALUES (?, ?)", [k, v])
    rs = client.execute("SELECT k, x, typeof(x) FROM v ORDER BY k")
    assert len(rs) == len(values)
    for k, row in enumerate(rs):
        assert row[0] == k
        assert row[2] == types[k], f"typeof value {k}"
        got = row[1]
        assert type(got) is type(values[k]), f"value {k}: {got!r} is a {type(got).__name__}"
        assert got == values[k], f"value {k}"

    # Literals, booleans (bound as integers by the client) and a float read back as float.
    rs = client.execute("SELECT 1, 2.5, 'x', x'00ff', NULL, ?, ?, 10.0 / 4, 7.0", [True, 1.5])
    assert rs.rows[0].astuple() == (1, 2.5, "x", b"\x00\xff", None, 1, 1.5, 2.5, 7.0)
    assert isinstance(rs.rows[0][8], float)

    # Floats the client cannot send are refused before anything is sent.
    with pytest.raises(ValueError):
        client.execute("SELECT ?", [math.inf])


def test_sql_errors_are_reported(client, proxy):
    with pytest.raises(LibsqlError) as e:
        client.execute("SELECT * FROM missing")
    assert "no such table: missing" in str(e.value)

    with pytest.raises(LibsqlError) as e:
        client.execute("SELEC 1")
    assert "syntax error" in str(e.value)

    client.execute("CREATE TABLE u(x UNIQUE)")
    client.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(LibsqlError) as e:
        client.execute("INSERT INTO u VALUES (?)", [1])
    assert "UNIQUE constraint failed: u.x" in str(e.value)

    with pytest.raises(LibsqlError) as e:
        client.execute("SELECT abs(-9223372036854775807 - 1)")
    assert "integer overflow" in str(e.value)

    # The client's only way to see an SQL error over /v1 is an HTTP error status with a JSON
    # body {"message": ..., "code": ...}; the connection is still usable afterwards.
    assert client.execute("SELECT count(*) FROM u").rows[0][0] == 1
    assert any(s >= 400 for s in proxy.statuses())


@pytest.mark.parametrize("token", ["wrong-token-0123456789abcdefghijkl", None])
def test_wrong_or_missing_token_is_refused(url, proxy, token):
    with create_client_sync(url, auth_token=token) as bad:
        with pytest.raises(LibsqlError) as e:
            bad.execute("SELECT 1")
        with pytest.raises(LibsqlError):
            bad.batch(["SELECT 1"])
    assert proxy.statuses() == [401, 401], str(e.value)
    # The right token still works on the same server.
    with create_client_sync(url, auth_token=TOKEN) as good:
        assert good.execute("SELECT 7").rows[0][0] == 7


def test_interactive_transactions_are_not_offered_over_http(client):
    # libsql-client 0.3.1 refuses transaction() for http:// URLs (it needs ws://); batch() is
    # its transaction over HTTP, tested above.
    with pytest.raises(LibsqlError) as e:
        client.transaction()
    assert e.value.code == "TRANSACTIONS_NOT_SUPPORTED"


def test_a_begin_left_open_by_one_request_does_not_leak(client, url):
    # Each /v1 request stands alone: a transaction it opens and leaves open must end with it,
    # not hold the database (or hide later writes) for other requests.
    client.execute("CREATE TABLE w(x)")
    client.execute("BEGIN IMMEDIATE")
    client.execute("INSERT INTO w VALUES (1)")
    with create_client_sync(url, auth_token=TOKEN) as other:
        other.execute("INSERT INTO w VALUES (2)")
        other.batch(["INSERT INTO w VALUES (3)"])
        assert other.execute("SELECT count(*) FROM w WHERE x IN (2, 3)").rows[0][0] == 2
    assert client.execute("SELECT count(*) FROM w WHERE x IN (2, 3)").rows[0][0] == 2
