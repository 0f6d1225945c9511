//! Date parameters (`start`, `end`, `advance_time`, `timestamp`, ...) -> epoch milliseconds.
//!
//! Owns the one rule Elasticsearch's ML REST layer applies to a date given as a request parameter:
//! `now`; an integer of at most 10 characters is epoch seconds, a longer one epoch milliseconds;
//! otherwise an ISO-8601 date (`strict_date_optional_time`: `yyyy[-MM[-dd]]` with an optional
//! `THH[:mm[:ss[.fraction]]]` and an optional zone `Z`/`±HH[[:]mm]`, UTC when absent). A negative
//! result is refused, as Elasticsearch does. Does not own the `time_format` of `_data` records
//! (that is `ingest::time`). Talks to: nothing (the clock for `now`).

use chrono::{NaiveDate, NaiveTime};

/// Parses one date parameter; `None` when it is not a date Elasticsearch would accept.
pub fn parse_date_param(value: &str, now_ms: i64) -> Option<i64> {
    if value == "now" {
        return Some(now_ms);
    }
    let millis = match parse_java_long(value) {
        Some(number) if value.trim().len() <= 10 => number.checked_mul(1000)?,
        Some(number) => number,
        None => parse_iso_date(value)?,
    };
    (millis >= 0).then_some(millis)
}

/// `Long.parseLong`: an optional sign and decimal digits, nothing else.
fn parse_java_long(value: &str) -> Option<i64> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `strict_date_optional_time` -> epoch ms.
fn parse_iso_date(value: &str) -> Option<i64> {
    let mut cursor = Cursor { rest: value };
    let year = cursor.digits(4)? as i32;
    let mut month = 1;
    let mut day = 1;
    if cursor.eat('-') {
        month = cursor.digits(2)?;
        if cursor.eat('-') {
            day = cursor.digits(2)?;
        }
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut offset_seconds = 0i64;
    if cursor.eat('T') {
        hour = cursor.digits(2)?;
        if cursor.eat(':') {
            minute = cursor.digits(2)?;
            if cursor.eat(':') {
                second = cursor.digits(2)?;
                if cursor.eat('.') || cursor.eat(',') {
                    nanos = cursor.fraction_nanos()?;
                }
            }
        }
        offset_seconds = cursor.zone()?;
    }
    if !cursor.rest.is_empty() {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local_ms = date.and_time(time).and_utc().timestamp_millis();
    local_ms.checked_sub(offset_seconds * 1000)
}

struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    fn eat(&mut self, expected: char) -> bool {
        match self.rest.strip_prefix(expected) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Exactly `count` ASCII digits.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let head = self.rest.get(..count)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[count..];
        head.parse().ok()
    }

    /// 1 to 9 digits of a second fraction, as nanoseconds.
    fn fraction_nanos(&mut self) -> Option<u32> {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&len) {
            return None;
        }
        let digits = &self.rest[..len];
        self.rest = &self.rest[len..];
        let value: u32 = digits.parse().ok()?;
        Some(value * 10u32.pow(9 - len as u32))
    }

    /// Optional zone: nothing (UTC), `Z`, `±HH`, `±HHmm` or `±HH:mm`; returns the offset in seconds.
    fn zone(&mut self) -> Option<i64> {
        if self.rest.is_empty() {
            return Some(0);
        }
        if self.eat('Z') {
            return Some(0);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2)?;
        let minutes = if self.rest.is_empty() {
            0
        } else {
            self.eat(':');
            self.digits(2)?
        };
        if hours > 18 || minutes > 59 {
            return None;
        }
        Some(sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60))
    }
}

/// Epoch ms now, for `now`.
pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_123;

    fn parse(value: &str) -> Option<i64> {
        parse_date_param(value, NOW)
    }

    #[test]
    fn epoch_seconds_up_to_ten_characters() {
        assert_eq!(parse("1403481600"), Some(1_403_481_600_000));
        assert_eq!(parse("1514804400"), Some(1_514_804_400_000));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("86400"), Some(86_400_000));
    }

    #[test]
    fn longer_integers_are_epoch_millis() {
        assert_eq!(parse("1403481600000"), Some(1_403_481_600_000));
        assert_eq!(parse("14034816000"), Some(14_034_816_000));
    }

    #[test]
    fn now_is_the_clock() {
        assert_eq!(parse("now"), Some(NOW));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(parse("2014-06-23T00:00:00Z"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06-23T00:00:00.000Z"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06-23T00:00:00.5Z"), Some(1_403_481_600_500));
        assert_eq!(parse("2014-06-23T00:00:00"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06-23"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06"), Some(1_401_580_800_000));
        assert_eq!(parse("2014-06-23T02:00:00+02:00"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06-23T02:00:00+0200"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06-22T22:00-02"), Some(1_403_481_600_000));
        assert_eq!(parse("2014-06-23T01"), Some(1_403_485_200_000));
    }

    #[test]
    fn rejects_what_elasticsearch_rejects() {
        for bad in [
            "",
            "yesterday",
            "-1",
            "2014-13-01",
            "2014-02-30",
            "14-06-23",
            "2014-06-23T",
            "2014-06-23T25:00:00Z",
            "2014-06-23 00:00:00",
            "2014-06-23T00:00:00Zjunk",
            "2014-06-23T00:00:00.Z",
            "1403481600.5",
            " 1403481600",
            "99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
