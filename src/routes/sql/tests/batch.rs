//! Batches and their conditions.

use super::*;

/// The batch `@libsql/client` sends for `batch([...], "write")` on Hrana 2.
fn client_write_batch(stmts: &[&str]) -> Json {
    let mut steps = vec![json!({"stmt": {"sql": "BEGIN IMMEDIATE", "want_rows": false}})];
    for (i, sql) in stmts.iter().enumerate() {
        steps.push(json!({"condition": {"type": "ok", "step": i}, "stmt": {"sql": sql}}));
    }
    let last = stmts.len();
    steps.push(json!({"condition": {"type": "ok", "step": last}, "stmt": {"sql": "COMMIT"}}));
    steps.push(
        json!({"condition": {"type": "not", "cond": {"type": "ok", "step": last + 1}},
                      "stmt": {"sql": "ROLLBACK"}}),
    );
    json!({"steps": steps})
}

#[test]
fn batch_commits_when_every_step_succeeds() {
    let (_db, shared) = file_db("batchok");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE b (x INTEGER UNIQUE)");
    let r = c.ok(
        json!({"type": "batch", "stream_id": 1, "batch": client_write_batch(&[
        "INSERT INTO b VALUES (1)", "INSERT INTO b VALUES (2)", "SELECT count(*) FROM b"])}),
    );
    let res = &r["result"];
    assert_eq!(
        res["step_errors"],
        json!([null, null, null, null, null, null])
    );
    assert_eq!(res["step_results"][3]["rows"], json!([[int(2)]]));
    assert_eq!(res["step_results"][5], Json::Null, "ROLLBACK skipped");
    assert_eq!(c.sql(1, "SELECT count(*) FROM b")["rows"][0][0], int(2));
}

#[test]
fn batch_rolls_back_entirely_when_a_step_fails() {
    let (_db, shared) = file_db("batchfail");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.sql(1, "CREATE TABLE b (x INTEGER UNIQUE)");
    c.sql(1, "INSERT INTO b VALUES (9)");
    let r = c.ok(
        json!({"type": "batch", "stream_id": 1, "batch": client_write_batch(&[
        "INSERT INTO b VALUES (1)", "INSERT INTO b VALUES (9)", "INSERT INTO b VALUES (3)"])}),
    );
    let res = &r["result"];
    assert!(res["step_results"][1].is_object());
    assert_eq!(res["step_errors"][2]["code"], "SQLITE_CONSTRAINT_UNIQUE");
    assert_eq!(
        res["step_results"][3],
        Json::Null,
        "skipped after the failure"
    );
    assert_eq!(res["step_errors"][3], Json::Null);
    assert_eq!(res["step_results"][4], Json::Null, "COMMIT skipped");
    assert!(res["step_results"][5].is_object(), "ROLLBACK ran: {res}");
    let rows = c.sql(1, "SELECT x FROM b ORDER BY x")["rows"].clone();
    assert_eq!(rows, json!([[int(9)]]));
    // No transaction was left open: BEGIN works.
    c.sql(1, "BEGIN");
    c.sql(1, "ROLLBACK");
}

#[test]
fn batch_conditions() {
    let (_db, shared) = file_db("conds");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    let s = |sql: &str| json!({"sql": sql});
    let r = c.ok(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": s("SELECT 1")},                                                    // 0 ok
        {"stmt": s("SELECT nope")},                                                 // 1 error
        {"condition": {"type": "error", "step": 1}, "stmt": s("SELECT 2")},         // 2 runs
        {"condition": {"type": "ok", "step": 1}, "stmt": s("SELECT 3")},            // 3 skipped
        {"condition": {"type": "ok", "step": 3}, "stmt": s("SELECT 4")},            // 4 skipped
        {"condition": {"type": "error", "step": 3}, "stmt": s("SELECT 5")},         // 5 skipped
        {"condition": {"type": "and", "conds": [{"type": "ok", "step": 0},
                                                {"type": "error", "step": 1}]}, "stmt": s("SELECT 6")},
        {"condition": {"type": "or", "conds": [{"type": "ok", "step": 3},
                                               {"type": "not", "cond": {"type": "ok", "step": 4}}]},
         "stmt": s("SELECT 7")},
        {"condition": {"type": "and", "conds": []}, "stmt": s("SELECT 8")},
        {"condition": {"type": "or", "conds": []}, "stmt": s("SELECT 9")},
        {"condition": {"type": "is_autocommit"}, "stmt": s("BEGIN")},               // 10 runs
        {"condition": {"type": "is_autocommit"}, "stmt": s("SELECT 11")},           // 11 skipped
        {"condition": {"type": "not", "cond": {"type": "is_autocommit"}}, "stmt": s("ROLLBACK")},
    ]}}));
    let ran: Vec<bool> = r["result"]["step_results"]
        .as_array()
        .expect("array")
        .iter()
        .zip(r["result"]["step_errors"].as_array().expect("array"))
        .map(|(res, err)| !res.is_null() || !err.is_null())
        .collect();
    assert_eq!(
        ran,
        [
            true, true, true, false, false, false, true, true, true, false, true, false, true
        ]
    );
    assert_eq!(r["result"]["step_errors"][1]["code"], "SQLITE_ERROR");
}

#[test]
fn batch_condition_must_refer_to_an_earlier_step() {
    let (_db, shared) = file_db("badcond");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"condition": {"type": "ok", "step": 0}, "stmt": {"sql": "SELECT 1"}}]}}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT 1"}},
        {"condition": {"type": "not", "cond": {"type": "ok", "step": 5}}, "stmt": {"sql": "SELECT 1"}}]}}));
}
