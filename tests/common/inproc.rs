//! The server in this test's own process, on its own thread: for tests that give it routes the
//! command line cannot (a SQL limit, a terminal program) or that must own its children.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use wsbridge::server::{Config, Routes, Server, ShutdownHandle};

/// A server on `127.0.0.1:0` running in this process; shut down and joined on drop.
pub struct InProcessServer {
    pub addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl InProcessServer {
    /// Bind with `config` (its listen address replaced by an ephemeral port) and the routes
    /// `routes` builds (on the server's thread), and run.
    pub fn start(mut config: Config, routes: impl FnOnce() -> Routes + Send + 'static) -> Self {
        config.listen = "127.0.0.1:0".parse().expect("address");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut server = Server::bind(config, routes()).expect("bind");
            tx.send((server.local_addr(), server.shutdown_handle()))
                .expect("report address");
            server.run().expect("server loop");
        });
        let (addr, handle) = rx.recv().expect("server started");
        InProcessServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Graceful shutdown, waiting for the loop to end.
    pub fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.stop();
    }
}
