//! Read-only databases and the shared `:memory:` database.

use super::*;

#[test]
fn read_only_refuses_writes_clearly() {
    let db = TempDb::new("readonly");
    {
        let rw = shared_with(&db.path_str(), Some(TOKEN), |_| {});
        let mut c = Client::ready(&rw, Version::Hrana2);
        c.open(1);
        c.sql(1, "CREATE TABLE t (x)");
        c.sql(1, "INSERT INTO t VALUES (1)");
    }
    let ro = shared_with(&db.path_str(), Some(TOKEN), |c| c.read_only = true);
    let mut c = Client::ready(&ro, Version::Hrana2);
    c.open(1);
    assert_eq!(c.sql(1, "SELECT x FROM t")["rows"], json!([[int(1)]]));
    for write in [
        "INSERT INTO t VALUES (2)",
        "CREATE TABLE u (y)",
        "BEGIN IMMEDIATE",
        "DELETE FROM t",
    ] {
        let e = c.sql_err(1, write);
        assert_eq!(e["code"], "SQLITE_READONLY", "{write}");
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("read-only")),
            "{e}"
        );
    }
    let e = c.err(
        json!({"type": "sequence", "stream_id": 1, "sql": "SELECT 1; INSERT INTO t VALUES (3)"}),
    );
    assert_eq!(e["code"], "SQLITE_READONLY");
    // Reading transactions work.
    c.sql(1, "BEGIN");
    c.sql(1, "SELECT * FROM t");
    c.sql(1, "COMMIT");
    assert_eq!(c.sql(1, "SELECT count(*) FROM t")["rows"][0][0], int(1));
}

#[test]
fn read_only_needs_an_existing_database() {
    let db = TempDb::new("readonly-missing");
    let res = SqlShared::new(
        SqlConfig {
            db: db.path_str(),
            read_only: true,
            ..SqlConfig::default()
        },
        Arc::new(Policy::new(None, vec![], vec![])),
    );
    assert!(res.is_err());
}

#[test]
fn memory_database_is_shared_by_every_stream_and_connection() {
    let shared = shared_with(":memory:", Some(TOKEN), |_| {});
    let mut a = Client::ready(&shared, Version::Hrana2);
    let mut b = Client::ready(&shared, Version::Hrana2);
    a.open(1);
    a.sql(1, "CREATE TABLE m (x)");
    a.sql(1, "INSERT INTO m VALUES (7)");
    a.ok(json!({"type": "close_stream", "stream_id": 1}));
    // Every stream is closed: the anchor connection keeps the database alive.
    b.open(1);
    assert_eq!(b.sql(1, "SELECT x FROM m")["rows"], json!([[int(7)]]));
    a.open(2);
    a.sql(2, "BEGIN");
    a.sql(2, "INSERT INTO m VALUES (8)");
    a.sql(2, "COMMIT");
    assert_eq!(b.sql(1, "SELECT count(*) FROM m")["rows"][0][0], int(2));
    // A second server-wide state has its own database.
    let other = shared_with(":memory:", Some(TOKEN), |_| {});
    let mut c = Client::ready(&other, Version::Hrana2);
    c.open(1);
    assert_eq!(c.sql_err(1, "SELECT * FROM m")["code"], "SQLITE_ERROR");
}

#[test]
fn memory_database_waits_for_table_locks_instead_of_failing() {
    let shared = shared_with(":memory:", Some(TOKEN), |_| {});
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.open(2);
    c.sql(1, "CREATE TABLE m (x)");
    c.sql(1, "BEGIN");
    c.sql(1, "INSERT INTO m VALUES (1)");
    // Stream 2 reads the locked table: it waits (on its own thread) until stream 1 commits.
    let read = c.request(
        json!({"type": "execute", "stream_id": 2, "stmt": {"sql": "SELECT count(*) FROM m"}}),
    );
    std::thread::sleep(Duration::from_millis(100));
    c.sql(1, "COMMIT");
    let msg = c.wait(read);
    assert_eq!(msg["type"], "response_ok", "{msg}");
    assert_eq!(msg["response"]["result"]["rows"][0][0], int(1));
}
