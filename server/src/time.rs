//! The time now, and calendar dates from Unix time, in UTC.
//!
//! Enough for logs, reports and budget periods without a date library: Howard Hinnant's
//! days-to-civil algorithm, exact for every date in the proleptic Gregorian calendar.

const DAY_MS: i64 = 86_400_000;

/// Milliseconds since the Unix epoch now (0 if the clock is before it).
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// (year, month 1–12, day 1–31) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD` of Unix milliseconds.
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS` of Unix milliseconds.
pub fn date_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    format!("{} {:02}:{:02}:{:02}", date(ms), rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Unix milliseconds of the start of the UTC day and of the UTC month that contain `ms`.
pub fn period_starts(ms: i64) -> (i64, i64) {
    let day = ms.div_euclid(DAY_MS) * DAY_MS;
    let (_, _, d) = civil_from_days(ms.div_euclid(DAY_MS));
    (day, day - (d - 1) * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(civil_from_days(days_from_civil(2026, 11, 21)), (2026, 11, 21));
        // 2026-11-21 08:56:31 UTC: the day and the month start at midnight UTC.
        assert_eq!(period_starts(1_795_251_391_000), (1_795_219_200_000, 1_793_491_200_000));
    }
}
