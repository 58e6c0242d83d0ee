//! What the session targets share about the token gate ([`wsbridge::auth`]): every run gets a
//! peer address never used before and a virtual clock far after every earlier run's, so one
//! run's token checks never spend another run's credit (the gate judges at most a few checks per
//! second and address) and a run behaves the same whatever ran before it in the process.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Virtual time between the starts of two runs: far more than a run advances its clock, and
/// enough for every earlier peer's credit to be full again (the gate then forgets it).
const RUN_SPACING: Duration = Duration::from_secs(600);

/// A run's peer address and the virtual time it starts at.
pub fn fresh_run() -> (IpAddr, Instant) {
    static BASE: OnceLock<Instant> = OnceLock::new();
    static RUNS: AtomicU64 = AtomicU64::new(1);
    let base = *BASE.get_or_init(Instant::now);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let peer = IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(n)));
    let offset = RUN_SPACING
        .checked_mul(u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX);
    (peer, base + offset)
}

/// Bytes that `arbitrary`'s derived `Arbitrary` reads as variant `index` of an enum with
/// `count` variants: it takes a `u32` and picks `(x * count) >> 32`.
pub fn variant_tag(index: usize, count: usize) -> [u8; 4] {
    assert!(index < count);
    let (i, n) = (index as u64, count as u64);
    let tag = (i << 32).div_ceil(n);
    u32::try_from(tag).expect("below 2^32").to_le_bytes()
}
