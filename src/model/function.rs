//! Detector functions: the closed set Elasticsearch accepts, with which of them auspex models today.

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

impl DetectorFunction {
    /// Parses an ES function name, aliases included (`avg` = `mean`, `nzc` = `non_zero_count`, ...).
    pub fn parse(name: &str) -> Option<DetectorFunction> {
        let _ = name;
        todo!("model helper")
    }

    /// The canonical ES name (`mean` for `avg`).
    pub fn name(self) -> &'static str {
        todo!("model helper")
    }

    /// Whether the function needs `field_name` (metric functions) or forbids it (count functions).
    pub fn requires_field_name(self) -> bool {
        todo!("model helper")
    }

    /// Whether auspex models this function today; the others are rejected at job creation with a
    /// clear message instead of being accepted and silently not analysed.
    pub fn is_supported(self) -> bool {
        todo!("model helper")
    }
}
