//! The Autobahn TestSuite's client runner for wsbridge's own client side: connects to a
//! `fuzzingserver` (kosoku), runs every case as an echo client, then asks for the reports.
//!
//! `autobahn_client ws://127.0.0.1:9001 [AGENT]` (used by scripts/autobahn.sh).

use std::process::ExitCode;

use wsbridge::client::{BlockingClient, CodecTuning};
use wsbridge::protocol::deflate::ClientOffer;
use wsbridge::protocol::{Event, Limits, Message};

fn main() -> ExitCode {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = std::env::args().nth(2).unwrap_or_else(|| "wsbridge".into());
    let count = match case_count(&base) {
        Ok(count) => count,
        Err(error) => {
            eprintln!("getCaseCount: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("running {count} cases as {agent}");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        // Every case offers permessage-deflate (groups 12 and 13 need it; the others decline
        // or ignore it): `permessage-deflate; client_max_window_bits`, like a browser. Every
        // echo goes compressed: kosoku 0.1.0 hands an uncompressed message on a compressed
        // connection to the case as text, which then fails (AUTOBAHN.md).
        // It also offers `client_no_context_takeover` (it will reset its compressor after each
        // message): 13.2, 13.5 and 13.6 accept only an offer that allows the server to ask for it.
        let tuning = CodecTuning { compress_all: true };
        let offer = ClientOffer {
            client_no_context_takeover: true,
            ..ClientOffer::default()
        };
        let offer = Some((offer, tuning));
        let result = BlockingClient::connect_with(&url, &[], Limits::default(), offer).and_then(
            |mut client| {
                client.run(|event, tx, out| {
                    if let Event::Message(message) = event {
                        tx.send_message(*message, out);
                    }
                })
            },
        );
        if let Err(error) = result {
            // A case may end with the server dropping the connection; the verdict is its.
            eprintln!("case {case}: {error}");
        }
    }
    let url = format!("{base}/updateReports?agent={agent}");
    match BlockingClient::connect(&url, &[], Limits::default())
        .and_then(|mut c| c.run(|_, _, _| {}))
    {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("updateReports: {error}");
            ExitCode::FAILURE
        }
    }
}

fn case_count(base: &str) -> std::io::Result<u32> {
    let mut client =
        BlockingClient::connect(&format!("{base}/getCaseCount"), &[], Limits::default())?;
    let mut count = None;
    client.run(|event, _, _| {
        if let Event::Message(Message::Text(text)) = event {
            count = text.trim().parse().ok();
        }
    })?;
    count.ok_or_else(|| std::io::Error::other("no case count received"))
}
