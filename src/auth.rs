//! Who may connect: the server token, and the Host and Origin checks that stop DNS rebinding
//! and cross-site WebSocket hijacking.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A fresh random token: 32 bytes from the operating system, URL-safe base64.
pub fn generate_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
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

/// Wrong tokens a peer address may present before it has to wait between attempts.
const FREE_ATTEMPTS: u32 = 3;
/// The longest wait imposed (the wait doubles with every further wrong token).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Peer addresses remembered at most; expired entries are dropped first when full.
const MAX_TRACKED_PEERS: usize = 4096;

/// Wrong tokens from one peer address.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    blocked_until: Instant,
}

/// The server's access policy, shared by the server and the routes.
#[derive(Debug, Default)]
pub struct Policy {
    token: Option<String>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    failures: AtomicU64,
    strikes: Mutex<HashMap<IpAddr, Strikes>>,
}

impl Policy {
    /// A policy with a token (`None`: `--no-auth`) and the extra hosts and origins allowed.
    pub fn new(
        token: Option<String>,
        allowed_hosts: Vec<String>,
        allowed_origins: Vec<String>,
    ) -> Self {
        Policy {
            token,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            failures: AtomicU64::new(0),
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether routes that need the token must ask for it.
    pub fn auth_required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `candidate` is the server's token (always true with auth off). Compared in
    /// constant time; failures are counted.
    pub fn token_matches(&self, candidate: &str) -> bool {
        match &self.token {
            None => true,
            Some(token) => {
                let ok = constant_time_eq(token.as_bytes(), candidate.as_bytes());
                if !ok {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                }
                ok
            }
        }
    }

    /// [`Policy::token_matches`] for a token presented by `peer`: wrong tokens are counted per
    /// address, and after [`FREE_ATTEMPTS`] the address must wait before its next upgrade to an
    /// authenticated route (1 s, doubling to at most a minute; see [`Policy::retry_after`]).
    /// A right token clears the count.
    pub fn verify_token(&self, candidate: &str, peer: Option<IpAddr>) -> bool {
        let ok = self.token_matches(candidate);
        if let Some(ip) = peer {
            let mut strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
            if ok {
                strikes.remove(&ip);
            } else {
                let now = Instant::now();
                if strikes.len() >= MAX_TRACKED_PEERS {
                    strikes.retain(|_, s| s.blocked_until > now);
                    if strikes.len() >= MAX_TRACKED_PEERS {
                        strikes.clear();
                    }
                }
                let entry = strikes.entry(ip).or_insert(Strikes {
                    count: 0,
                    blocked_until: now,
                });
                entry.count += 1;
                if entry.count > FREE_ATTEMPTS {
                    let doublings = (entry.count - FREE_ATTEMPTS - 1).min(6);
                    entry.blocked_until = now + Duration::from_secs(1 << doublings).min(MAX_WAIT);
                    log::warn!(
                        "{ip}: {} wrong tokens; next attempt refused for {:?}",
                        entry.count,
                        entry.blocked_until - now
                    );
                }
            }
        }
        ok
    }

    /// How long `peer` must still wait after repeated wrong tokens, if at all.
    pub fn retry_after(&self, peer: IpAddr) -> Option<Duration> {
        let strikes = self.strikes.lock().unwrap_or_else(|e| e.into_inner());
        strikes
            .get(&peer)
            .and_then(|s| s.blocked_until.checked_duration_since(Instant::now()))
            .filter(|wait| !wait.is_zero())
    }

    /// Whether an `Authorization: Bearer <token>` header from `peer` carries the token (false
    /// with no header, and false with auth off, where it is not needed).
    pub fn bearer_matches_from(&self, authorization: Option<&str>, peer: Option<IpAddr>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, credentials)) = value.split_once(' ') else {
            return false;
        };
        self.token.is_some()
            && scheme.eq_ignore_ascii_case("bearer")
            && self.verify_token(credentials.trim(), peer)
    }

    /// Whether an `Authorization: Bearer <token>` header carries the token (false with no
    /// header, and false with auth off, where it is not needed).
    pub fn bearer_matches(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, credentials)) = value.split_once(' ') else {
            return false;
        };
        self.token.is_some()
            && scheme.eq_ignore_ascii_case("bearer")
            && self.token_matches(credentials.trim())
    }

    /// How many wrong tokens were presented since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
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
    }

    #[test]
    fn bearer_header() {
        let p = Policy::new(Some("s3cret".into()), vec![], vec![]);
        assert!(p.bearer_matches(Some("Bearer s3cret")));
        assert!(p.bearer_matches(Some("bearer s3cret")));
        assert!(!p.bearer_matches(Some("Bearer nope")));
        assert!(!p.bearer_matches(Some("Basic s3cret")));
        assert!(!p.bearer_matches(None));
        assert_eq!(p.failures(), 1);
        assert!(!Policy::new(None, vec![], vec![]).bearer_matches(Some("Bearer x")));
    }

    #[test]
    fn repeated_wrong_tokens_make_the_peer_wait() {
        let p = Policy::new(Some("right".into()), vec![], vec![]);
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..FREE_ATTEMPTS {
            assert!(!p.verify_token("wrong", Some(attacker)));
            assert_eq!(p.retry_after(attacker), None);
        }
        assert!(!p.verify_token("wrong", Some(attacker)));
        let wait = p.retry_after(attacker).expect("the attacker waits");
        assert!(wait <= Duration::from_secs(1));
        assert!(!p.verify_token("wrong", Some(attacker)));
        assert!(p.retry_after(attacker).expect("longer") > Duration::from_secs(1));
        assert_eq!(
            p.retry_after(other),
            None,
            "other addresses are not affected"
        );
        assert!(p.verify_token("right", Some(attacker)));
        assert_eq!(
            p.retry_after(attacker),
            None,
            "a right token clears the count"
        );
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
