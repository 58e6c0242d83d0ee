//! One connection's standing with the server's token, from the upgrade to its verdict.
//!
//! A connection to a route that needs the token starts [`Verdict::Absent`]: it counts among
//! its address's connections waiting for a check (at most [`super::MAX_WAITING`]). When it
//! presents a token (a bearer header, `hello.jwt`, `AuthToken`), the check joins the address's
//! queue ([`super::gate`]) and the connection is woken when it is judged.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;

use super::Policy;
use super::gate::Cell;
use crate::wake::Waker;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It may use the route: auth is off, or its token was right.
    Admitted,
    /// No token presented yet.
    Absent,
    /// Its token waits for its turn to be judged.
    Pending,
    /// Its token was wrong.
    Refused,
}

/// Refused at the upgrade: the address already has [`super::MAX_WAITING`] connections waiting
/// for a token check (answered with 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyWaiting;

enum Stage {
    Admitted,
    Absent,
    Checking { cell: Arc<Cell>, was_admitted: bool },
    Refused,
}

/// A connection's standing with the token. Dropping it gives up its place.
pub struct Admission {
    policy: Arc<Policy>,
    peer: Option<IpAddr>,
    waker: Waker,
    stage: Stage,
    /// Counted among the address's waiting connections.
    counted: bool,
}

impl Policy {
    /// The standing of a new connection from `peer` to a route that needs the token; `waker`
    /// wakes it when its token has been judged. With auth off it is admitted at once.
    pub fn admission(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        waker: Waker,
        now: Instant,
    ) -> Result<Admission, TooManyWaiting> {
        let mut admission = Admission {
            policy: Arc::clone(self),
            peer,
            waker,
            stage: Stage::Admitted,
            counted: false,
        };
        if self.auth_required() {
            if !self.gate().gate.enter(peer, now) {
                return Err(TooManyWaiting);
            }
            admission.counted = true;
            admission.stage = Stage::Absent;
        }
        Ok(admission)
    }
}

impl Admission {
    /// Present a token. With auth off, nothing to check. Otherwise the check is queued (and
    /// judged at once if the address has credit): see [`Admission::verdict`]. An admitted
    /// connection that presents a new token (a repeated Hrana `hello`) is judged again.
    pub fn present(&mut self, candidate: &str, now: Instant) {
        if !self.policy.auth_required() {
            return;
        }
        let was_admitted = matches!(self.stage, Stage::Admitted);
        let cell = {
            let mut state = self.policy.gate();
            let cell = state
                .gate
                .submit(self.peer, candidate.as_bytes(), self.waker.clone(), now);
            if state.next_due.is_none_or(|due| due > now) {
                state.next_due = Some(now);
            }
            self.policy
                .queued
                .store(true, std::sync::atomic::Ordering::Release);
            cell
        };
        self.stage = Stage::Checking { cell, was_admitted };
        // Judge now if this address has credit: the waker also fires, which is harmless.
        self.policy.run_checks(now);
    }

    /// Where the connection stands now.
    pub fn verdict(&mut self) -> Verdict {
        if let Stage::Checking { cell, .. } = &self.stage {
            match cell.verdict() {
                None => return Verdict::Pending,
                Some(right) => {
                    self.stage = if right {
                        Stage::Admitted
                    } else {
                        Stage::Refused
                    };
                    self.stop_counting();
                }
            }
        }
        match self.stage {
            Stage::Admitted => Verdict::Admitted,
            Stage::Absent => Verdict::Absent,
            Stage::Checking { .. } => Verdict::Pending,
            Stage::Refused => Verdict::Refused,
        }
    }

    /// Whether the connection may use the route (a re-check in progress keeps an admitted
    /// connection admitted until its verdict).
    pub fn is_admitted(&self) -> bool {
        match &self.stage {
            Stage::Admitted => true,
            Stage::Checking { was_admitted, .. } => *was_admitted,
            Stage::Absent | Stage::Refused => false,
        }
    }

    fn stop_counting(&mut self) {
        if self.counted {
            self.counted = false;
            self.policy.gate().gate.leave(self.peer);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Stage::Checking { cell, .. } = &self.stage {
            cell.abandon();
        }
        self.stop_counting();
    }
}

/// The token an `Authorization` field presents: `Bearer <token>` (RFC 6750 §2.1), or HTTP
/// Basic (RFC 7617) with the token as the password and any user name, as ttyd's `-c` clients
/// and browsers prompted by `/token` send it.
pub fn presented_token(authorization: Option<&str>) -> Option<Cow<'_, str>> {
    let (scheme, credentials) = authorization?.split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Cow::Borrowed(credentials)).filter(|t| !t.is_empty());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    let (_user, password) = pair.split_once(':')?;
    Some(Cow::<str>::Owned(password.to_string())).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::super::{BURST, MAX_WAITING, RATE};
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn policy() -> Arc<Policy> {
        Arc::new(Policy::new(Some(TOKEN.into()), vec![], vec![]))
    }

    fn peer(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        (
            Waker::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }),
            count,
        )
    }

    #[test]
    fn a_right_token_is_admitted_at_once_when_the_address_is_quiet() {
        let p = policy();
        let t0 = Instant::now();
        let (waker, woken) = counting_waker();
        let mut a = p.admission(peer(1), waker, t0).unwrap();
        assert_eq!(a.verdict(), Verdict::Absent);
        assert!(!a.is_admitted());
        a.present(TOKEN, t0);
        assert_eq!(a.verdict(), Verdict::Admitted);
        assert!(a.is_admitted());
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        let mut wrong = p.admission(peer(1), Waker::noop(), t0).unwrap();
        wrong.present("nope", t0);
        assert_eq!(wrong.verdict(), Verdict::Refused);
        assert_eq!(p.failures(), 1);
    }

    #[test]
    fn auth_off_admits_everyone() {
        let p = Arc::new(Policy::new(None, vec![], vec![]));
        let mut a = p.admission(peer(1), Waker::noop(), Instant::now()).unwrap();
        assert_eq!(a.verdict(), Verdict::Admitted);
        a.present("anything", Instant::now());
        assert_eq!(a.verdict(), Verdict::Admitted);
    }

    /// Checks beyond the burst wait their turn at RATE per second, right and wrong alike, and
    /// a right token queued behind a guesser's gets in after the guesses queued before it.
    #[test]
    fn checks_are_judged_in_turn_at_the_rate() {
        let p = policy();
        let t0 = Instant::now();
        // Each presents as it connects: judged ones stop waiting, so more than MAX_WAITING
        // connections can be made in all.
        let mut guesses: Vec<Admission> = (0..BURST + 5)
            .map(|_| {
                let mut g = p.admission(peer(7), Waker::noop(), t0).unwrap();
                g.present("guess", t0);
                // Reading a verdict is what releases a judged connection's place.
                g.verdict();
                g
            })
            .collect();
        let (waker, woken) = counting_waker();
        let mut honest = p.admission(peer(7), waker, t0).unwrap();
        honest.present(TOKEN, t0);
        let judged = |gs: &mut Vec<Admission>| {
            gs.iter_mut()
                .map(|g| g.verdict())
                .filter(|v| *v == Verdict::Refused)
                .count()
        };
        assert_eq!(judged(&mut guesses), BURST as usize);
        assert_eq!(honest.verdict(), Verdict::Pending);
        // Each tenth of a second judges one more, in order.
        let step = Duration::from_millis(1000 / RATE as u64);
        let due = p.next_check_due().expect("checks are queued");
        assert!(due > t0 && due <= t0 + step);
        for i in 1..=5 {
            p.run_checks(t0 + step * i);
            assert_eq!(judged(&mut guesses), BURST as usize + i as usize);
        }
        assert_eq!(honest.verdict(), Verdict::Pending);
        assert_eq!(woken.load(Ordering::Relaxed), 0);
        p.run_checks(t0 + step * 6);
        assert_eq!(honest.verdict(), Verdict::Admitted);
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        assert_eq!(p.next_check_due(), None);
    }

    #[test]
    fn other_addresses_are_not_slowed_by_a_guesser() {
        let p = policy();
        let t0 = Instant::now();
        let mut guesses: Vec<Admission> = (0..MAX_WAITING)
            .map(|_| p.admission(peer(7), Waker::noop(), t0).unwrap())
            .collect();
        for g in &mut guesses {
            g.present("guess", t0);
        }
        let mut other = p.admission(peer(8), Waker::noop(), t0).unwrap();
        other.present(TOKEN, t0);
        assert_eq!(other.verdict(), Verdict::Admitted);
    }

    #[test]
    fn an_address_may_keep_only_so_many_connections_waiting() {
        let p = policy();
        let t0 = Instant::now();
        let mut waiting: Vec<Admission> = (0..MAX_WAITING)
            .map(|_| p.admission(peer(9), Waker::noop(), t0).unwrap())
            .collect();
        assert_eq!(
            p.admission(peer(9), Waker::noop(), t0).err(),
            Some(TooManyWaiting)
        );
        // An admitted connection no longer waits: its place is free.
        waiting[0].present(TOKEN, t0);
        assert_eq!(waiting[0].verdict(), Verdict::Admitted);
        assert!(p.admission(peer(9), Waker::noop(), t0).is_ok());
        // A dropped one frees its place too, even with its check still queued.
        waiting.truncate(1);
        assert!(p.admission(peer(9), Waker::noop(), t0).is_ok());
    }

    /// A dropped connection's queued check is skipped without spending the address's credit,
    /// and the table forgets idle addresses.
    #[test]
    fn abandoned_checks_cost_nothing_and_idle_addresses_are_forgotten() {
        let p = policy();
        let t0 = Instant::now();
        let burners: Vec<Admission> = (0..BURST)
            .map(|_| {
                let mut b = p.admission(peer(3), Waker::noop(), t0).unwrap();
                b.present("x", t0);
                b.verdict();
                b
            })
            .collect();
        let mut queued = p.admission(peer(3), Waker::noop(), t0).unwrap();
        queued.present("y", t0);
        assert_eq!(queued.verdict(), Verdict::Pending);
        drop(queued);
        drop(burners);
        let mut next = p.admission(peer(3), Waker::noop(), t0).unwrap();
        p.run_checks(t0 + Duration::from_millis(100));
        next.present(TOKEN, t0 + Duration::from_millis(100));
        assert_eq!(next.verdict(), Verdict::Admitted);
        drop(next);
        // Forgotten once its credit is full again: a whole burst refilled at the rate.
        let refilled = Duration::from_secs(u64::from(BURST.div_ceil(RATE)) + 1);
        p.run_checks(t0 + refilled);
        assert_eq!(p.gate().gate.tracked(), 0);
    }

    #[test]
    fn bearer_and_basic_fields() {
        let token = |field| presented_token(field).map(Cow::into_owned);
        assert_eq!(token(Some("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(token(Some("bearer  abc ")).as_deref(), Some("abc"));
        assert_eq!(token(Some("Bearer ")), None);
        assert_eq!(token(None), None);
        // RFC 7617 §2's own example, "Aladdin:open sesame".
        let aladdin = Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(token(aladdin).as_deref(), Some("open sesame"));
        // The password may hold colons; the user name may be empty.
        assert_eq!(token(Some("basic OmE6Yg==")).as_deref(), Some("a:b"));
        assert_eq!(
            token(Some("Basic abc")),
            None,
            "not base64 of user:password"
        );
        assert_eq!(token(Some("Basic dXNlcjo=")), None, "an empty password");
        assert_eq!(token(Some("Digest abc")), None);
    }
}
