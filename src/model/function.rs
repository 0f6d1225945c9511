//! Detector functions: the closed set Elasticsearch accepts (auspex models all of them).

use serde::{Deserialize, Serialize};

/// Every function name Elasticsearch 8.x accepts in a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DetectorFunction {
    Count,
    HighCount,
    LowCount,
    NonZeroCount,
    HighNonZeroCount,
    LowNonZeroCount,
    DistinctCount,
    HighDistinctCount,
    LowDistinctCount,
    Rare,
    FreqRare,
    Mean,
    HighMean,
    LowMean,
    Median,
    HighMedian,
    LowMedian,
    Min,
    Max,
    Metric,
    Varp,
    HighVarp,
    LowVarp,
    Sum,
    HighSum,
    LowSum,
    NonNullSum,
    HighNonNullSum,
    LowNonNullSum,
    InfoContent,
    HighInfoContent,
    LowInfoContent,
    TimeOfDay,
    TimeOfWeek,
    LatLong,
}

/// (name as written in a config, function). The first entry of each function is its canonical name.
const NAMES: &[(&str, DetectorFunction)] = {
    use DetectorFunction::*;
    &[
        ("count", Count),
        ("high_count", HighCount),
        ("low_count", LowCount),
        ("non_zero_count", NonZeroCount),
        ("nzc", NonZeroCount),
        ("high_non_zero_count", HighNonZeroCount),
        ("high_nzc", HighNonZeroCount),
        ("low_non_zero_count", LowNonZeroCount),
        ("low_nzc", LowNonZeroCount),
        ("distinct_count", DistinctCount),
        ("dc", DistinctCount),
        ("high_distinct_count", HighDistinctCount),
        ("high_dc", HighDistinctCount),
        ("low_distinct_count", LowDistinctCount),
        ("low_dc", LowDistinctCount),
        ("rare", Rare),
        ("freq_rare", FreqRare),
        ("mean", Mean),
        ("avg", Mean),
        ("high_mean", HighMean),
        ("high_avg", HighMean),
        ("low_mean", LowMean),
        ("low_avg", LowMean),
        ("median", Median),
        ("high_median", HighMedian),
        ("low_median", LowMedian),
        ("min", Min),
        ("max", Max),
        ("metric", Metric),
        ("varp", Varp),
        ("high_varp", HighVarp),
        ("low_varp", LowVarp),
        ("sum", Sum),
        ("high_sum", HighSum),
        ("low_sum", LowSum),
        ("non_null_sum", NonNullSum),
        ("high_non_null_sum", HighNonNullSum),
        ("low_non_null_sum", LowNonNullSum),
        ("info_content", InfoContent),
        ("high_info_content", HighInfoContent),
        ("low_info_content", LowInfoContent),
        ("time_of_day", TimeOfDay),
        ("time_of_week", TimeOfWeek),
        ("lat_long", LatLong),
    ]
};

/// Which side of the distribution a function calls anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tail {
    Both,
    High,
    Low,
}

impl DetectorFunction {
    /// Parses an ES function name, aliases included (`avg` = `mean`, `nzc` = `non_zero_count`, ...).
    pub fn parse(name: &str) -> Option<DetectorFunction> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The canonical ES name (`mean` for `avg`).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .expect("every function has an entry in NAMES")
    }

    /// The name without its `high_`/`low_` side, as ES reports it in `function_description`.
    pub fn description(self) -> &'static str {
        let name = self.name();
        name.strip_prefix("high_")
            .or_else(|| name.strip_prefix("low_"))
            .unwrap_or(name)
    }

    /// `max` only looks for unusually high values and `min` for low ones, as in Elasticsearch.
    pub fn tail(self) -> Tail {
        match self {
            DetectorFunction::Max => return Tail::High,
            DetectorFunction::Min => return Tail::Low,
            _ => {}
        }
        let name = self.name();
        if name.starts_with("high_") {
            Tail::High
        } else if name.starts_with("low_") {
            Tail::Low
        } else {
            Tail::Both
        }
    }

    /// Count-like functions forbid `field_name`; `rare`/`freq_rare` need a `by_field_name`;
    /// every other function needs `field_name`.
    pub fn requires_field_name(self) -> bool {
        use DetectorFunction::*;
        !matches!(
            self,
            Count
                | HighCount
                | LowCount
                | NonZeroCount
                | HighNonZeroCount
                | LowNonZeroCount
                | Rare
                | FreqRare
                | TimeOfDay
                | TimeOfWeek
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_parse_to_their_canonical_function() {
        assert_eq!(DetectorFunction::parse("avg"), Some(DetectorFunction::Mean));
        assert_eq!(
            DetectorFunction::parse("high_nzc"),
            Some(DetectorFunction::HighNonZeroCount)
        );
        assert_eq!(DetectorFunction::parse("avg").unwrap().name(), "mean");
        assert_eq!(DetectorFunction::parse("means"), None);
        assert_eq!(DetectorFunction::parse("Mean"), None);
    }

    #[test]
    fn sides_and_descriptions() {
        assert_eq!(DetectorFunction::HighCount.tail(), Tail::High);
        assert_eq!(DetectorFunction::LowMean.tail(), Tail::Low);
        assert_eq!(DetectorFunction::Max.tail(), Tail::High);
        assert_eq!(DetectorFunction::Mean.tail(), Tail::Both);
        assert_eq!(DetectorFunction::HighCount.description(), "count");
        assert_eq!(
            DetectorFunction::LowNonNullSum.description(),
            "non_null_sum"
        );
    }

    #[test]
    fn field_requirements() {
        assert!(!DetectorFunction::Count.requires_field_name());
        assert!(DetectorFunction::Mean.requires_field_name());
        assert!(DetectorFunction::DistinctCount.requires_field_name());
    }
}
