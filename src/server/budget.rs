//! One budget for every byte a peer can make the server hold: reassembly buffers, unsent output,
//! bytes read but not yet handed on, what routes keep (queued SQL requests and responses,
//! stored SQL texts, terminal buffers), and what transports and extensions keep.
//!
//! Each connection is charged what it holds after every event it handled; the sum is held
//! against `--max-memory`. Over the limit, the server sheds load in this order:
//! 1. nothing is read from any connection, and new upgrades get 503;
//! 2. connections whose peer is not admitted (the echo route, and token routes before a right
//!    token) are closed with 1013, those holding the most first;
//! 3. admitted connections are closed only if one holds more than its share
//!    ([`MemoryBudget::share`]).
//!
//! Reading resumes once use is back under nine tenths of the limit.

/// The server-wide count of held bytes.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: usize,
    over: bool,
}

/// What changed when a charge moved the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    /// Use went over the limit: shed load.
    WentOver,
    /// Use fell back under the low mark: resume reading.
    Recovered,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: 0,
            over: false,
        }
    }

    /// Replace a connection's charge: it held `old` bytes and now holds `new`. Returns what the
    /// connection is now charged.
    pub fn recharge(&mut self, old: u32, new: usize) -> u32 {
        let new = new.min(u32::MAX as usize) as u32;
        self.used = self.used - old as usize + new as usize;
        new
    }

    /// Whether the count crossed a mark since the last call.
    pub fn transition(&mut self) -> Transition {
        if !self.over && self.used > self.limit {
            self.over = true;
            Transition::WentOver
        } else if self.over && self.used <= self.low_mark() {
            self.over = false;
            Transition::Recovered
        } else {
            Transition::None
        }
    }

    /// Over the limit (and not yet back under the low mark).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// Still above the low mark: shedding goes on.
    pub fn needs_shedding(&self) -> bool {
        self.used > self.low_mark()
    }

    /// Bytes that may still be taken before the limit.
    pub fn headroom(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used
    }

    /// What one admitted connection may hold before it is closed while the server is over the
    /// limit: a quarter of the budget, and never less than `floor` (the largest message, with
    /// room to decode it).
    pub fn share(&self, floor: usize) -> usize {
        (self.limit / 4).max(floor)
    }

    fn low_mark(&self) -> usize {
        self.limit / 10 * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_limit_until_back_under_the_low_mark() {
        let mut b = MemoryBudget::new(1000);
        let a = b.recharge(0, 600);
        assert_eq!(b.transition(), Transition::None);
        let c = b.recharge(0, 500);
        assert_eq!((b.used(), b.transition()), (1100, Transition::WentOver));
        assert!(b.is_over());
        let c = b.recharge(c, 350);
        assert_eq!((b.used(), b.transition()), (950, Transition::None));
        assert!(b.is_over() && b.needs_shedding());
        b.recharge(c, 300);
        assert_eq!((b.used(), b.transition()), (900, Transition::Recovered));
        assert!(!b.is_over());
        b.recharge(a, 0);
        assert_eq!(b.used(), 300);
        assert_eq!(b.share(10), 250);
        assert_eq!(b.share(400), 400);
    }
}
