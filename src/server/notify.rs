//! How other threads reach the loop: one `mio::Waker` and the list of connections that asked to
//! be woken. Each connection's route gets a [`Waker`] that pushes its [`ConnId`] here.

use std::sync::{Arc, Mutex};

use crate::routes::Waker;

/// A stable identity for a connection: its table slot and a generation, so a wake-up for a
/// connection that has gone does not reach its slot's next occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    /// The slot in the connection table.
    pub key: u32,
    /// Bumped for every new connection (wrapping), so a reused slot has a new identity.
    pub generation: u32,
}

/// The loop side of wake-ups: a waker and the connections that asked to be woken.
pub struct NotifyQueue {
    waker: mio::Waker,
    pending: Mutex<Vec<ConnId>>,
}

impl NotifyQueue {
    /// A queue that wakes the loop through `waker`.
    pub fn new(waker: mio::Waker) -> Arc<Self> {
        Arc::new(NotifyQueue {
            waker,
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Wake the loop without naming a connection.
    pub fn wake(&self) {
        if let Err(error) = self.waker.wake() {
            log::error!("cannot wake the event loop: {error}");
        }
    }

    /// Ask the loop to call connection `id`'s route with `Ready::Woken`. One wake-up per batch:
    /// the loop drains the whole list when it wakes.
    pub fn wake_conn(&self, id: ConnId) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let first = pending.is_empty();
        pending.push(id);
        drop(pending);
        if first {
            self.wake();
        }
    }

    /// The route-side handle that wakes connection `id`.
    pub fn waker_for(self: &Arc<Self>, id: ConnId) -> Waker {
        let queue = Arc::clone(self);
        Waker::new(move || queue.wake_conn(id))
    }

    /// Move the connections that asked to be woken into `into`.
    pub fn drain(&self, into: &mut Vec<ConnId>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut pending);
    }
}
