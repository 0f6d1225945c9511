//! Java `DateTimeFormatter` patterns, as `data_description.time_format` accepts them.
//!
//! Owns compiling a pattern once (at job creation) into a token list and matching values against
//! it. Does not own `epoch`/`epoch_ms` (`time.rs`) nor how matched fields become an instant
//! (`date_fields.rs`).
//!
//! Why tokens of our own rather than chrono format items: Elasticsearch builds its formatter with
//! `parseLenient()`, so numbers may be shorter than the pattern (`H` matches `1`), a fraction `SSS`
//! takes 0 to 9 digits, `yy` is a year in 2000-2099, and a year-less pattern takes the current year.
//! chrono's public items cannot say "0-9 fraction digits without a dot" nor the 2000 base, so the
//! matcher is written here; it is small and allocation-free.
//!
//! Like Elasticsearch, a pattern must yield a full timestamp (a date and at least an hour), so
//! `yyyy-MM-dd` alone or `HH:mm:ss` alone are rejected, as are letters we do not implement
//! (eras, week-based fields, zone ids, `u`, ...). No zone in the pattern means UTC.

use chrono::Datelike;

use crate::ingest::date_fields::{
    digits, match_name, offset, set_once, zone_name, Fields, NumField, MONTHS, WEEKDAYS,
};
use crate::ingest::IngestError;

/// A compiled date pattern; [`DatePattern::as_str`] gives the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DatePattern {
    pattern: String,
    tokens: Vec<Token>,
    has_year: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    /// `min..=max` digits; `fixed` is the width used when another number follows with no separator
    /// (Java's adjacent value parsing, e.g. `yyyyMMdd`).
    Number {
        field: NumField,
        min: usize,
        max: usize,
        fixed: usize,
    },
    Fraction {
        min: usize,
        max: usize,
        fixed: usize,
    },
    MonthName,
    WeekdayName,
    AmPm,
    /// `X`, `x`, `Z`: `Z` or a numeric offset, colons optional (lenient).
    Offset,
    /// `z`: `UTC`, `GMT`, `UT` or `Z`, optionally followed by a numeric offset; zone names such as
    /// `PST` need a zone database and are not read.
    ZoneName,
}

impl DatePattern {
    pub fn compile(pattern: &str) -> Result<DatePattern, IngestError> {
        let invalid = || IngestError::InvalidTimeFormat(pattern.to_string());
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                i = read_quoted(&chars, i, &mut literal).ok_or_else(invalid)?;
            } else if c.is_ascii_alphabetic() {
                let count = chars[i..].iter().take_while(|&&x| x == c).count();
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(letter_token(c, count).ok_or_else(invalid)?);
                i += count;
            } else if matches!(c, '[' | ']' | '{' | '}' | '#') {
                // Optional sections and reserved characters: not supported.
                return Err(invalid());
            } else {
                literal.push(c);
                i += 1;
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        fix_adjacent_widths(&mut tokens);
        let has_year = check_complete(&tokens).ok_or_else(invalid)?;
        Ok(DatePattern {
            pattern: pattern.to_string(),
            tokens,
            has_year,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Epoch milliseconds for `text`, or `None` if it does not match the pattern or is not a real date.
    pub fn parse(&self, text: &str) -> Option<i64> {
        let input = text.as_bytes();
        let mut pos = 0;
        let mut fields = Fields::default();
        for token in &self.tokens {
            let rest = &input[pos..];
            pos += match token {
                Token::Literal(lit) => rest.starts_with(lit.as_bytes()).then_some(lit.len())?,
                Token::Number {
                    field, min, max, ..
                } => {
                    let (value, used) = digits(rest, *min, *max)?;
                    fields.set_number(*field, value, used)?;
                    used
                }
                Token::Fraction { min, max, .. } => {
                    let (value, used) = digits(rest, *min, *max)?;
                    let nanos = value * 10i64.pow(9 - used as u32);
                    set_once(&mut fields.nanos, nanos)?;
                    used
                }
                Token::MonthName => {
                    let (index, used) = match_name(rest, &MONTHS)?;
                    set_once(&mut fields.month, index as i64 + 1)?;
                    used
                }
                Token::WeekdayName => {
                    let (index, used) = match_name(rest, &WEEKDAYS)?;
                    set_once(&mut fields.weekday, index as i64)?;
                    used
                }
                Token::AmPm => {
                    let (index, used) = match_name(rest, &[("AM", "AM"), ("PM", "PM")])?;
                    set_once(&mut fields.pm, index as i64)?;
                    used
                }
                Token::Offset => {
                    let (seconds, used) = offset(rest)?;
                    set_once(&mut fields.offset_seconds, seconds)?;
                    used
                }
                Token::ZoneName => {
                    let (seconds, used) = zone_name(rest)?;
                    set_once(&mut fields.offset_seconds, seconds)?;
                    used
                }
            };
        }
        if pos != input.len() {
            return None;
        }
        let default_year = if self.has_year {
            0
        } else {
            chrono::Utc::now().year()
        };
        fields.resolve(default_year)
    }
}

/// Reads a quoted section starting at `chars[start] == '\''`; `''` is a literal quote, inside or out.
fn read_quoted(chars: &[char], start: usize, literal: &mut String) -> Option<usize> {
    if chars.get(start + 1) == Some(&'\'') {
        literal.push('\'');
        return Some(start + 2);
    }
    let mut i = start + 1;
    loop {
        match chars.get(i)? {
            '\'' if chars.get(i + 1) == Some(&'\'') => {
                literal.push('\'');
                i += 2;
            }
            '\'' => return Some(i + 1),
            &c => {
                literal.push(c);
                i += 1;
            }
        }
    }
}

fn letter_token(letter: char, count: usize) -> Option<Token> {
    let number = |field, max, fixed| {
        Some(Token::Number {
            field,
            min: 1,
            max,
            fixed,
        })
    };
    match (letter, count) {
        ('y', 2) => number(NumField::TwoDigitYear, 4, 2),
        ('y', 1..=9) => number(NumField::Year, 9, count.max(4)),
        ('M' | 'L', 1 | 2) => number(NumField::Month, 2, 2),
        ('M' | 'L', 3 | 4) => Some(Token::MonthName),
        ('d', 1 | 2) => number(NumField::Day, 2, 2),
        ('D', 1..=3) => number(NumField::DayOfYear, 3, 3),
        ('H', 1 | 2) => number(NumField::HourOfDay, 2, 2),
        ('k', 1 | 2) => number(NumField::ClockHourOfDay, 2, 2),
        ('h', 1 | 2) => number(NumField::ClockHourOfAmPm, 2, 2),
        ('K', 1 | 2) => number(NumField::HourOfAmPm, 2, 2),
        ('m', 1 | 2) => number(NumField::Minute, 2, 2),
        ('s', 1 | 2) => number(NumField::Second, 2, 2),
        ('S', 1..=9) => Some(Token::Fraction {
            min: 0,
            max: 9,
            fixed: count,
        }),
        ('E', 1..=4) => Some(Token::WeekdayName),
        ('a', 1) => Some(Token::AmPm),
        ('X' | 'x', 1..=5) | ('Z', 1..=3 | 5) => Some(Token::Offset),
        ('z', 1..=4) => Some(Token::ZoneName),
        _ => None,
    }
}

/// A number directly followed by another number must have its exact width, or the first would
/// swallow the digits of the second.
fn fix_adjacent_widths(tokens: &mut [Token]) {
    let is_numeric = |t: &Token| matches!(t, Token::Number { .. } | Token::Fraction { .. });
    for i in 0..tokens.len().saturating_sub(1) {
        if !is_numeric(&tokens[i + 1]) {
            continue;
        }
        match &mut tokens[i] {
            Token::Number {
                min, max, fixed, ..
            }
            | Token::Fraction { min, max, fixed } => {
                *min = *fixed;
                *max = *fixed;
            }
            _ => {}
        }
    }
}

/// The pattern must produce a full timestamp, as Elasticsearch requires; returns whether it has a year.
fn check_complete(tokens: &[Token]) -> Option<bool> {
    let has = |wanted: &dyn Fn(&Token) -> bool| tokens.iter().any(wanted);
    let has_field = |f: NumField| has(&|t| matches!(t, Token::Number { field, .. } if *field == f));
    let month = has_field(NumField::Month) || has(&|t| matches!(t, Token::MonthName));
    let date = (month && has_field(NumField::Day)) || has_field(NumField::DayOfYear);
    let am_pm = has(&|t| matches!(t, Token::AmPm));
    let twelve_hour = has_field(NumField::ClockHourOfAmPm) || has_field(NumField::HourOfAmPm);
    let hour = has_field(NumField::HourOfDay)
        || has_field(NumField::ClockHourOfDay)
        || (twelve_hour && am_pm);
    let minute = has_field(NumField::Minute);
    let second = has_field(NumField::Second);
    let fraction = has(&|t| matches!(t, Token::Fraction { .. }));
    let complete = date && hour && (minute || !second) && (second || !fraction);
    complete.then(|| has_field(NumField::Year) || has_field(NumField::TwoDigitYear))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(pattern: &str, value: &str) -> Option<i64> {
        DatePattern::compile(pattern)
            .expect("pattern compiles")
            .parse(value)
    }

    #[test]
    fn valid_values_per_pattern() {
        // (pattern, value, expected epoch ms)
        let cases: &[(&str, &str, i64)] = &[
            (
                "yyyy-MM-dd HH:mm:ss",
                "2014-06-23 00:00:00",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd HH:mm:ss",
                "1985-08-18 20:15:40",
                493_244_140_000,
            ),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-23 0:1:2", 1_403_481_662_000),
            (
                "yyyy-MM-dd HH:mm:ss.SSS",
                "2014-06-23 00:00:00.123",
                1_403_481_600_123,
            ),
            (
                "yyyy-MM-dd HH:mm:ss.SSS",
                "2014-06-23 00:00:00.5",
                1_403_481_600_500,
            ),
            (
                "yyyy-MM-dd HH:mm:ss.SSS",
                "2014-06-23 00:00:00.123456",
                1_403_481_600_123,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                "2014-06-23T02:00:00.250+02:00",
                1_403_481_600_250,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                "2014-06-23T00:00:00.000Z",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
                "2014-06-23T00:00:00.000001Z",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ssX",
                "2014-06-22T19:00:00-05",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ssX",
                "2014-06-23T00:00:00Z",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ssXX",
                "2014-06-23T05:30:00+0530",
                1_403_481_600_000,
            ),
            (
                "dd/MMM/yyyy:HH:mm:ss Z",
                "23/Jun/2014:01:00:00 +0100",
                1_403_481_600_000,
            ),
            (
                "dd/MMM/yyyy:HH:mm:ss Z",
                "22/jun/2014:17:00:00 -0700",
                1_403_481_600_000,
            ),
            (
                "dd MMMM yyyy HH:mm",
                "23 June 2014 00:00",
                1_403_481_600_000,
            ),
            (
                "EEE, dd MMM yyyy HH:mm:ss z",
                "Mon, 23 Jun 2014 00:00:00 GMT",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd HH:mm:ss z",
                "2014-06-23 03:00:00 UTC+03:00",
                1_403_481_600_000,
            ),
            ("yyyyMMddHHmmss", "20140623000000", 1_403_481_600_000),
            (
                "yyyyMMdd'T'HHmmssSSS",
                "20140623T000000042",
                1_403_481_600_042,
            ),
            ("yy-MM-dd HH:mm", "14-06-23 00:00", 1_403_481_600_000),
            (
                "yyyy-MM-dd hh:mm a",
                "2014-06-22 12:00 PM",
                1_403_438_400_000,
            ),
            (
                "yyyy-MM-dd hh:mm a",
                "2014-06-23 12:00 am",
                1_403_481_600_000,
            ),
            ("yyyy-MM-dd kk:mm", "2014-06-22 24:00", 1_403_395_200_000),
            ("yyyy-D HH", "2014-174 00", 1_403_481_600_000),
            ("y-M-d HH", "2014-3-22 01", 1_395_450_000_000),
            (
                "''yyyy-MM-dd HH:mm''",
                "'2014-06-23 00:00'",
                1_403_481_600_000,
            ),
            (
                "'at' HH:mm 'on' yyyy-MM-dd",
                "at 00:00 on 2014-06-23",
                1_403_481_600_000,
            ),
            (
                "yyyy-MM-dd HH:mm:ss XXX",
                "2014-03-25 01:30:20 +02:00",
                1_395_703_820_000,
            ),
            (
                "yyyy-MM-dd HH:mm:ss XXX",
                "2014-03-25 1:30:20 +02:00",
                1_395_703_820_000,
            ),
            ("yyyy-MM-dd HH:mm:ss", "1969-12-31 23:59:59", -1_000),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(ms(pattern, value), Some(*expected), "{pattern} / {value}");
        }
    }

    #[test]
    fn invalid_values_per_pattern() {
        let cases: &[(&str, &str)] = &[
            ("yyyy-MM-dd HH:mm:ss", "14:00:22"),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-23 00:00:00 "),
            ("yyyy-MM-dd HH:mm:ss", " 2014-06-23 00:00:00"),
            ("yyyy-MM-dd HH:mm:ss", "2014-02-30 00:00:00"),
            ("yyyy-MM-dd HH:mm:ss", "2014-13-01 00:00:00"),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-23 24:00:00"),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-23 00:60:00"),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-23 00:00:60"),
            ("yyyy-MM-dd HH:mm:ss", ""),
            ("yyyy-MM-dd HH:mm:ss", "NaN"),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-23T00:00:00"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "2015-01-01 14:00:22"),
            ("yyyy-MM-dd'T'HH:mm:ssXXX", "2014-06-23T00:00:00"),
            ("yyyy-MM-dd'T'HH:mm:ssXXX", "2014-06-23T00:00:00+19:00"),
            ("yyyy-MM-dd'T'HH:mm:ssXXX", "2014-06-23T00:00:00+02:"),
            ("dd/MMM/yyyy:HH:mm:ss Z", "23/Jux/2014:01:00:00 +0100"),
            (
                "EEE, dd MMM yyyy HH:mm:ss z",
                "Tue, 23 Jun 2014 00:00:00 GMT",
            ),
            (
                "EEE, dd MMM yyyy HH:mm:ss z",
                "Mon, 23 Jun 2014 00:00:00 PST",
            ),
            ("yyyy-MM-dd hh:mm a", "2014-06-22 13:00 PM"),
            ("yyyy-MM-dd hh:mm a", "2014-06-22 00:00 AM"),
            ("yyyy-D HH", "2014-366 00"),
            ("yyyyMMddHHmmss", "201406230000"),
            ("yyyy-MM-dd HH:mm:ss", "99999999999999999999-06-23 00:00:00"),
        ];
        for (pattern, value) in cases {
            assert_eq!(ms(pattern, value), None, "{pattern} / {value:?}");
        }
    }

    #[test]
    fn year_less_pattern_takes_the_current_year() {
        let year = chrono::Utc::now().year();
        let expected = chrono::NaiveDate::from_ymd_opt(year, 8, 14)
            .and_then(|d| d.and_hms_opt(1, 30, 20))
            .map(|dt| dt.and_utc().timestamp_millis());
        assert_eq!(ms("MM dd HH:mm:ss", "08 14 01:30:20"), expected);
        assert!(ms("MMM d HH:mm:ss", "Aug 14 01:30:20").is_some());
    }

    #[test]
    fn rejects_patterns_that_cannot_make_a_timestamp() {
        for pattern in [
            "y",
            "y-M-d",
            "yyyy-MM-dd",
            "HH:mm:ss",
            "uuuu-MM-dd HH:mm:ss",
            "yyyy-MM-dd HH:ss",
            "yyyy-MM-dd HH:mm.SSS",
            "yyyy-MM-dd hh:mm",
            "yyyy-MM-dd HH:mm:ss VV",
            "yyyy-MM-dd HH:mm:ss ZZZZ",
            "yyyy-MM-dd HH:mm:ss 'unterminated",
            "yyyy-MM-dd[ HH:mm:ss]",
            "GGGG yyyy-MM-dd HH:mm:ss",
            "YYYY-MM-dd HH:mm:ss",
            "yyyy-MM-dd HH:mm:ss.SSSSSSSSSS",
            "yyyy-MMMMM-dd HH",
            "yyyyyyyyyyyyyyyyyyyyMMdd HH",
            "",
        ] {
            assert_eq!(
                DatePattern::compile(pattern),
                Err(IngestError::InvalidTimeFormat(pattern.to_string())),
                "{pattern:?}"
            );
        }
    }
}
