//! Malformed input and version checks.

use super::*;

#[test]
fn malformed_messages_close_with_protocol_error() {
    let (_db, shared) = file_db("malformed");
    for bad in [
        "not json",
        "{}",
        r#"{"type":"goodbye"}"#,
        r#"{"type":"request","request_id":1,"request":{"type":"drop_database"}}"#,
        r#"{"type":"request","request_id":"1","request":{"type":"open_stream","stream_id":1}}"#,
    ] {
        let mut c = Client::ready(&shared, Version::Hrana3);
        let err = c.session.on_text(bad, Instant::now()).expect_err(bad);
        assert_eq!(err.close_code(), 1002, "{bad}");
        assert!(err.reason().len() <= 123);
        // Later input is ignored, no panic.
        c.session
            .on_text(bad, Instant::now())
            .expect("ignored after failure");
    }
    let mut c = Client::ready(&shared, Version::Hrana3);
    assert_eq!(
        c.session
            .on_binary(b"\x00")
            .expect_err("binary")
            .close_code(),
        1003
    );
}

#[test]
fn unknown_stream_cursor_or_sql_id_is_a_protocol_error() {
    let (_db, shared) = file_db("unknown");
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.protocol_error(json!({"type": "execute", "stream_id": 7, "stmt": {"sql": "SELECT 1"}}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.protocol_error(json!({"type": "close_stream", "stream_id": 7}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.protocol_error(json!({"type": "fetch_cursor", "cursor_id": 1, "max_count": 10}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "execute", "stream_id": 1, "stmt": {"sql_id": 5}}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "open_stream", "stream_id": 1}));
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(
        json!({"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT 1", "sql_id": 1}}),
    );
    let mut c = Client::ready(&shared, Version::Hrana3);
    c.open(1);
    c.protocol_error(json!({"type": "execute", "stream_id": 1, "stmt": {}}));
}

#[test]
fn newer_requests_need_the_negotiated_version() {
    let (_db, shared) = file_db("versions");
    let mut c = Client::ready(&shared, Version::Hrana1);
    c.open(1);
    c.protocol_error(json!({"type": "sequence", "stream_id": 1, "sql": "SELECT 1"}));
    let mut c = Client::ready(&shared, Version::Hrana1);
    c.protocol_error(json!({"type": "store_sql", "sql_id": 1, "sql": "SELECT 1"}));
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.protocol_error(json!({"type": "get_autocommit", "stream_id": 1}));
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.protocol_error(
        json!({"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": {"steps": []}}),
    );
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.open(1);
    c.protocol_error(json!({"type": "batch", "stream_id": 1, "batch": {"steps": [
        {"stmt": {"sql": "SELECT 1"}, "condition": {"type": "is_autocommit"}}]}}));
}
