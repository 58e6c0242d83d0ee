//! The Prometheus text exposition format (version 0.0.4), as `GET /metrics` answers it: one
//! `# HELP` and `# TYPE` line per family, then its samples. Label values are escaped (`\`, `"`,
//! newline); names are ours and fixed.

use std::fmt::Write;

/// `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metrics page being written.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

/// Histogram buckets for latencies, in seconds (upper bounds; `+Inf` is added).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 10.0,
];

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"");
                for c in val.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A counter without labels (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value as f64);
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// A family of samples distinguished by one label (`kind` is `counter` or `gauge`).
    pub fn labeled<'a>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        self.family(name, kind, help);
        for (value_of_label, value) in samples {
            self.sample(name, &[(label, value_of_label)], value as f64);
        }
    }

    /// A family whose samples carry several labels.
    pub fn multi_labeled(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: &[(Vec<(&str, &str)>, u64)],
    ) {
        self.family(name, kind, help);
        for (labels, value) in samples {
            self.sample(name, labels, *value as f64);
        }
    }

    /// A histogram over [`LATENCY_BUCKETS`]: `counts[i]` observations fell at or below bucket
    /// `i` alone (not cumulative; the last entry is above every bound), `sum` in seconds.
    pub fn histogram(&mut self, name: &str, help: &str, counts: &[u64], sum: f64) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            self.sample(&bucket, &[("le", &le)], cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], cumulative as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// The bucket of [`LATENCY_BUCKETS`] (or the one past them) that `seconds` falls in.
pub fn latency_bucket(seconds: f64) -> usize {
    LATENCY_BUCKETS
        .iter()
        .position(|&bound| seconds <= bound)
        .unwrap_or(LATENCY_BUCKETS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaped_labels() {
        let mut page = Exposition::new();
        page.counter("x_total", "Things.", 3);
        page.labeled("y", "gauge", "Ys.", "route", [("a\"b\\c\nd", 2)]);
        page.histogram(
            "h_seconds",
            "Latency.",
            &[1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            0.5,
        );
        let text = page.finish();
        assert!(
            text.contains("# TYPE x_total counter\nx_total 3\n"),
            "{text}"
        );
        assert!(text.contains("y{route=\"a\\\"b\\\\c\\nd\"} 2\n"), "{text}");
        assert!(
            text.contains("h_seconds_bucket{le=\"0.0005\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("h_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("h_seconds_count 4\n"), "{text}");
        assert_eq!(latency_bucket(0.0001), 0);
        assert_eq!(latency_bucket(0.0003), 2);
        assert_eq!(latency_bucket(99.0), LATENCY_BUCKETS.len());
    }
}
