//! Hello and authentication: tokens in `hello`, in the upgrade header, or none.

use super::*;

#[test]
fn hello_with_the_token_is_accepted_and_can_be_repeated() {
    let (_db, shared) = file_db("hello");
    let mut c = Client::ready(&shared, Version::Hrana2);
    c.send(json!({"type": "hello", "jwt": TOKEN}))
        .expect("second hello");
    c.drain();
    assert_eq!(c.hellos, vec![json!({"type": "hello_ok"})]);
    c.open(1);
}

#[test]
fn wrong_token_gets_hello_error_then_close_and_input_is_ignored() {
    let (_db, shared) = file_db("badtoken");
    let mut c = Client::new(&shared, Version::Hrana2, false);
    let err = c
        .send(json!({"type": "hello", "jwt": "wrong"}))
        .expect_err("auth error");
    assert_eq!(err.close_code(), 1008);
    c.drain();
    assert_eq!(c.hellos.len(), 1);
    assert_eq!(c.hellos[0]["type"], "hello_error");
    assert_eq!(c.hellos[0]["error"]["code"], "AUTH_JWT_INVALID");
    // "If the server responds with hello_error, it must ignore all further messages."
    c.send(json!({"type": "request", "request_id": 1, "request": {"type": "open_stream", "stream_id": 1}}))
        .expect("ignored");
    c.drain();
    assert!(c.responses.is_empty());
    assert!(!c.session.wants_input());
}

#[test]
fn missing_token_is_refused_unless_the_upgrade_header_carried_it() {
    let (_db, shared) = file_db("notoken");
    let mut c = Client::new(&shared, Version::Hrana2, false);
    let err = c.send(json!({"type": "hello"})).expect_err("auth error");
    assert!(matches!(err, SessionError::Auth(_)));
    c.drain();
    assert_eq!(c.hellos[0]["error"]["code"], "AUTH_JWT_MISSING");

    let mut c = Client::new(&shared, Version::Hrana2, true);
    c.send(json!({"type": "hello", "jwt": null}))
        .expect("header auth");
    c.drain();
    assert_eq!(c.hellos, vec![json!({"type": "hello_ok"})]);
    // A wrong explicit token is refused even with header auth.
    assert!(c.send(json!({"type": "hello", "jwt": "nope"})).is_err());
}

#[test]
fn auth_off_accepts_any_hello() {
    let db = TempDb::new("noauth");
    let shared = shared_with(&db.path_str(), None, |_| {});
    let mut c = Client::new(&shared, Version::Hrana2, false);
    c.send(json!({"type": "hello", "jwt": "whatever"}))
        .expect("hello");
    c.drain();
    assert_eq!(c.hellos, vec![json!({"type": "hello_ok"})]);
}

#[test]
fn request_before_hello_is_a_protocol_error() {
    let (_db, shared) = file_db("early");
    let mut c = Client::new(&shared, Version::Hrana2, true);
    let err = c.protocol_error(json!({"type": "open_stream", "stream_id": 1}));
    assert_eq!(err.close_code(), 1002);
}

#[test]
fn repeated_hello_needs_hrana2() {
    let (_db, shared) = file_db("hello1");
    let mut c = Client::ready(&shared, Version::Hrana1);
    assert!(matches!(
        c.send(json!({"type": "hello", "jwt": TOKEN})),
        Err(SessionError::Protocol(_))
    ));
}
