use super::*;

fn parse(value: &str) -> Result<Vec<Extension<'_>>, HeaderError> {
    let mut out = Vec::new();
    parse_extensions(value, &mut out).map(|()| out)
}

fn names(exts: &[Extension<'_>]) -> Vec<String> {
    exts.iter().map(|e| e.to_string()).collect()
}

fn server(policy: ServerPolicy, value: &str) -> Option<Accepted> {
    policy.negotiate([value]).expect("well-formed header")
}

fn response(value: &str) -> Option<String> {
    server(ServerPolicy::default(), value).map(|a| a.response)
}

#[test]
fn rfc_6455_9_1_grammar() {
    let exts = parse("foo, bar; baz=2").unwrap();
    assert_eq!(names(&exts), ["foo", "bar; baz=2"]);
    // Whitespace around every separator, tabs included; empty list elements skipped.
    let exts =
        parse(" ,permessage-deflate ;\tclient_max_window_bits ; server_max_window_bits = 10 ,, x")
            .unwrap();
    assert_eq!(
        names(&exts),
        [
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
            "x"
        ]
    );
    assert_eq!(exts[0].params[0].value, None);
}

#[test]
fn quoted_values_are_unescaped_and_must_be_tokens() {
    let exts = parse(r#"a; b="10"; c="1\5""#).unwrap();
    assert_eq!(exts[0].params[0].value.as_deref(), Some("10"));
    assert!(matches!(exts[0].params[0].value, Some(Cow::Borrowed(_))));
    assert_eq!(exts[0].params[1].value.as_deref(), Some("15"));
    for bad in [
        r#"a; b="""#,
        r#"a; b="1 0""#,
        r#"a; b="x,y""#,
        r#"a; b="\ ""#,
        r#"a; b="10"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn grammar_errors_carry_a_reason_and_an_offset() {
    for (bad, offset) in [
        ("", 0),
        (" , ,", 4),
        (";a", 0),
        ("a;", 2),
        ("a; =1", 3),
        ("a; b=", 5),
        ("a; b=,", 5),
        ("a b", 2),
        ("a; b c", 5),
        ("a; b=1 2", 7),
        ("a; b=é", 5),
        ("é", 0),
        ("a\r\nb", 1),
    ] {
        let err = parse(bad).expect_err(bad);
        assert_eq!((err.offset, err.status()), (offset, 400), "{bad}: {err}");
    }
}

#[test]
fn every_prefix_either_parses_or_fails_without_panicking() {
    let value = r#"permessage-deflate; client_max_window_bits="1\2"; server_no_context_takeover, x-foo; y="z""#;
    for cut in 0..=value.len() {
        let _ = parse(&value[..cut]);
    }
}

#[test]
fn format_then_parse_round_trips() {
    let original = parse(r#"a;b="c\d";e, f ; g = "10""#).unwrap();
    let text = names(&original).join(", ");
    assert_eq!(text, "a; b=cd; e, f; g=10");
    assert_eq!(parse(&text).unwrap(), original);
    // A value that is no token (built by hand) is written quoted, and read back the same.
    let hand = Extension {
        name: "x",
        params: vec![Param {
            name: "p",
            value: Some(Cow::Borrowed("a \"b\"")),
        }],
    };
    assert_eq!(hand.to_string(), r#"x; p="a \"b\"""#);
}

#[test]
fn rfc_7692_7_1_2_window_bits_values() {
    for (value, bits) in [("8", Ok(8)), ("9", Ok(9)), ("10", Ok(10)), ("15", Ok(15))] {
        assert_eq!(window_bits(value), bits);
    }
    for value in ["7", "16", "08", "010", "", "1", "+9", "9.0", "ff"] {
        assert_eq!(window_bits(value), Err(Decline::InvalidValue), "{value}");
    }
}

#[test]
fn server_accepts_a_plain_offer() {
    assert_eq!(
        response("permessage-deflate").as_deref(),
        Some("permessage-deflate")
    );
    let accepted = server(ServerPolicy::default(), "permessage-deflate").unwrap();
    assert_eq!(
        accepted.params,
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    );
}

#[test]
fn server_handles_each_parameter_with_and_without_value() {
    let cases = [
        // What browsers send: the client accepts a window limit, none is needed.
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate",
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        // Asked for 15: accepting means saying so (§7.1.2.1).
        (
            "permessage-deflate; server_max_window_bits=15",
            "permessage-deflate; server_max_window_bits=15",
        ),
        // 8 is accepted (the codec's 9-bit window reaches back at most 250 bytes).
        (
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=8",
        ),
    ];
    for (offer, answer) in cases {
        assert_eq!(response(offer).as_deref(), Some(answer), "{offer}");
    }
    let all = server(
        ServerPolicy::default(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12",
    )
    .unwrap();
    assert_eq!(
        all.params,
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 9,
            client_max_window_bits: 15,
        }
    );
}

#[test]
fn server_policy_shapes_the_answer() {
    let low_memory = ServerPolicy {
        max_window_bits: 12,
        no_context_takeover: true,
        request_client_no_context_takeover: true,
        ..ServerPolicy::default()
    };
    let accepted = server(low_memory, "permessage-deflate; client_max_window_bits").unwrap();
    assert_eq!(
        accepted.response,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"
    );
    // The smaller of the client's request and the policy.
    let accepted = server(low_memory, "permessage-deflate; server_max_window_bits=10").unwrap();
    assert_eq!(accepted.params.server_max_window_bits, 10);
    let accepted = server(low_memory, "permessage-deflate; server_max_window_bits=14").unwrap();
    assert_eq!(accepted.params.server_max_window_bits, 12);
    let off = ServerPolicy {
        enabled: false,
        ..ServerPolicy::default()
    };
    assert_eq!(off.negotiate(["permessage-deflate"]), Ok(None));
    // Disabled, it does not even read the field.
    assert_eq!(off.negotiate(["permessage-deflate;;"]), Ok(None));
}

#[test]
fn rfc_7692_7_1_bad_offers_are_declined_and_the_next_is_tried() {
    for bad in [
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=8; client_max_window_bits=9",
    ] {
        assert_eq!(response(bad), None, "{bad}");
        let with_fallback =
            format!("{bad}, x-other, permessage-deflate; client_no_context_takeover");
        assert_eq!(
            response(&with_fallback).as_deref(),
            Some("permessage-deflate; client_no_context_takeover"),
            "{with_fallback}"
        );
    }
    // Other extensions are not ours to judge; a malformed header is refused outright.
    assert_eq!(
        response("x-webkit-deflate-frame; no_context_takeover"),
        None
    );
    let err = ServerPolicy::default()
        .negotiate(["permessage-deflate", "a;;b"])
        .unwrap_err();
    assert_eq!((err.status(), err.offset), (400, 2));
}

#[test]
fn offers_across_several_field_lines_keep_their_order() {
    let accepted = ServerPolicy::default()
        .negotiate([
            "permessage-deflate; bogus",
            "permessage-deflate; server_max_window_bits=11",
        ])
        .unwrap()
        .unwrap();
    assert_eq!(accepted.params.server_max_window_bits, 11);
}

#[test]
fn client_offer_strings() {
    assert_eq!(
        ClientOffer::default().header_value(),
        "permessage-deflate; client_max_window_bits"
    );
    let offer = ClientOffer {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(12),
    };
    assert_eq!(
        offer.header_value(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
    );
    let minimal = ClientOffer {
        client_max_window_bits: None,
        ..ClientOffer::default()
    };
    assert_eq!(minimal.header_value(), "permessage-deflate");
    // What a client offers, our server accepts.
    assert!(response(&offer.header_value()).is_some());
}

#[test]
fn client_accepts_valid_answers() {
    let offer = ClientOffer::default();
    assert_eq!(offer.accept([]), Ok(None));
    let params = offer
        .accept(["permessage-deflate; server_no_context_takeover; client_max_window_bits=9; server_max_window_bits=8"])
        .unwrap()
        .unwrap();
    assert_eq!(
        params,
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: 8,
            client_max_window_bits: 9,
        }
    );
    // Our own server's answers are acceptable to our client.
    for policy in [
        ServerPolicy::default(),
        ServerPolicy {
            max_window_bits: 9,
            no_context_takeover: true,
            request_client_no_context_takeover: true,
            ..ServerPolicy::default()
        },
    ] {
        let accepted = server(policy, &offer.header_value()).unwrap();
        assert_eq!(
            offer.accept([accepted.response.as_str()]),
            Ok(Some(accepted.params))
        );
    }
}

#[test]
fn client_fails_on_answers_it_cannot_accept() {
    let offer = ClientOffer {
        client_max_window_bits: Some(12),
        ..ClientOffer::default()
    };
    let strict = ClientOffer {
        server_no_context_takeover: true,
        server_max_window_bits: Some(10),
        client_max_window_bits: None,
        ..ClientOffer::default()
    };
    use ResponseError::*;
    for (offer, answer, error) in [
        (offer, "x-foo", NotOffered),
        (offer, "permessage-deflate, permessage-deflate", NotOffered),
        (
            offer,
            "permessage-deflate; foo",
            Invalid(Decline::UnknownParam),
        ),
        (
            offer,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            Invalid(Decline::DuplicateParam),
        ),
        (
            offer,
            "permessage-deflate; server_max_window_bits=16",
            Invalid(Decline::InvalidValue),
        ),
        (
            offer,
            "permessage-deflate; server_max_window_bits=7",
            Invalid(Decline::InvalidValue),
        ),
        (
            offer,
            "permessage-deflate; server_max_window_bits",
            Invalid(Decline::InvalidValue),
        ),
        (
            offer,
            "permessage-deflate; client_max_window_bits",
            UnexpectedClientWindow,
        ),
        (
            offer,
            "permessage-deflate; client_max_window_bits=13",
            WindowTooLarge,
        ),
        (
            strict,
            "permessage-deflate; server_max_window_bits=10",
            MissingParam,
        ),
        (
            strict,
            "permessage-deflate; server_no_context_takeover",
            MissingParam,
        ),
        (
            strict,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            WindowTooLarge,
        ),
        (
            strict,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10",
            UnexpectedClientWindow,
        ),
    ] {
        assert_eq!(offer.accept([answer]), Err(error), "{answer}");
    }
    assert!(matches!(
        offer.accept(["permessage-deflate;"]),
        Err(Header(_))
    ));
}

#[test]
fn client_keeps_its_own_promises() {
    // Offered client_no_context_takeover: it resets even if the server does not echo it, and
    // uses no larger window than it offered.
    let offer = ClientOffer {
        client_no_context_takeover: true,
        client_max_window_bits: Some(11),
        ..ClientOffer::default()
    };
    let params = offer.accept(["permessage-deflate"]).unwrap().unwrap();
    assert!(params.client_no_context_takeover);
    assert_eq!(params.client_max_window_bits, 11);
}
