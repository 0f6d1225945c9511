//! Tail probabilities the series models need: normal, Student-t, Poisson and negative binomial.
//!
//! Owns only numerics; knows nothing about series, buckets or scores. Everything here is pure,
//! allocation-free and cheap enough to call once per series per bucket (the t tail is a closed-form
//! normal approximation, not an incomplete-beta evaluation). Results are never NaN for finite
//! input; callers clamp to `[MIN_PROBABILITY, 1]`.

/// The smallest probability ever reported (Elasticsearch's floor too).
pub const MIN_PROBABILITY: f64 = 1e-308;

/// Clamps a probability into `[MIN_PROBABILITY, 1]`; NaN becomes 1 (no evidence of anything).
pub fn clamp_probability(p: f64) -> f64 {
    if p.is_nan() {
        1.0
    } else {
        p.clamp(MIN_PROBABILITY, 1.0)
    }
}

/// Complementary error function, fractional error below 1.2e-7 everywhere, including the far
/// tail (the Chebyshev-fitted form, which keeps `exp(-x^2)` explicit so tiny tails stay relative).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

/// P(Z >= z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(T >= t) for Student's t with `nu` degrees of freedom (nu >= 1, may be fractional).
///
/// Wallace's transformation to a normal deviate: accurate to a few percent in relative terms
/// in both the body and the far tail for nu >= 3, which is all a score needs, and ~20x cheaper than
/// the incomplete beta function.
pub fn student_t_upper_tail(t: f64, nu: f64) -> f64 {
    if t.is_nan() {
        return 1.0;
    }
    let nu = nu.max(1.0);
    let z = (8.0 * nu + 1.0) / (8.0 * nu + 3.0) * (nu * (t * t / nu).ln_1p()).sqrt();
    if t >= 0.0 {
        normal_upper_tail(z)
    } else {
        1.0 - normal_upper_tail(z)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the small-argument case accurate.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// A count distribution with a given mean and variance: Poisson when the variance does not exceed
/// the mean, otherwise the negative binomial with that mean and variance (over-dispersed counts).
#[derive(Debug, Clone, Copy)]
pub struct CountDistribution {
    mean: f64,
    /// Negative binomial size `r`; infinite means Poisson.
    size: f64,
}

/// Summation never runs longer than this; past it the caller's continuous answer stands.
const MAX_TERMS: usize = 20_000;

impl CountDistribution {
    pub fn new(mean: f64, variance: f64) -> CountDistribution {
        let mean = mean.max(1e-9);
        let size = if variance > mean * 1.0001 {
            mean * mean / (variance - mean)
        } else {
            f64::INFINITY
        };
        CountDistribution { mean, size }
    }

    fn ln_pmf(&self, k: f64) -> f64 {
        if self.size.is_infinite() {
            k * self.mean.ln() - self.mean - ln_gamma(k + 1.0)
        } else {
            let r = self.size;
            let total = r + self.mean;
            ln_gamma(k + r) - ln_gamma(r) - ln_gamma(k + 1.0)
                + r * (r / total).ln()
                + k * (self.mean / total).ln()
        }
    }

    /// pmf(k + 1) / pmf(k).
    fn ratio_up(&self, k: f64) -> f64 {
        if self.size.is_infinite() {
            self.mean / (k + 1.0)
        } else {
            (k + self.size) / (k + 1.0) * (self.mean / (self.size + self.mean))
        }
    }

    /// Sums pmf from `k` outwards (up or down) until the terms stop mattering.
    fn sum_from(&self, k: f64, upwards: bool) -> Option<f64> {
        let mut term = self.ln_pmf(k).exp();
        let mut sum = 0.0;
        let mut x = k;
        for _ in 0..MAX_TERMS {
            sum += term;
            if upwards {
                term *= self.ratio_up(x);
                x += 1.0;
            } else {
                if x < 0.5 {
                    return Some(sum);
                }
                term /= self.ratio_up(x - 1.0);
                x -= 1.0;
            }
            if term <= sum * 1e-17 || term == 0.0 {
                return Some(sum);
            }
        }
        None
    }

    /// P(X >= k), or `None` when the sum would be too long to evaluate (huge counts).
    pub fn upper_tail(&self, k: f64) -> Option<f64> {
        let k = k.round().max(0.0);
        if k <= 0.0 {
            return Some(1.0);
        }
        if k <= self.mean {
            // Below the mean the upper tail is the larger part: sum the short side.
            return self.sum_from(k - 1.0, false).map(|lower| 1.0 - lower);
        }
        self.sum_from(k, true)
    }

    /// P(X <= k), or `None` when the sum would be too long to evaluate.
    pub fn lower_tail(&self, k: f64) -> Option<f64> {
        let k = k.round().max(0.0);
        if k >= self.mean {
            return self.sum_from(k + 1.0, true).map(|upper| 1.0 - upper);
        }
        self.sum_from(k, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn normal_tail_matches_known_values() {
        assert!(close(normal_upper_tail(0.0), 0.5, 1e-6));
        assert!(close(normal_upper_tail(1.959_964), 0.025, 1e-5));
        assert!(close(normal_upper_tail(5.0), 2.866_515_7e-7, 1e-5));
        // Far tail stays relative: Q(10) = 7.6199e-24.
        assert!(close(normal_upper_tail(10.0), 7.619_853e-24, 1e-4));
        assert!(close(normal_upper_tail(-3.0), 0.998_650_1, 1e-6));
    }

    #[test]
    fn student_t_tail_is_close_to_exact() {
        // Exact values from the t distribution tables.
        assert!(close(
            2.0 * student_t_upper_tail(3.0, 10.0),
            0.013_343,
            0.02
        ));
        assert!(close(2.0 * student_t_upper_tail(2.228, 10.0), 0.05, 0.02));
        assert!(close(2.0 * student_t_upper_tail(10.0, 5.0), 1.7e-4, 0.25));
        assert!(close(
            student_t_upper_tail(1.0, 1e9),
            normal_upper_tail(1.0),
            1e-4
        ));
        assert!(close(
            student_t_upper_tail(-2.0, 30.0),
            1.0 - student_t_upper_tail(2.0, 30.0),
            1e-12
        ));
        assert!(student_t_upper_tail(1e300, 3.0) >= 0.0);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(close(ln_gamma(1.0).exp(), 1.0, 1e-12) || ln_gamma(1.0).abs() < 1e-12);
        assert!(close(ln_gamma(5.0).exp(), 24.0, 1e-12));
        assert!(close(
            ln_gamma(0.5).exp(),
            std::f64::consts::PI.sqrt(),
            1e-12
        ));
        assert!(close(ln_gamma(101.0), 363.739_375_555_563_5, 1e-12));
    }

    #[test]
    fn poisson_tails() {
        let poisson = CountDistribution::new(0.5, 0.5);
        // P(X >= 5 | 0.5) = 1.7212e-4.
        assert!(close(poisson.upper_tail(5.0).unwrap(), 1.721_156e-4, 1e-4));
        assert!(close(
            poisson.lower_tail(0.0).unwrap(),
            (-0.5f64).exp(),
            1e-9
        ));
        let poisson = CountDistribution::new(10.0, 10.0);
        // P(X <= 2 | 10) = 0.0027694.
        assert!(close(poisson.lower_tail(2.0).unwrap(), 2.769_4e-3, 1e-3));
        assert!(close(poisson.upper_tail(0.0).unwrap(), 1.0, 1e-12));
        assert!(poisson.upper_tail(100.0).unwrap() < 1e-50);
    }

    #[test]
    fn negative_binomial_is_wider_than_poisson() {
        let poisson = CountDistribution::new(10.0, 10.0);
        let overdispersed = CountDistribution::new(10.0, 40.0);
        assert!(overdispersed.upper_tail(25.0).unwrap() > 10.0 * poisson.upper_tail(25.0).unwrap());
        let total =
            overdispersed.lower_tail(9.0).unwrap() + overdispersed.upper_tail(10.0).unwrap();
        assert!(close(total, 1.0, 1e-9));
    }
}
