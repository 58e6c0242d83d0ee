//! Parsers for command-line values (sizes such as `64KiB`, durations in seconds such as `0.5`,
//! permissions, a path prefix) and the log's JSON format.

use std::time::Duration;

/// A byte count with an optional binary unit: `1024`, `64KiB`, `16MiB`, `1GiB` (`K`, `M`, `G`
/// accepted too, all powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB, GiB)")),
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {text:?}"))
}

/// A duration in seconds, fractions allowed: `30`, `0.25`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {text:?}: {e}"))
}

/// `--listen-mode`: octal permissions.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?}: octal permissions such as 660"))
}

/// `--base-path`: `/x/` and `/x` are both `/x`; `/` is no prefix at all.
pub fn parse_base_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') || text.contains(['?', '#', ' ']) {
        return Err(format!("{text:?}: a path such as /term/"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: time, level, where, message.
    Text,
    /// For machines: one JSON object per line (`ts`, `level`, `target`, `msg`).
    Json,
}

/// One log record as a JSON line.
pub fn write_json_line(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    use std::io::Write;
    let line = serde_json::json!({
        "ts": buf.timestamp_millis().to_string(),
        "level": record.level().as_str(),
        "target": record.target(),
        "msg": record.args().to_string(),
    });
    writeln!(buf, "{line}")
}

/// `--client-option KEY=VALUE` (ttyd's `-t`): the value as JSON when it is JSON (`16`,
/// `true`, `{"background":"#000"}`), else as a string (`fontFamily=monospace`).
pub fn parse_client_option(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: KEY=VALUE, e.g. fontSize=16"))?;
    if key.is_empty() {
        return Err(format!("{text:?}: the key is empty"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    Ok((key.to_string(), value))
}

/// `--signal`: a signal by name (`HUP`, `SIGTERM`, ...) or number, as ttyd's `-s` takes it.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    const NAMES: &[(&str, i32)] = &[
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("TERM", libc::SIGTERM),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("CONT", libc::SIGCONT),
    ];
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, number)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*number);
    }
    match text.parse::<i32>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?}: a signal name (HUP, INT, QUIT, TERM, KILL, USR1, USR2, CONT) or number"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn modes_and_base_paths() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("1777").is_err());
        assert_eq!(parse_base_path("/term/").as_deref(), Ok("/term"));
        assert_eq!(parse_base_path("/term").as_deref(), Ok("/term"));
        assert_eq!(parse_base_path("/").as_deref(), Ok(""));
        assert!(parse_base_path("term/").is_err());
        assert!(parse_base_path("/a?b").is_err());
    }

    #[test]
    fn client_options_are_json_when_they_parse_and_strings_otherwise() {
        use serde_json::json;
        let option = parse_client_option;
        assert_eq!(option("fontSize=16"), Ok(("fontSize".into(), json!(16))));
        assert_eq!(
            option("cursorBlink=true"),
            Ok(("cursorBlink".into(), json!(true)))
        );
        assert_eq!(
            option("fontFamily=Fira Code"),
            Ok(("fontFamily".into(), json!("Fira Code")))
        );
        assert_eq!(
            option(r##"theme={"background":"#101010"}"##),
            Ok(("theme".into(), json!({"background": "#101010"})))
        );
        assert_eq!(
            option("titleFixed=a=b"),
            Ok(("titleFixed".into(), json!("a=b")))
        );
        assert!(option("fontSize").is_err());
        assert!(option("=1").is_err());
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("9"), Ok(9));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }
}
