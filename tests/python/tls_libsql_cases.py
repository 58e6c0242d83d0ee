"""Not collected by the suite's own run (the name does not start with test_): test_tls.py runs
this file in a child pytest with SSL_CERT_FILE naming the throwaway test CA, because
libsql-client 0.3.1 cannot be given a CA (see test_tls.py).

The real PyPI libsql-client against WSBRIDGE_TEST_URL (https://localhost:PORT, which it speaks
through the /v1 HTTP endpoints, or libsql://localhost:PORT, which it maps to wss:// and speaks
Hrana over WebSocket), with the token WSBRIDGE_TEST_TOKEN. The tests run in file order and share
the server's database.
"""

import os
import ssl

import pytest
from libsql_client import LibsqlError, create_client_sync

URL = os.environ["WSBRIDGE_TEST_URL"]
TOKEN = os.environ["WSBRIDGE_TEST_TOKEN"]
OVER_WS = URL.startswith(("libsql:", "wss:"))


@pytest.fixture
def client():
    c = create_client_sync(URL, auth_token=TOKEN)
    yield c
    c.close()


def test_only_the_test_ca_is_trusted():
    # What the parent set up: the default context trusts SSL_CERT_FILE (the test root) and an
    # empty SSL_CERT_DIR, nothing else.
    ctx = ssl.create_default_context()
    subjects = [dict(x[0] for x in c["subject"]) for c in ctx.get_ca_certs()]
    assert subjects == [{"commonName": "wsbridge test root CA"}]


def test_create_insert_with_args_select(client):
    client.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, f REAL, b BLOB)")
    rs = client.execute("INSERT INTO t(name, n, f, b) VALUES (?, ?, ?, ?)", ["a", 10, 1.5, b"\x00\xff"])
    assert rs.rows_affected == 1 and rs.last_insert_rowid == 1
    rs = client.execute("INSERT INTO t(name, n, f, b) VALUES (:name, :n, :f, :b)",
                        {"name": "héllo ✓", "n": 2**62, "f": -0.5, "b": b""})
    assert rs.last_insert_rowid == 2
    rs = client.execute("INSERT INTO t(name, n) VALUES (?, ?)", [None, None])
    assert rs.last_insert_rowid == 3
    rs = client.execute("SELECT id, name, n, f, b FROM t WHERE id >= ? ORDER BY id", [1])
    assert rs.columns == ("id", "name", "n", "f", "b")
    assert [r.astuple() for r in rs.rows] == [
        (1, "a", 10, 1.5, b"\x00\xff"),
        (2, "héllo ✓", 2**62, -0.5, b""),
        (3, None, None, None, None),
    ]
    assert rs.rows[1]["name"] == "héllo ✓"


def test_a_1_mib_blob_round_trips(client):
    blob = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(1 << 20))
    client.execute("CREATE TABLE big(b BLOB)")
    client.execute("INSERT INTO big VALUES (?)", [blob])
    rs = client.execute("SELECT b, length(b) FROM big")
    assert rs.rows[0][1] == len(blob)
    assert rs.rows[0][0] == blob


def test_batch_commits_and_a_failing_batch_rolls_back(client):
    results = client.batch([
        "CREATE TABLE accounts(name TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
        ("INSERT INTO accounts VALUES (?, ?)", ["alice", 100]),
        ("INSERT INTO accounts VALUES (:n, :b)", {"n": "bob", "b": 50}),
        "SELECT name, balance FROM accounts ORDER BY name",
    ])
    assert len(results) == 4
    assert [r.rows_affected for r in results[1:3]] == [1, 1]
    assert [r.astuple() for r in results[3]] == [("alice", 100), ("bob", 50)]

    with pytest.raises(LibsqlError) as e:
        client.batch([
            "UPDATE accounts SET balance = balance - 30 WHERE name = 'alice'",
            ("INSERT INTO accounts VALUES (?, ?)", ["alice", 1]),  # duplicate key
        ])
    assert "UNIQUE constraint failed: accounts.name" in str(e.value)
    rs = client.execute("SELECT name, balance FROM accounts ORDER BY name")
    assert [r.astuple() for r in rs] == [("alice", 100), ("bob", 50)]


if OVER_WS:
    def test_interactive_transactions_commit_and_roll_back(client):
        with client.transaction() as tx:
            tx.execute("UPDATE accounts SET balance = balance - ? WHERE name = ?", [10, "alice"])
            tx.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?", [10, "bob"])
            assert tx.execute("SELECT balance FROM accounts WHERE name = 'alice'").rows[0][0] == 90
            tx.commit()
        rs = client.execute("SELECT name, balance FROM accounts ORDER BY name")
        assert [r.astuple() for r in rs] == [("alice", 90), ("bob", 60)]

        with client.transaction() as tx:
            tx.execute("DELETE FROM accounts")
            assert tx.execute("SELECT count(*) FROM accounts").rows[0][0] == 0
            tx.rollback()
        assert client.execute("SELECT count(*) FROM accounts").rows[0][0] == 2
else:
    def test_interactive_transactions_are_not_offered_over_https(client):
        # libsql-client 0.3.1 offers transaction() only over WebSocket; batch() is its
        # transaction over HTTP, tested above.
        with pytest.raises(LibsqlError) as e:
            client.transaction()
        assert e.value.code == "TRANSACTIONS_NOT_SUPPORTED"


def test_sql_errors_surface_as_errors(client):
    with pytest.raises(LibsqlError) as e:
        client.execute("SELECT * FROM missing")
    assert "no such table: missing" in str(e.value)
    with pytest.raises(LibsqlError) as e:
        client.execute("SELEC 1")
    assert "syntax error" in str(e.value)
    with pytest.raises(LibsqlError) as e:
        client.execute("INSERT INTO accounts VALUES (?, ?)", ["bob", 0])
    assert "UNIQUE constraint failed: accounts.name" in str(e.value)
    # The client is still usable afterwards.
    assert client.execute("SELECT count(*) FROM accounts").rows[0][0] == 2


def test_a_wrong_token_is_refused():
    with create_client_sync(URL, auth_token="wrong-token-0123456789abcdefghijkl") as bad:
        with pytest.raises(LibsqlError) as e:
            bad.execute("SELECT 1")
    message = str(e.value)
    assert "certificate" not in message.lower(), message
    if OVER_WS:
        assert e.value.code == "AUTH_JWT_INVALID", message
    else:
        assert "401" in message or e.value.code == "UNAUTHORIZED", message
