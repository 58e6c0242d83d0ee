//! The server's terminal sessions as a whole: how many programs run (`--max-sessions`), and
//! what happens when the last one ends (`--once`, `--exit-no-conn`: the server stops).
//!
//! A session holds a [`SessionSlot`] from the moment its program starts until it is hung up;
//! connections still waiting for their token hold none, so they cannot crowd out one that has it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// What runs when the last session ends.
type IdleHook = Box<dyn Fn() + Send + Sync>;

/// The count of running sessions, shared by the factory and every session.
pub struct Sessions {
    max: usize,
    live: AtomicUsize,
    when_idle: OnceLock<IdleHook>,
}

impl Sessions {
    pub fn new(max: usize) -> Arc<Sessions> {
        Arc::new(Sessions {
            max,
            live: AtomicUsize::new(0),
            when_idle: OnceLock::new(),
        })
    }

    /// Whether another session may start now.
    pub fn has_room(&self) -> bool {
        self.live.load(Ordering::Relaxed) < self.max
    }

    /// Sessions running now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// A slot for a starting session, or `None` at `--max-sessions`.
    pub fn acquire(self: &Arc<Self>) -> Option<SessionSlot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| SessionSlot(Arc::clone(self)))
    }

    /// Run `hook` each time the number of running sessions falls to zero (`--once`,
    /// `--exit-no-conn`). Set once; later calls are ignored.
    pub fn when_idle(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.when_idle.set(Box::new(hook));
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({} of {})", self.live(), self.max)
    }
}

/// A running session's place in the count; released on drop.
pub struct SessionSlot(Arc<Sessions>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(hook) = self.0.when_idle.get()
        {
            hook();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_maximum_and_the_hook_runs_when_the_last_goes() {
        let sessions = Sessions::new(2);
        let idle = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&idle);
        sessions.when_idle(move || {
            seen.fetch_add(1, Ordering::Relaxed);
        });
        let a = sessions.acquire().expect("first");
        let b = sessions.acquire().expect("second");
        assert!(sessions.acquire().is_none());
        assert!(!sessions.has_room());
        drop(a);
        assert_eq!(idle.load(Ordering::Relaxed), 0);
        assert!(sessions.has_room());
        drop(b);
        assert_eq!(idle.load(Ordering::Relaxed), 1);
        assert_eq!(sessions.live(), 0);
    }
}
