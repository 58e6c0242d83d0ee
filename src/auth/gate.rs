//! Token checks, judged fairly at a bounded rate per peer address.
//!
//! Every token a peer presents (an `Authorization: Bearer` at the upgrade, a Hrana `hello.jwt`,
//! a ttyd `AuthToken`) joins its address's queue and is judged in turn: at most [`RATE`] per
//! second, after a burst of [`BURST`]. Right and wrong tokens wait alike, so the wait says
//! nothing about the verdict; a check beyond the rate waits, it is not refused; and nothing is
//! ever locked out: a client with the right token gets in after at most the checks queued
//! before its own, while the number of connections an address may keep waiting for a check is
//! capped ([`MAX_WAITING`]) so that queue stays short. Time is passed in.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::wake::Waker;

/// Checks judged per second and address, at most.
pub const RATE: u32 = 10;
/// Checks an idle address may have judged at once. HTTP clients open connections in parallel,
/// each presenting the token once (a kept-alive connection is not checked again):
/// @libsql/client runs 20 requests at once by default, and opened 32 to 40 connections for 50
/// concurrent statements on a cold start (undici sends the next request before the previous
/// socket is back in its pool). A burst of that size lets them in without a wait, while the
/// sustained rate stays [`RATE`]; tokens have at least 128 bits, so the burst costs nothing.
pub const BURST: u32 = 64;
/// Connections one address may keep waiting for a token check on routes that need one: what a
/// guesser on the same address can make a right token wait is this many checks at [`RATE`].
pub const MAX_WAITING: u32 = 32;

/// The cost of one check in the per-address credit, in microseconds of refill.
const COST: u64 = 1_000_000 / RATE as u64;
const FULL: u64 = COST * BURST as u64;

/// The verdict of one check, shared between the queue and the connection that asked.
#[derive(Debug, Default)]
pub(crate) struct Cell(AtomicU8);

const PENDING: u8 = 0;
const RIGHT: u8 = 1;
const WRONG: u8 = 2;
/// The connection went away: skip it without spending credit.
const ABANDONED: u8 = 3;

impl Cell {
    /// `Some(right)` once judged.
    pub fn verdict(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            RIGHT => Some(true),
            WRONG => Some(false),
            _ => None,
        }
    }

    pub fn abandon(&self) {
        let _ = self
            .0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

struct Queued {
    candidate: Box<[u8]>,
    cell: Arc<Cell>,
    waker: Waker,
}

/// One address's queue, credit and waiting connections.
struct Peer {
    queue: VecDeque<Queued>,
    /// Refill credit in microseconds, at most [`FULL`].
    credit: u64,
    refilled: Instant,
    waiting: u32,
}

impl Peer {
    fn new(now: Instant) -> Peer {
        Peer {
            queue: VecDeque::new(),
            credit: FULL,
            refilled: now,
            waiting: 0,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_micros() as u64;
        self.credit = (self.credit + elapsed).min(FULL);
        self.refilled = now;
    }

    /// Nothing queued, nobody waiting, credit full: the entry can go.
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.waiting == 0 && self.credit == FULL
    }
}

/// Where connections without an address (a Unix socket) are counted.
const NO_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The queues of every address with checks in flight.
#[derive(Default)]
pub(crate) struct Gate {
    peers: HashMap<IpAddr, Peer>,
}

/// What a judged check tells the caller to log.
pub(crate) struct Judged {
    pub peer: IpAddr,
    pub right: bool,
}

impl Gate {
    /// Count a connection as waiting for a check; `false` when the address has
    /// [`MAX_WAITING`] already.
    pub fn enter(&mut self, peer: Option<IpAddr>, now: Instant) -> bool {
        let peer = self
            .peers
            .entry(peer.unwrap_or(NO_ADDRESS))
            .or_insert_with(|| Peer::new(now));
        if peer.waiting >= MAX_WAITING {
            return false;
        }
        peer.waiting += 1;
        true
    }

    /// A waiting connection got its verdict or went away.
    pub fn leave(&mut self, peer: Option<IpAddr>) {
        let key = peer.unwrap_or(NO_ADDRESS);
        if let Some(entry) = self.peers.get_mut(&key) {
            entry.waiting = entry.waiting.saturating_sub(1);
        }
    }

    /// Queue a check of `candidate`; `waker` is called once it is judged.
    pub fn submit(
        &mut self,
        peer: Option<IpAddr>,
        candidate: &[u8],
        waker: Waker,
        now: Instant,
    ) -> Arc<Cell> {
        let cell = Arc::new(Cell::default());
        self.peers
            .entry(peer.unwrap_or(NO_ADDRESS))
            .or_insert_with(|| Peer::new(now))
            .queue
            .push_back(Queued {
                candidate: candidate.into(),
                cell: Arc::clone(&cell),
                waker,
            });
        cell
    }

    /// Judge every check whose turn has come against `token` (`judge` compares), wake their
    /// connections, and say when the next one can be judged.
    pub fn run(
        &mut self,
        now: Instant,
        judge: impl Fn(&[u8]) -> bool,
        judged: &mut Vec<Judged>,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for (&address, peer) in &mut self.peers {
            peer.refill(now);
            while let Some(front) = peer.queue.front() {
                if front.cell.0.load(Ordering::Acquire) == ABANDONED {
                    peer.queue.pop_front();
                    continue;
                }
                if peer.credit < COST {
                    let wait = Duration::from_micros(COST - peer.credit);
                    let at = now + wait;
                    next = Some(next.map_or(at, |n| n.min(at)));
                    break;
                }
                peer.credit -= COST;
                let Some(item) = peer.queue.pop_front() else {
                    break;
                };
                let right = judge(&item.candidate);
                item.cell
                    .0
                    .store(if right { RIGHT } else { WRONG }, Ordering::Release);
                item.waker.wake();
                judged.push(Judged {
                    peer: address,
                    right,
                });
            }
        }
        self.peers.retain(|_, peer| !peer.is_idle());
        next
    }

    /// Whether any check is queued.
    pub fn has_queued(&self) -> bool {
        self.peers.values().any(|p| !p.queue.is_empty())
    }

    /// Addresses tracked (for tests and metrics).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.peers.len()
    }
}
