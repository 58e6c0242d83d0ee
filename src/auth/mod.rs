//! Who may connect: the server token, judged fairly at a bounded rate ([`gate`]), each
//! connection's standing with it ([`Admission`]), and the Host and Origin checks that stop DNS
//! rebinding and cross-site WebSocket hijacking.
//!
//! Time is passed in; nothing here reads the clock.

mod admission;
mod gate;

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use self::admission::{Admission, TooManyWaiting, Verdict, presented_token};
use self::gate::Gate;
pub use self::gate::{BURST, MAX_WAITING, RATE};

/// A fresh random token: 32 bytes from the operating system, URL-safe base64.
pub fn generate_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The fewest bits of guessing a token must take.
pub const MIN_TOKEN_BITS: u32 = 128;

/// Refuse a token a guesser could find: its length times the bits of its alphabet (decimal,
/// hex, base64url, or any printable character) must reach [`MIN_TOKEN_BITS`]: at least 32 hex
/// or 22 base64url characters. The estimate is generous to the token (a word spelled in
/// base64url letters counts 6 bits a character), so this refuses the obviously weak.
pub fn check_token_strength(token: &str) -> Result<(), String> {
    let bits_per_char = if token.bytes().all(|b| b.is_ascii_digit()) {
        3.32
    } else if token.bytes().all(|b| b.is_ascii_hexdigit()) {
        4.0
    } else if token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        6.0
    } else {
        6.55
    };
    let bits = token.chars().count() as f64 * bits_per_char;
    if bits + 1e-9 < MIN_TOKEN_BITS as f64 {
        return Err(format!(
            "the token is too weak: about {bits:.0} bits, at least {MIN_TOKEN_BITS} are needed \
             (32 hex or 22 base64url characters; leave --token out for a random one)"
        ));
    }
    Ok(())
}

/// Compare two byte strings in time that depends only on their lengths (the token's length is
/// not a secret; its bytes are).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Why the policy refuses a request (the HTTP layer answers 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `Host` names a server this is not (DNS rebinding).
    Host,
    /// A page from another origin (cross-site WebSocket hijacking).
    Origin,
}

impl Denied {
    /// What was refused, in a few words.
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::Host => "Host is not one this server answers to",
            Denied::Origin => "cross-origin request refused",
        }
    }
}

/// Wrong tokens are logged at most this often (with how many there were).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Wrong tokens since the last log line.
#[derive(Default)]
struct WrongTokens {
    logged_at: Option<Instant>,
    unlogged: u64,
}

/// The server's access policy, shared by the server and the routes.
pub struct Policy {
    token: Option<Box<[u8]>>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    gate: Mutex<GateState>,
    /// Whether any check is queued: the loop asks every turn, without taking the lock.
    queued: AtomicBool,
    failures: AtomicU64,
}

struct GateState {
    gate: Gate,
    /// When the next queued check can be judged.
    next_due: Option<Instant>,
    wrong: WrongTokens,
}

impl std::fmt::Debug for Policy {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("auth_required", &self.auth_required())
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

impl Policy {
    /// A policy with a token (`None`: `--no-auth`) and the extra hosts and origins allowed.
    pub fn new(
        token: Option<String>,
        allowed_hosts: Vec<String>,
        allowed_origins: Vec<String>,
    ) -> Self {
        Policy {
            token: token.map(|t| t.into_bytes().into_boxed_slice()),
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            gate: Mutex::new(GateState {
                gate: Gate::default(),
                next_due: None,
                wrong: WrongTokens::default(),
            }),
            queued: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }
    }

    /// Whether routes that need the token must ask for it.
    pub fn auth_required(&self) -> bool {
        self.token.is_some()
    }

    /// The token itself, for ttyd's `/token` once a request presenting it was judged right.
    pub fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// Whether `candidate` is the token, compared in constant time. Only for a connection that
    /// has already been admitted by a judged check (a kept-alive HTTP connection's next
    /// request): every other check goes through the fair queue, so its timing says nothing.
    pub fn is_token(&self, candidate: &str) -> bool {
        self.token
            .as_deref()
            .is_none_or(|token| constant_time_eq(token, candidate.as_bytes()))
    }

    fn gate(&self) -> MutexGuard<'_, GateState> {
        // A panic while holding the lock cannot leave the queues inconsistent; keep going.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many wrong tokens were presented since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Judge the queued checks whose turn has come (waking their connections) and say when the
    /// next can be. The server calls this when [`Policy::next_check_due`] has come.
    pub fn run_checks(&self, now: Instant) -> Option<Instant> {
        let mut judged = Vec::new();
        let mut state = self.gate();
        let token = self.token.as_deref();
        let next = state.gate.run(
            now,
            |candidate| token.is_none_or(|t| constant_time_eq(t, candidate)),
            &mut judged,
        );
        state.next_due = next;
        self.queued
            .store(state.gate.has_queued(), Ordering::Release);
        for verdict in &judged {
            if verdict.right {
                log::debug!("{}: right token", verdict.peer);
                continue;
            }
            self.failures.fetch_add(1, Ordering::Relaxed);
            let wrong = &mut state.wrong;
            wrong.unlogged += 1;
            if wrong
                .logged_at
                .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY)
            {
                log::warn!(
                    "wrong token from {} ({} wrong token(s) since the last such line; at most \
                     {RATE} checks a second per address are judged)",
                    verdict.peer,
                    wrong.unlogged
                );
                wrong.logged_at = Some(now);
                wrong.unlogged = 0;
            }
        }
        next
    }

    /// When the server must next call [`Policy::run_checks`], if checks are queued.
    pub fn next_check_due(&self) -> Option<Instant> {
        if !self.queued.load(Ordering::Acquire) {
            return None;
        }
        self.gate().next_due
    }

    /// `Host` must name this server: an IP literal (a DNS rebinding attack needs a name),
    /// `localhost`, or a name given with `--allow-host`.
    pub fn check_host(&self, host: &str) -> Result<(), Denied> {
        let name = strip_port(host).to_ascii_lowercase();
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        if literal.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self
                .allowed_hosts
                .iter()
                .any(|h| h == &name || h == &host.to_ascii_lowercase())
        {
            Ok(())
        } else {
            Err(Denied::Host)
        }
    }

    /// A browser's `Origin` must be the server's own (`http://` or `https://` followed by the
    /// request's Host) or one given with `--allow-origin`. Requests without Origin come from
    /// programs, not pages, and are not subject to this check.
    pub fn check_origin(&self, origin: Option<&str>, host: &str) -> Result<(), Denied> {
        let Some(origin) = origin else {
            return Ok(());
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest == host);
        if same || self.allowed_origins.iter().any(|o| o == &origin) {
            Ok(())
        } else {
            Err(Denied::Origin)
        }
    }
}

/// `host:port`, `[v6]:port` or `host` → the host part.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(v6, _)| v6);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_compare_exactly() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.clone().as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(check_token_strength(&a), Ok(()));
    }

    #[test]
    fn weak_tokens_are_refused() {
        for weak in [
            "",
            "secret",
            "0123456789abcdef0123456789abcde",
            "s3cret-token",
            "1234567890123456789012345678901234567",
        ] {
            assert!(check_token_strength(weak).is_err(), "{weak:?}");
        }
        for strong in [
            "0123456789abcdef0123456789abcdef",
            "AAAAAAAAAAAAAAAAAAAAAz",
            "test-token-0123456789x",
        ] {
            assert_eq!(check_token_strength(strong), Ok(()), "{strong:?}");
        }
    }

    #[test]
    fn hosts() {
        let p = Policy::new(None, vec!["example.org".into()], vec![]);
        for ok in [
            "127.0.0.1:6455",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "10.0.0.2",
            "example.org:443",
        ] {
            assert_eq!(p.check_host(ok), Ok(()), "{ok}");
        }
        for bad in ["evil.com", "evil.com:6455", "127.0.0.1.evil.com"] {
            assert!(p.check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let p = Policy::new(None, vec![], vec!["https://app.example.org".into()]);
        assert_eq!(p.check_origin(None, "127.0.0.1:6455"), Ok(()));
        assert_eq!(
            p.check_origin(Some("http://127.0.0.1:6455"), "127.0.0.1:6455"),
            Ok(())
        );
        assert_eq!(
            p.check_origin(Some("https://app.example.org/"), "127.0.0.1:6455"),
            Ok(())
        );
        assert!(
            p.check_origin(Some("http://evil.com"), "127.0.0.1:6455")
                .is_err()
        );
        assert!(
            p.check_origin(Some("http://127.0.0.1:9999"), "127.0.0.1:6455")
                .is_err()
        );
        assert!(p.check_origin(Some("null"), "127.0.0.1:6455").is_err());
    }
}
