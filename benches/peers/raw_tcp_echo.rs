//! A plain TCP echo on one mio loop, no WebSocket at all: the ceiling of the comparison.
//!
//! `raw_tcp_echo ADDR` prints `listening on ADDR` when ready.

use std::io::{ErrorKind, Read, Write};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".into());
    let mut listener = TcpListener::bind(addr.parse().expect("address"))?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    let mut conns = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    let entry = conns.vacant_entry();
                    poll.registry().register(
                        &mut stream,
                        Token(entry.key()),
                        Interest::READABLE,
                    )?;
                    entry.insert(stream);
                }
                continue;
            }
            let key = event.token().0 - 1;
            let Some(stream) = conns.get_mut(key) else {
                continue;
            };
            let mut closed = false;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    // Echo loads are small and the client waits for each echo, so the socket
                    // takes everything; a short write simply drops the connection here.
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            closed = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed {
                let mut stream = conns.remove(key);
                let _ = poll.registry().deregister(&mut stream);
            }
        }
    }
}
