//! Durations as people write them (`500ms`, `30s`, `1.5m`, `2h`, `7d`, `2w`, or a plain number of
//! seconds), parsed in one place for the config, the CLI, workflow definitions and action
//! parameters, and checked: a value too large to represent, or longer than [`MAX`], is an error
//! with a message, never a panic or a silent wrap.
//!
//! It does not parse calendar dates or HTTP dates; `escalate::http` does those and uses
//! [`clamp_secs_f64`] for a delay a server sends.

use std::time::Duration;

/// The longest duration ACAS accepts anywhere: 100 years (36,500 days).
pub const MAX: Duration = Duration::from_secs(36_500 * 86_400);

/// What was wrong with a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationErrorKind {
    /// Not a number followed by a known unit.
    Syntax,
    /// Below zero.
    Negative,
    /// Longer than [`MAX`] (or not a finite number).
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DurationError {
    pub kind: DurationErrorKind,
    pub message: String,
}

impl DurationError {
    fn new(kind: DurationErrorKind, message: String) -> DurationError {
        DurationError { kind, message }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1d`, `2w`, `1.5s` or a plain number of seconds.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let syntax = || {
        DurationError::new(
            DurationErrorKind::Syntax,
            format!("`{text}` is not a duration like 500ms, 30s, 5m, 1h, 1d or 2w"),
        )
    };
    if number.is_empty() {
        return Err(if text.starts_with('-') {
            DurationError::new(
                DurationErrorKind::Negative,
                format!("`{text}` is negative; a duration is 0 or more"),
            )
        } else {
            syntax()
        });
    }
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        other => {
            return Err(DurationError::new(
                DurationErrorKind::Syntax,
                format!("unknown unit `{other}` in `{text}`: use ms, s, m, h, d or w"),
            ));
        }
    };
    let number: f64 = number.parse().map_err(|_| syntax())?;
    from_secs_f64(number * seconds_per_unit).map_err(|e| match e.kind {
        DurationErrorKind::TooLong => DurationError::new(e.kind, too_long(text)),
        _ => e,
    })
}

/// A number of seconds as a duration, checked: negative, not finite or longer than [`MAX`] is
/// an error. Sub-millisecond parts are kept.
pub fn from_secs_f64(seconds: f64) -> Result<Duration, DurationError> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(DurationError::new(
            DurationErrorKind::Negative,
            format!("`{seconds}` seconds is not a duration; use 0 or more"),
        ));
    }
    if !seconds.is_finite() || seconds > MAX.as_secs_f64() {
        return Err(DurationError::new(DurationErrorKind::TooLong, too_long(&format!("{seconds}s"))));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| DurationError::new(DurationErrorKind::TooLong, too_long(&format!("{seconds}s"))))
}

/// A delay someone else asked for (a `retry-after` header), in seconds: `None` when it is not a
/// number of 0 or more, at most `max` however large it is.
pub fn clamp_secs_f64(seconds: f64, max: Duration) -> Option<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    if seconds >= max.as_secs_f64() {
        return Some(max);
    }
    Duration::try_from_secs_f64(seconds).ok().map(|d| d.min(max))
}

fn too_long(text: &str) -> String {
    format!("`{text}` is longer than the longest duration ACAS accepts (36500d); use a shorter one")
}

/// `1.5s`, `2m`, `300ms`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        for (text, expected) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("30", Duration::from_secs(30)),
            (" 1.5s ", Duration::from_millis(1500)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("2d", Duration::from_secs(172_800)),
            ("2w", Duration::from_secs(1_209_600)),
            ("36500d", MAX),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for (text, kind) in [
            ("", DurationErrorKind::Syntax),
            ("soon", DurationErrorKind::Syntax),
            ("5 parsecs", DurationErrorKind::Syntax),
            ("h", DurationErrorKind::Syntax),
            ("1.2.3s", DurationErrorKind::Syntax),
            ("-1s", DurationErrorKind::Negative),
            ("1e300", DurationErrorKind::Syntax),
            ("36501d", DurationErrorKind::TooLong),
            ("99999999999999999999999999999999999999w", DurationErrorKind::TooLong),
            ("18446744073709551615000ms", DurationErrorKind::TooLong),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.kind, kind, "{text}: {error}");
            assert!(!error.message.ends_with('.'), "{error}");
        }
        assert!(parse("36501d").unwrap_err().message.contains("36500d"));
    }

    #[test]
    fn seconds_are_checked() {
        assert_eq!(from_secs_f64(1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(from_secs_f64(1e300).unwrap_err().kind, DurationErrorKind::TooLong);
        assert_eq!(from_secs_f64(f64::INFINITY).unwrap_err().kind, DurationErrorKind::TooLong);
        assert_eq!(from_secs_f64(-1.0).unwrap_err().kind, DurationErrorKind::Negative);
        assert_eq!(from_secs_f64(f64::NAN).unwrap_err().kind, DurationErrorKind::Negative);
    }

    #[test]
    fn requested_delays_are_clamped() {
        let max = Duration::from_secs(60);
        assert_eq!(clamp_secs_f64(1e300, max), Some(max));
        assert_eq!(clamp_secs_f64(f64::INFINITY, max), Some(max));
        assert_eq!(clamp_secs_f64(2.5, max), Some(Duration::from_millis(2500)));
        assert_eq!(clamp_secs_f64(-1.0, max), None);
        assert_eq!(clamp_secs_f64(f64::NAN, max), None);
    }
}
