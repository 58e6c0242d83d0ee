//! A tungstenite echo server, one thread per connection: a peer wsbridge is measured against.
//!
//! `tungstenite_echo ADDR` prints `listening on ADDR` when ready.

use std::net::TcpListener;

use tungstenite::Message;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tungstenite::accept(stream) else {
                return;
            };
            loop {
                match ws.read() {
                    Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                        if ws.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    }
}
