//! [`Waker`]: how anything off the event loop (a SQL worker, the reaper, the token gate)
//! asks for a connection's route to be called again. One type for every use; the server's
//! waker pushes the connection's id on its queue and wakes the loop.

use std::sync::Arc;

/// Makes the loop call a connection's route with `Ready::Woken`, from any thread. Cheap to
/// clone.
#[derive(Clone)]
pub struct Waker(Arc<dyn Fn() + Send + Sync>);

impl Waker {
    /// A waker that calls `wake`.
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Waker {
        Waker(Arc::new(wake))
    }

    /// A waker that does nothing (for callers that poll).
    pub fn noop() -> Waker {
        Waker::new(|| {})
    }

    /// Ask for the route to be called.
    pub fn wake(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}
