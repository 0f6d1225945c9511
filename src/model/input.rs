//! What a detector reads from a record besides its split fields, and how that lands in the
//! series' open-bucket accumulator: nothing (count functions), a number (metrics), a term
//! (`distinct_count`, `info_content`), the record's time in its day or week (`time_of_day`,
//! `time_of_week`) or a point (`lat_long`).
//!
//! A record that lacks what its detector reads (no field, a non-numeric metric, an invalid point)
//! is ignored by that detector, as Elasticsearch ignores a record with a missing analysis field.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::ingest::FieldValue;
use crate::model::accumulator::SeriesAccumulator;
use crate::model::function::DetectorFunction;
use crate::model::geo;

/// Seconds in the cycles of the time functions.
pub const DAY_SECS: f64 = 86_400.0;
pub const WEEK_SECS: f64 = 7.0 * DAY_SECS;
/// 1970-01-01 was a Thursday; Elasticsearch's week starts on Sunday, three days earlier.
const EPOCH_WEEK_OFFSET_SECS: f64 = 4.0 * DAY_SECS;

/// A record slot; `usize::MAX` for a configured field the caller did not pass.
type Slot = usize;

/// How a detector reads its field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FieldUse {
    Nothing,
    /// A finite number; `squares` also keeps squared values (for `varp`).
    Number {
        slot: Slot,
        squares: bool,
    },
    Term {
        slot: Slot,
    },
    /// The record's time, as seconds into a cycle of `period` seconds.
    Phase {
        period: f64,
    },
    /// A `"lat,lon"` string in `slot`, or the object form's two leaves in `parts`.
    Point {
        slot: Slot,
        parts: [Slot; 2],
    },
}

/// One record's reading.
pub enum Input<'a> {
    Nothing,
    Number(f64),
    Term(Cow<'a, str>),
    Phase(f64, f64),
    Point([f64; 2]),
}

impl Input<'_> {
    /// The metric value, for the functions that read one.
    pub fn number(&self) -> Option<f64> {
        match self {
            Input::Number(v) => Some(*v),
            _ => None,
        }
    }
}

impl FieldUse {
    /// `slot_of` maps a field name to its record slot.
    pub fn of(
        function: DetectorFunction,
        field: Option<&str>,
        slot_of: impl Fn(&str) -> Slot,
    ) -> FieldUse {
        use DetectorFunction as F;
        let slot = field.map_or(usize::MAX, &slot_of);
        match function {
            F::TimeOfDay => FieldUse::Phase { period: DAY_SECS },
            F::TimeOfWeek => FieldUse::Phase { period: WEEK_SECS },
            F::DistinctCount
            | F::HighDistinctCount
            | F::LowDistinctCount
            | F::InfoContent
            | F::HighInfoContent
            | F::LowInfoContent => FieldUse::Term { slot },
            F::LatLong => {
                let [lat, lon] = geo::part_fields(field.unwrap_or_default());
                FieldUse::Point {
                    slot,
                    parts: [slot_of(&lat), slot_of(&lon)],
                }
            }
            _ if field.is_none() || !function.requires_field_name() => FieldUse::Nothing,
            _ => FieldUse::Number {
                slot,
                squares: matches!(function, F::Varp | F::HighVarp | F::LowVarp),
            },
        }
    }

    /// What the record gives, or `None` when the detector must ignore it.
    pub fn read<'a>(&self, values: &'a [Option<FieldValue>], time_ms: i64) -> Option<Input<'a>> {
        let get = |slot: Slot| values.get(slot).and_then(Option::as_ref);
        match *self {
            FieldUse::Nothing => Some(Input::Nothing),
            FieldUse::Number { slot, .. } => get(slot)?.as_f64().map(Input::Number),
            FieldUse::Term { slot } => Some(Input::Term(get(slot)?.as_term())),
            FieldUse::Phase { period } => {
                let secs = time_ms.div_euclid(1000) as f64;
                let offset = if period == WEEK_SECS {
                    EPOCH_WEEK_OFFSET_SECS
                } else {
                    0.0
                };
                Some(Input::Phase((secs + offset).rem_euclid(period), period))
            }
            FieldUse::Point { slot, parts } => {
                let point = match get(slot) {
                    Some(FieldValue::Text(text)) => geo::parse_point(text),
                    _ => geo::point_of_parts(get(parts[0]), get(parts[1])),
                };
                point.map(Input::Point)
            }
        }
    }

    /// Adds the reading of a record of summary-count `weight` to `accumulator` (its count too).
    pub fn apply(
        &self,
        input: &Input,
        weight: f64,
        keep_values: bool,
        accumulator: &mut SeriesAccumulator,
    ) {
        accumulator.add_record(weight, input.number(), keep_values);
        match input {
            Input::Nothing => {}
            Input::Number(v) => {
                if matches!(self, FieldUse::Number { squares: true, .. }) {
                    accumulator.add_square(*v, weight);
                }
            }
            Input::Term(t) => accumulator.add_term(t),
            Input::Phase(phase, period) => accumulator.add_phase(*phase, *period),
            Input::Point([lat, lon]) => accumulator.add_position(*lat, *lon),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot_of(name: &str) -> Slot {
        ["x", "loc", "loc.lat", "loc.lon"]
            .iter()
            .position(|f| *f == name)
            .unwrap_or(usize::MAX)
    }

    #[test]
    fn numbers_terms_and_missing_fields() {
        let mean = FieldUse::of(DetectorFunction::Mean, Some("x"), slot_of);
        let values = vec![Some(FieldValue::Text("abc".into())), None, None, None];
        assert!(mean.read(&values, 0).is_none(), "not a number");
        let dc = FieldUse::of(DetectorFunction::DistinctCount, Some("x"), slot_of);
        assert!(matches!(dc.read(&values, 0), Some(Input::Term(t)) if t == "abc"));
        assert!(dc.read(&[None, None, None, None], 0).is_none());
        let count = FieldUse::of(DetectorFunction::Count, None, slot_of);
        assert!(matches!(count.read(&[], 0), Some(Input::Nothing)));
    }

    #[test]
    fn phases_of_day_and_week() {
        let day = FieldUse::of(DetectorFunction::TimeOfDay, None, slot_of);
        let t = (3 * 86_400 + 3600 * 5 + 30) * 1000;
        assert!(matches!(day.read(&[], t), Some(Input::Phase(p, _)) if p == 18_030.0));
        let week = FieldUse::of(DetectorFunction::TimeOfWeek, None, slot_of);
        // Thursday 1970-01-01 00:00 is four days into a week starting on Sunday.
        assert!(matches!(week.read(&[], 0), Some(Input::Phase(p, _)) if p == 4.0 * 86_400.0));
    }

    #[test]
    fn points_as_strings_or_objects() {
        let geo = FieldUse::of(DetectorFunction::LatLong, Some("loc"), slot_of);
        let text = vec![None, Some(FieldValue::Text("1.5,2.5".into())), None, None];
        assert!(matches!(geo.read(&text, 0), Some(Input::Point([a, b])) if a == 1.5 && b == 2.5));
        let object = vec![
            None,
            None,
            Some(FieldValue::Num(-3.0)),
            Some(FieldValue::Num(4.0)),
        ];
        assert!(matches!(geo.read(&object, 0), Some(Input::Point([a, _])) if a == -3.0));
        let bad = vec![None, Some(FieldValue::Text("north".into())), None, None];
        assert!(geo.read(&bad, 0).is_none());
    }
}
