//! Time formats: `epoch` (seconds, may be fractional), `epoch_ms`, and Java-style date patterns.
//!
//! Owns turning `data_description.time_format` into a [`TimeFormat`] once (job creation rejects a
//! bad one through [`IngestError::InvalidTimeFormat`]) and turning one record's time value into epoch
//! milliseconds. Does not own where the time field is in a record (`reader.rs`) nor what happens to
//! a record without a time (`counts.rs`). The date-pattern matcher lives in `time_pattern.rs`.
//!
//! Epoch values follow Elasticsearch: a JSON number or a numeric string (surrounding whitespace
//! allowed, as Java's `Double.valueOf` allows). Two deliberate differences: fractional `epoch`
//! seconds keep their milliseconds (ES drops the fraction), and `NaN`/`Infinity` or values outside
//! the i64 millisecond range are invalid dates instead of wrapping.

use crate::ingest::time_pattern::DatePattern;
use crate::ingest::IngestError;

/// A compiled `data_description.time_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeFormat {
    EpochSeconds,
    EpochMillis,
    Pattern(DatePattern),
}

/// A record's time value as it appears in the JSON: text, or a number in one of JSON's flavours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeValue<'a> {
    Text(&'a str),
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl<'a> From<&'a str> for TimeValue<'a> {
    fn from(text: &'a str) -> Self {
        TimeValue::Text(text)
    }
}

impl From<i64> for TimeValue<'_> {
    fn from(n: i64) -> Self {
        TimeValue::Int(n)
    }
}

impl From<f64> for TimeValue<'_> {
    fn from(n: f64) -> Self {
        TimeValue::Float(n)
    }
}

/// Beyond this an f64 of milliseconds no longer fits an i64.
const MAX_MS_F64: f64 = 9.2e18;

impl TimeFormat {
    /// `epoch`, `epoch_ms`, or a Java `DateTimeFormatter` pattern that yields a full timestamp.
    pub fn parse(format: &str) -> Result<TimeFormat, IngestError> {
        match format {
            "epoch" => Ok(TimeFormat::EpochSeconds),
            "epoch_ms" => Ok(TimeFormat::EpochMillis),
            pattern => DatePattern::compile(pattern).map(TimeFormat::Pattern),
        }
    }

    /// The format as written in `data_description.time_format`.
    pub fn as_str(&self) -> &str {
        match self {
            TimeFormat::EpochSeconds => "epoch",
            TimeFormat::EpochMillis => "epoch_ms",
            TimeFormat::Pattern(p) => p.as_str(),
        }
    }

    /// Epoch milliseconds for one time value, `None` if it cannot be read or lies outside
    /// 1970-01-01 ..= 9999-12-31T23:59:59.999Z (an `invalid_date_count`, as in Elasticsearch).
    pub fn parse_value(&self, value: TimeValue<'_>) -> Option<i64> {
        self.read_value(value)
            .filter(|ms| (0..=LATEST_VALID_MS).contains(ms))
    }

    fn read_value(&self, value: TimeValue<'_>) -> Option<i64> {
        match (self, value) {
            (TimeFormat::EpochSeconds, TimeValue::Int(s)) => s.checked_mul(1000),
            (TimeFormat::EpochSeconds, TimeValue::UInt(s)) => {
                i64::try_from(s).ok()?.checked_mul(1000)
            }
            (TimeFormat::EpochSeconds, TimeValue::Float(s)) => seconds_to_ms(s),
            (TimeFormat::EpochSeconds, TimeValue::Text(t)) => epoch_seconds_text(java_trim(t)),
            (TimeFormat::EpochMillis, TimeValue::Int(ms)) => Some(ms),
            (TimeFormat::EpochMillis, TimeValue::UInt(ms)) => i64::try_from(ms).ok(),
            (TimeFormat::EpochMillis, TimeValue::Float(ms)) => truncate_ms(ms),
            (TimeFormat::EpochMillis, TimeValue::Text(t)) => {
                let t = java_trim(t);
                t.parse::<i64>()
                    .ok()
                    .or_else(|| truncate_ms(t.parse::<f64>().ok()?))
            }
            (TimeFormat::Pattern(p), TimeValue::Text(t)) => p.parse(t),
            // ES reads the number's text and matches it against the pattern (e.g. `yyyyMMddHHmmss`).
            (TimeFormat::Pattern(p), TimeValue::Int(n)) => p.parse(&n.to_string()),
            (TimeFormat::Pattern(p), TimeValue::UInt(n)) => p.parse(&n.to_string()),
            (TimeFormat::Pattern(p), TimeValue::Float(n)) => p.parse(&n.to_string()),
        }
    }
}

/// The last millisecond of the year 9999: later dates are invalid.
pub const LATEST_VALID_MS: i64 = 253_402_300_799_999;

/// Java's `String.trim`: strips every char up to and including space.
fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

fn truncate_ms(ms: f64) -> Option<i64> {
    (ms.is_finite() && ms.abs() < MAX_MS_F64).then(|| ms.trunc() as i64)
}

/// Seconds as f64 to ms; a product within a micro-ms of an integer is that integer, so
/// `1403481600.123` (stored as ...122.99998 or ...123.00002) is 123 ms, not 122.
fn seconds_to_ms(seconds: f64) -> Option<i64> {
    let ms = seconds * 1000.0;
    let rounded = ms.round();
    let ms = if (ms - rounded).abs() < 1e-3 {
        rounded
    } else {
        ms.trunc()
    };
    truncate_ms(ms)
}

/// `[+-]digits[.digits]` is read exactly (no float rounding); anything else goes through f64
/// (exponents such as `1.4e9`).
fn epoch_seconds_text(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return seconds.checked_mul(1000);
    }
    exact_decimal_seconds(text).or_else(|| seconds_to_ms(text.parse::<f64>().ok()?))
}

fn exact_decimal_seconds(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.')?;
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
    let ms = whole.checked_mul(1000)?.checked_add(millis)?;
    Some(if negative { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(format: &str, value: TimeValue<'_>) -> Option<i64> {
        TimeFormat::parse(format)
            .expect("format parses")
            .parse_value(value)
    }

    #[test]
    fn epoch_seconds_values() {
        let cases: &[(TimeValue, Option<i64>)] = &[
            (TimeValue::Int(1_403_481_600), Some(1_403_481_600_000)),
            (TimeValue::UInt(1_403_481_600), Some(1_403_481_600_000)),
            (TimeValue::Int(-1), None),
            (TimeValue::Int(0), Some(0)),
            (TimeValue::Int(253_402_300_799), Some(253_402_300_799_000)),
            (TimeValue::Int(253_402_300_800), None),
            (TimeValue::Int(9_223_372_036_854_775), None),
            (TimeValue::Float(1_403_481_600.5), Some(1_403_481_600_500)),
            (TimeValue::Float(1_403_481_600.123), Some(1_403_481_600_123)),
            (TimeValue::Float(1.0015), Some(1001)),
            (TimeValue::Text("1403481600"), Some(1_403_481_600_000)),
            (TimeValue::Text(" 1403481600\n"), Some(1_403_481_600_000)),
            (TimeValue::Text("1403481600.123"), Some(1_403_481_600_123)),
            (TimeValue::Text("1403481600.1239"), Some(1_403_481_600_123)),
            (TimeValue::Text("1403481600."), Some(1_403_481_600_000)),
            (TimeValue::Text("-1.5"), None),
            (TimeValue::Text("+2"), Some(2000)),
            (TimeValue::Text("1.4034816e9"), Some(1_403_481_600_000)),
            (TimeValue::Text(""), None),
            (TimeValue::Text("."), None),
            (TimeValue::Text("abc"), None),
            (TimeValue::Text("NaN"), None),
            (TimeValue::Text("Infinity"), None),
            (TimeValue::Text("inf"), None),
            (TimeValue::Text("1e300"), None),
            (TimeValue::Text("2014-06-23"), None),
            (TimeValue::Text("1.2.3"), None),
            (TimeValue::Int(i64::MAX), None),
            (TimeValue::UInt(u64::MAX), None),
            (TimeValue::Float(f64::NAN), None),
            (TimeValue::Float(1e300), None),
        ];
        for (value, expected) in cases {
            assert_eq!(parsed("epoch", *value), *expected, "{value:?}");
        }
    }

    #[test]
    fn epoch_ms_values() {
        let cases: &[(TimeValue, Option<i64>)] = &[
            (TimeValue::Int(1_700_000_000_000), Some(1_700_000_000_000)),
            (TimeValue::UInt(1_700_000_000_000), Some(1_700_000_000_000)),
            (TimeValue::Int(i64::MIN), None),
            (TimeValue::Int(LATEST_VALID_MS), Some(LATEST_VALID_MS)),
            (TimeValue::Int(LATEST_VALID_MS + 1), None),
            (
                TimeValue::Float(1_700_000_000_000.9),
                Some(1_700_000_000_000),
            ),
            (TimeValue::Text("1700000000000"), Some(1_700_000_000_000)),
            (TimeValue::Text("\t1700000000000 "), Some(1_700_000_000_000)),
            (TimeValue::Text("1.7e12"), Some(1_700_000_000_000)),
            (TimeValue::Text("-5"), None),
            (TimeValue::Text(""), None),
            (TimeValue::Text("12ab"), None),
            (TimeValue::Text("nan"), None),
            (TimeValue::Text("1e19"), None),
            (TimeValue::UInt(u64::MAX), None),
            (TimeValue::Float(f64::INFINITY), None),
        ];
        for (value, expected) in cases {
            assert_eq!(parsed("epoch_ms", *value), *expected, "{value:?}");
        }
    }

    #[test]
    fn patterns_read_text_and_numbers() {
        assert_eq!(
            parsed("yyyy-MM-dd HH:mm:ss", "2014-06-23 00:00:00".into()),
            Some(1_403_481_600_000)
        );
        assert_eq!(
            parsed("yyyyMMddHHmmss", TimeValue::Int(20_140_623_000_000)),
            Some(1_403_481_600_000)
        );
        assert_eq!(
            parsed("yyyy-MM-dd HH:mm:ss", TimeValue::Int(1_403_481_600)),
            None
        );
        // Before 1970: an invalid date, as in Elasticsearch.
        assert_eq!(
            parsed("yyyy-MM-dd HH:mm:ss", "1969-12-31 23:59:59".into()),
            None
        );
        assert_eq!(
            parsed("yyyy-MM-dd HH:mm:ss", "9999-12-31 23:59:59".into()),
            Some(253_402_300_799_000)
        );
    }

    #[test]
    fn parse_names_and_errors() {
        assert_eq!(TimeFormat::parse("epoch"), Ok(TimeFormat::EpochSeconds));
        assert_eq!(TimeFormat::parse("epoch_ms"), Ok(TimeFormat::EpochMillis));
        let pattern = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX";
        assert_eq!(
            TimeFormat::parse(pattern).map(|f| f.as_str().to_string()),
            Ok(pattern.to_string())
        );
        for bad in ["EPOCH", "epoch_s", "yyyy-MM-dd", "foo", "x"] {
            assert_eq!(
                TimeFormat::parse(bad),
                Err(IngestError::InvalidTimeFormat(bad.to_string()))
            );
        }
    }
}
