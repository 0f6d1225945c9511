//! Central intervals of a series model's predictive distribution: what model plot calls
//! `model_lower` / `model_median` / `model_upper` and a forecast `forecast_lower` / `_prediction` /
//! `_upper`.
//!
//! Owns the quantile maths only (the inverse of the tails `distribution` computes), so a value on
//! an interval's edge has exactly the two-sided tail probability the interval leaves out under the
//! same Student-t the scores use: "outside the 95% bounds" and "p < 0.05" agree. Knows nothing
//! about series, buckets or results.

/// Elasticsearch's model plot and forecasts show the 95% interval (ml-cpp's default bounds
/// percentile); auspex does the same.
pub const CONFIDENCE: f64 = 0.95;

/// A central interval of the value expected at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub median: f64,
    pub upper: f64,
}

impl Interval {
    /// `median ± t_{(1+confidence)/2, nu} * sd`.
    pub fn student_t(median: f64, sd: f64, nu: f64, confidence: f64) -> Interval {
        let half = student_t_quantile((1.0 + confidence) / 2.0, nu) * sd;
        Interval {
            lower: median - half,
            median,
            upper: median + half,
        }
    }

    /// The interval cut to `[floor, +inf)` (counts cannot be negative).
    pub fn floored(self, floor: f64) -> Interval {
        Interval {
            lower: self.lower.max(floor),
            median: self.median.max(floor),
            upper: self.upper.max(floor),
        }
    }

    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }

    pub fn is_finite(&self) -> bool {
        self.lower.is_finite() && self.median.is_finite() && self.upper.is_finite()
    }
}

/// The standard normal quantile: `z` with `P(Z <= z) = p`, for `p` in (0, 1) (Acklam's rational
/// approximation, relative error below 1.2e-9; one Halley step would add nothing a plot can show).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if p < LOW {
        tail(p)
    } else if p > 1.0 - LOW {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile with `nu` degrees of freedom: the exact inverse of Wallace's
/// transformation that `distribution::student_t_upper_tail` uses, so the two agree.
pub fn student_t_quantile(p: f64, nu: f64) -> f64 {
    let nu = nu.max(1.0);
    let z = normal_quantile(p);
    let c = (8.0 * nu + 1.0) / (8.0 * nu + 3.0);
    let w = z / c;
    let t = (nu * (w * w / nu).exp_m1()).sqrt();
    if z < 0.0 {
        -t
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::distribution::{normal_upper_tail, student_t_upper_tail};

    #[test]
    fn normal_quantile_inverts_the_normal_tail() {
        for p in [1e-10, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999_999] {
            let z = normal_quantile(p);
            let back = 1.0 - normal_upper_tail(z);
            assert!((back - p).abs() <= 1e-6 * p.max(1e-3), "{p}: {z} -> {back}");
        }
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert_eq!(normal_quantile(0.5), 0.0);
    }

    #[test]
    fn t_quantile_inverts_the_tail_the_scores_use() {
        for nu in [1.0, 3.0, 10.0, 199.0] {
            for p in [0.6, 0.9, 0.975, 0.999] {
                let t = student_t_quantile(p, nu);
                let back = student_t_upper_tail(t, nu);
                assert!(
                    (back - (1.0 - p)).abs() < 1e-6,
                    "nu {nu} p {p}: {t} -> {back}"
                );
                assert!((student_t_quantile(1.0 - p, nu) + t).abs() < 1e-9);
            }
        }
        // Heavier tails for few degrees of freedom; the normal's 1.96 for many.
        assert!(student_t_quantile(0.975, 3.0) > 2.5);
        assert!((student_t_quantile(0.975, 1e6) - 1.96).abs() < 0.01);
    }

    #[test]
    fn intervals_are_centred_and_floored() {
        let i = Interval::student_t(10.0, 2.0, 1e6, CONFIDENCE);
        assert!((i.median - 10.0).abs() < 1e-12);
        assert!((i.upper - 10.0 - 3.92).abs() < 0.02 && (10.0 - i.lower - 3.92).abs() < 0.02);
        assert!(i.contains(12.0) && !i.contains(14.0));
        let floored = Interval::student_t(1.0, 2.0, 1e6, CONFIDENCE).floored(0.0);
        assert_eq!(floored.lower, 0.0);
    }
}
