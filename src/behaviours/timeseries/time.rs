//! Times as the readings API writes them (ISO 8601 in UTC, milliseconds only when there are
//! some), and the UTC-aligned intervals aggregations group by.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 time.
pub fn parse(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// `2024-01-15T10:30:00Z`, or `2024-01-15T10:30:00.250Z` when there are milliseconds.
pub fn format(ms: i64) -> String {
    let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
        return String::new();
    };
    if ms.rem_euclid(1000) == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

/// An aggregation interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl Interval {
    pub const ALL: [Self; 5] = [Self::Minute, Self::Hour, Self::Day, Self::Week, Self::Month];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "minute" => Self::Minute,
            "hour" => Self::Hour,
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The nominal length in milliseconds (a month counts 30 days), for choosing an
    /// interval.
    pub fn nominal_ms(self) -> i64 {
        match self {
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
            Self::Week => 7 * 86_400_000,
            Self::Month => 30 * 86_400_000,
        }
    }

    /// The start of the interval holding `ms`: whole minutes, hours and days in UTC, weeks
    /// from Monday, months from the 1st.
    pub fn start(self, ms: i64) -> i64 {
        let fixed = |len: i64| ms - ms.rem_euclid(len);
        match self {
            Self::Minute => fixed(60_000),
            Self::Hour => fixed(3_600_000),
            Self::Day => fixed(86_400_000),
            Self::Week => {
                let day = fixed(86_400_000);
                let Some(t) = Utc.timestamp_millis_opt(day).single() else {
                    return day;
                };
                let back = i64::from(t.weekday().num_days_from_monday());
                (t - Duration::days(back)).timestamp_millis()
            }
            Self::Month => {
                let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
                    return ms;
                };
                Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
                    .single()
                    .map_or(ms, |m| m.timestamp_millis())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_intervals_align_in_utc() {
        let t = parse("2024-01-17T10:31:45.250Z").expect("parses");
        assert_eq!(format(t), "2024-01-17T10:31:45.250Z");
        assert_eq!(
            format(parse("2024-01-15T10:30:00+02:00").expect("parses")),
            "2024-01-15T08:30:00Z"
        );
        assert_eq!(format(Interval::Hour.start(t)), "2024-01-17T10:00:00Z");
        assert_eq!(format(Interval::Day.start(t)), "2024-01-17T00:00:00Z");
        // 2024-01-17 is a Wednesday.
        assert_eq!(format(Interval::Week.start(t)), "2024-01-15T00:00:00Z");
        assert_eq!(format(Interval::Month.start(t)), "2024-01-01T00:00:00Z");
        assert_eq!(format(Interval::Minute.start(t)), "2024-01-17T10:31:00Z");
        assert!(parse("yesterday").is_none());
    }
}
