//! The pieces of a date value and how they become an instant: scanning digits, English month and
//! day names, and zone offsets, then resolving the fields (year, month, day, hour, ...) to epoch
//! milliseconds with chrono's calendar.
//!
//! Owns the value-side rules of Java's lenient parsing that `time_pattern.rs` relies on: fields set
//! twice must agree, `h`/`K` need `AM`/`PM`, `k` 24 is midnight, a missing minute or second is 0,
//! and a date that does not exist (Feb 30, day 366 of 2014) is no date. Does not own pattern
//! syntax (`time_pattern.rs`).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumField {
    Year,
    TwoDigitYear,
    Month,
    Day,
    DayOfYear,
    /// `H`, 0-23.
    HourOfDay,
    /// `k`, 1-24.
    ClockHourOfDay,
    /// `h`, 1-12 with `a`.
    ClockHourOfAmPm,
    /// `K`, 0-11 with `a`.
    HourOfAmPm,
    Minute,
    Second,
}

/// Reads `min..=max` ASCII digits; returns the value and how many bytes were used.
pub(crate) fn digits(input: &[u8], min: usize, max: usize) -> Option<(i64, usize)> {
    let used = input
        .iter()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if used < min {
        return None;
    }
    let value = input[..used].iter().try_fold(0i64, |acc, b| {
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })?;
    Some((value, used))
}

pub(crate) const MONTHS: [(&str, &str); 12] = [
    ("January", "Jan"),
    ("February", "Feb"),
    ("March", "Mar"),
    ("April", "Apr"),
    ("May", "May"),
    ("June", "Jun"),
    ("July", "Jul"),
    ("August", "Aug"),
    ("September", "Sep"),
    ("October", "Oct"),
    ("November", "Nov"),
    ("December", "Dec"),
];

pub(crate) const WEEKDAYS: [(&str, &str); 7] = [
    ("Monday", "Mon"),
    ("Tuesday", "Tue"),
    ("Wednesday", "Wed"),
    ("Thursday", "Thu"),
    ("Friday", "Fri"),
    ("Saturday", "Sat"),
    ("Sunday", "Sun"),
];

/// Full or short English name, any case (lenient parsing takes either style).
pub(crate) fn match_name(input: &[u8], names: &[(&str, &str)]) -> Option<(usize, usize)> {
    let starts = |name: &str| {
        input.len() >= name.len() && input[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    };
    names.iter().enumerate().find_map(|(i, (full, short))| {
        if starts(full) {
            Some((i, full.len()))
        } else if starts(short) {
            Some((i, short.len()))
        } else {
            None
        }
    })
}

/// `Z`, or `+HH`, `+HHMM`, `+HH:MM`, `+HHMMSS`, `+HH:MM:SS` (and `-`); offsets up to 18 hours.
pub(crate) fn offset(input: &[u8]) -> Option<(i64, usize)> {
    if input.first() == Some(&b'Z') {
        return Some((0, 1));
    }
    let sign = match input.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, mut used) = digits(&input[1..], 2, 2)?;
    used += 1;
    let mut seconds = hours * 3600;
    for unit in [60, 1] {
        let colon = usize::from(input.get(used) == Some(&b':'));
        match digits(&input[used + colon..], 2, 2) {
            Some((value, n)) if value < 60 => {
                seconds += value * unit;
                used += colon + n;
            }
            _ => break,
        }
    }
    (hours <= 18 && seconds <= 18 * 3600).then_some((sign * seconds, used))
}

pub(crate) fn zone_name(input: &[u8]) -> Option<(i64, usize)> {
    for name in ["UTC", "GMT", "UT"] {
        if input.starts_with(name.as_bytes()) {
            let rest = &input[name.len()..];
            return match rest.first() {
                Some(b'+' | b'-') => offset(rest).map(|(s, n)| (s, name.len() + n)),
                _ => Some((0, name.len())),
            };
        }
    }
    offset(input)
}

/// Sets a field once; the same field twice with different values is a mismatch, as in Java.
pub(crate) fn set_once(slot: &mut Option<i64>, value: i64) -> Option<()> {
    match *slot {
        Some(existing) if existing != value => None,
        _ => {
            *slot = Some(value);
            Some(())
        }
    }
}

#[derive(Default)]
pub(crate) struct Fields {
    pub(crate) year: Option<i64>,
    pub(crate) month: Option<i64>,
    pub(crate) day: Option<i64>,
    pub(crate) day_of_year: Option<i64>,
    /// Hour of day (0-23) from `H` or `k`.
    pub(crate) hour: Option<i64>,
    /// Hour within the half day (0-11) from `h` or `K`.
    pub(crate) half_day_hour: Option<i64>,
    pub(crate) pm: Option<i64>,
    pub(crate) minute: Option<i64>,
    pub(crate) second: Option<i64>,
    pub(crate) nanos: Option<i64>,
    pub(crate) weekday: Option<i64>,
    pub(crate) offset_seconds: Option<i64>,
}

impl Fields {
    pub(crate) fn set_number(&mut self, field: NumField, value: i64, width: usize) -> Option<()> {
        match field {
            NumField::Year => set_once(&mut self.year, value),
            // Lenient: two digits are 20xx, any other width is the year itself.
            NumField::TwoDigitYear => set_once(
                &mut self.year,
                if width == 2 { 2000 + value } else { value },
            ),
            NumField::Month => set_once(&mut self.month, value),
            NumField::Day => set_once(&mut self.day, value),
            NumField::DayOfYear => set_once(&mut self.day_of_year, value),
            NumField::HourOfDay => (value <= 23)
                .then_some(())
                .and_then(|_| set_once(&mut self.hour, value)),
            NumField::ClockHourOfDay => (1..=24)
                .contains(&value)
                .then_some(())
                .and_then(|_| set_once(&mut self.hour, value % 24)),
            NumField::ClockHourOfAmPm => (1..=12)
                .contains(&value)
                .then_some(())
                .and_then(|_| set_once(&mut self.half_day_hour, value % 12)),
            NumField::HourOfAmPm => (value <= 11)
                .then_some(())
                .and_then(|_| set_once(&mut self.half_day_hour, value)),
            NumField::Minute => set_once(&mut self.minute, value),
            NumField::Second => set_once(&mut self.second, value),
        }
    }

    pub(crate) fn resolve(self, default_year: i32) -> Option<i64> {
        let year = match self.year {
            Some(y) => i32::try_from(y).ok()?,
            None => default_year,
        };
        let date = match self.day_of_year {
            Some(doy) => {
                let date = NaiveDate::from_yo_opt(year, u32::try_from(doy).ok()?)?;
                let month_ok = self.month.is_none_or(|m| i64::from(date.month()) == m);
                let day_ok = self.day.is_none_or(|d| i64::from(date.day()) == d);
                (month_ok && day_ok).then_some(date)?
            }
            None => NaiveDate::from_ymd_opt(
                year,
                u32::try_from(self.month?).ok()?,
                u32::try_from(self.day?).ok()?,
            )?,
        };
        if let Some(weekday) = self.weekday {
            if i64::from(date.weekday().num_days_from_monday()) != weekday {
                return None;
            }
        }
        let from_half_day = match (self.half_day_hour, self.pm) {
            (Some(h), Some(pm)) => Some(h + 12 * pm),
            _ => None,
        };
        let hour = match (self.hour, from_half_day) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(h), _) | (None, Some(h)) => h,
            (None, None) => return None,
        };
        let time = NaiveTime::from_hms_nano_opt(
            u32::try_from(hour).ok()?,
            u32::try_from(self.minute.unwrap_or(0)).ok()?,
            u32::try_from(self.second.unwrap_or(0)).ok()?,
            u32::try_from(self.nanos.unwrap_or(0)).ok()?,
        )?;
        let local_ms = NaiveDateTime::new(date, time).and_utc().timestamp_millis();
        local_ms.checked_sub(self.offset_seconds.unwrap_or(0) * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        let cases: &[(&str, Option<(i64, usize)>)] = &[
            ("Z", Some((0, 1))),
            ("+02", Some((7200, 3))),
            ("-0530", Some((-19800, 5))),
            ("+05:30", Some((19800, 6))),
            ("+01:02:03", Some((3723, 9))),
            ("+18:00", Some((64800, 6))),
            ("+19:00", None),
            ("+18:01", None),
            ("+2", None),
            ("02:00", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(offset(text.as_bytes()), *expected, "{text:?}");
        }
        assert_eq!(zone_name(b"GMT-01:00"), Some((-3600, 9)));
        assert_eq!(zone_name(b"UTC"), Some((0, 3)));
        assert_eq!(zone_name(b"PST"), None);
    }

    #[test]
    fn fields_set_twice_must_agree() {
        let mut fields = Fields::default();
        assert_eq!(fields.set_number(NumField::Year, 2014, 4), Some(()));
        assert_eq!(fields.set_number(NumField::Year, 2014, 4), Some(()));
        assert_eq!(fields.set_number(NumField::Year, 2015, 4), None);
        assert_eq!(fields.set_number(NumField::HourOfDay, 24, 2), None);
        assert_eq!(fields.set_number(NumField::ClockHourOfDay, 24, 2), Some(()));
        assert_eq!(fields.hour, Some(0));
    }

    #[test]
    fn resolving_needs_a_real_date_and_an_hour() {
        let date = |month, day, hour| Fields {
            year: Some(2014),
            month: Some(month),
            day: Some(day),
            hour,
            ..Fields::default()
        };
        assert_eq!(date(6, 23, Some(0)).resolve(0), Some(1_403_481_600_000));
        assert_eq!(date(2, 29, Some(0)).resolve(0), None);
        assert_eq!(date(6, 23, None).resolve(0), None);
        let twelve_hour = Fields {
            half_day_hour: Some(1),
            pm: Some(1),
            ..date(6, 22, None)
        };
        assert_eq!(
            twelve_hour.resolve(0),
            Some(1_403_481_600_000 - 11 * 3_600_000)
        );
        let offset = Fields {
            offset_seconds: Some(3600),
            ..date(6, 23, Some(1))
        };
        assert_eq!(offset.resolve(0), Some(1_403_481_600_000));
    }
}
