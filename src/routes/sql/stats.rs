//! What the SQL workers did, for `GET /metrics`: statements run, how long they took, how many
//! failed. Process-wide atomics: workers add with one relaxed increment per statement.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::http::exposition::{Exposition, LATENCY_BUCKETS, latency_bucket};

/// Counters for statements executed (`execute` requests and batch steps).
pub struct SqlStats {
    errors: AtomicU64,
    /// Per latency bucket, plus one above the last bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// The process's SQL statistics.
pub static SQL_STATS: SqlStats = SqlStats {
    errors: AtomicU64::new(0),
    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64::new(0),
};

impl SqlStats {
    /// One statement ran for `elapsed`, successfully or not.
    pub fn record(&self, elapsed: Duration, ok: bool) {
        let bucket = latency_bucket(elapsed.as_secs_f64());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The SQL families, with `open_streams` from the route.
    pub fn write(&self, out: &mut Exposition, open_streams: usize) {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        out.histogram(
            "wsbridge_sql_statement_duration_seconds",
            "Time SQL statements took on the workers (execute requests and batch steps).",
            &counts,
            sum,
        );
        out.counter(
            "wsbridge_sql_statement_errors_total",
            "SQL statements that ended in an error.",
            self.errors.load(Ordering::Relaxed),
        );
        out.gauge(
            "wsbridge_sql_open_streams",
            "Hrana streams open (WebSocket and HTTP), each with its SQLite connection.",
            open_streams as f64,
        );
    }
}
