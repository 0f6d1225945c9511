//! A small, decaying mixture of clusters over one of three spaces: the real line (population
//! features), a circle (time of day or week) and the sphere (latitude/longitude).
//!
//! Owns "how unusual is this point given the points learnt so far", without any notion of time:
//! the values it models (a member's bucket value among a population, the hour something happens,
//! where it happens) are not expected to follow a trend or a seasonal pattern, and several modes
//! are normal (two office hours, two cities, two kinds of client). Each cluster is a weight, a
//! centre and a spread; a point joins its nearest cluster or starts a new one, and the oldest,
//! lightest clusters are merged away beyond [`MAX_CLUSTERS`]. The probability of a point is the
//! mixture's tail mass beyond it: per cluster, the Student-t chance of being at least that far
//! from the centre (one-dimensional on the line and circle, radial in two dimensions on the
//! sphere). Deterministic; no hash maps; serialized with the model.

use serde::{Deserialize, Serialize};

use crate::model::distribution::{clamp_probability, student_t_upper_tail};
use crate::model::function::Tail;
use crate::model::interval::Interval;

/// Clusters kept per mixture.
const MAX_CLUSTERS: usize = 8;
/// A point further than this many (floored) standard deviations from every cluster starts one.
const JOIN_SIGMAS: f64 = 3.5;
/// Weight kept per update: old points fade with a memory of about a thousand points.
const DECAY: f64 = 0.999;
/// Points a mixture must have learnt before it scores anything.
pub const MIXTURE_WARMUP: f64 = 20.0;
/// Earth's mean radius, km.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// Where the points live and how far apart two of them are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// Real numbers; `count` features get a Poisson-like spread floor.
    Line { count: bool },
    /// Seconds on a circle of this period (86400 for time of day, 604800 for time of week).
    Circle { period: f64 },
    /// (latitude, longitude) in degrees; distances in km along the surface.
    Sphere,
}

impl Space {
    fn dims(self) -> f64 {
        match self {
            Space::Sphere => 2.0,
            _ => 1.0,
        }
    }

    /// Signed offset of `x` from `centre` in the space's unit (along the line or circle; the
    /// great-circle distance on the sphere, always positive).
    fn offset(self, centre: [f64; 2], x: [f64; 2]) -> f64 {
        match self {
            Space::Line { .. } => x[0] - centre[0],
            Space::Circle { period } => {
                let d = (x[0] - centre[0]).rem_euclid(period);
                if d > period / 2.0 {
                    d - period
                } else {
                    d
                }
            }
            Space::Sphere => great_circle_km(centre, x),
        }
    }

    /// `centre` moved a `fraction` of the way to `x`.
    fn toward(self, centre: [f64; 2], x: [f64; 2], fraction: f64) -> [f64; 2] {
        match self {
            Space::Line { .. } => [centre[0] + fraction * (x[0] - centre[0]), 0.0],
            Space::Circle { period } => [
                (centre[0] + fraction * self.offset(centre, x)).rem_euclid(period),
                0.0,
            ],
            Space::Sphere => {
                let mut dlon = x[1] - centre[1];
                if dlon > 180.0 {
                    dlon -= 360.0;
                } else if dlon < -180.0 {
                    dlon += 360.0;
                }
                let lon = centre[1] + fraction * dlon;
                let lon = (lon + 180.0).rem_euclid(360.0) - 180.0;
                [centre[0] + fraction * (x[0] - centre[0]), lon]
            }
        }
    }

    /// The least spread a cluster at `centre` may have: the precision of the data, so points that
    /// always repeat exactly do not make the next slightly different one a catastrophe.
    fn spread_floor(self, centre: [f64; 2]) -> f64 {
        match self {
            Space::Line { count } => {
                let relative = 0.05 * centre[0].abs();
                let poisson = if count { centre[0].abs().sqrt() } else { 0.0 };
                relative.max(poisson).max(1e-9)
            }
            // A quarter of an hour on the clock.
            Space::Circle { .. } => 900.0,
            // A few km: a city, not a building.
            Space::Sphere => 5.0,
        }
    }
}

/// Great-circle distance (haversine) between two (lat, lon) points in degrees, in km.
pub fn great_circle_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (lat1, lat2) = (a[0].to_radians(), b[0].to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b[1] - a[1]).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cluster {
    weight: f64,
    /// Points that joined it (undecayed): the degrees of freedom of its spread.
    points: f64,
    centre: [f64; 2],
    /// Mean squared offset per dimension.
    variance: f64,
}

/// A decaying mixture of clusters in one [`Space`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    space: Space,
    clusters: Vec<Cluster>,
    /// Points learnt (undecayed).
    learnt: f64,
}

/// How unusual a point is under a mixture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointAssessment {
    pub probability: f64,
    /// The centre of the cluster that explains the point best.
    pub typical: [f64; 2],
    pub scored: bool,
}

impl Mixture {
    pub fn new(space: Space) -> Mixture {
        Mixture {
            space,
            clusters: Vec::new(),
            learnt: 0.0,
        }
    }

    /// By length, not capacity: the figure must not change across a snapshot round trip.
    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<Mixture>() + self.clusters.len() * std::mem::size_of::<Cluster>()
    }

    fn sigma(&self, cluster: &Cluster) -> f64 {
        // Few points say little about the spread: widen it until the cluster has seen some.
        let inflation = 1.0 + 2.0 / cluster.points.max(1.0);
        (cluster.variance * inflation)
            .sqrt()
            .max(self.space.spread_floor(cluster.centre))
    }

    fn pooled_variance(&self) -> Option<f64> {
        let total: f64 = self.clusters.iter().map(|c| c.weight).sum();
        (total > 0.0).then(|| {
            self.clusters
                .iter()
                .map(|c| c.weight * c.variance)
                .sum::<f64>()
                / total
        })
    }

    /// The tail mass at `x` for one cluster: the chance of a point at least this far out.
    fn cluster_tail(&self, cluster: &Cluster, x: [f64; 2], tail: Tail) -> f64 {
        let offset = self.space.offset(cluster.centre, x);
        let sigma = self.sigma(cluster);
        let nu = cluster.points.max(2.0);
        let t = offset / sigma;
        if self.space.dims() == 2.0 {
            // Radial tail of a bivariate Student-t.
            return (1.0 + t * t / nu).powf(-nu / 2.0);
        }
        let upper = student_t_upper_tail(t, nu);
        let lower = student_t_upper_tail(-t, nu);
        match tail {
            Tail::High => upper,
            Tail::Low => lower,
            Tail::Both => (2.0 * upper.min(lower)).min(1.0),
        }
    }

    /// Scores `x` without learning it.
    pub fn probability(&self, x: [f64; 2], tail: Tail) -> PointAssessment {
        let total: f64 = self.clusters.iter().map(|c| c.weight).sum();
        let mut best: Option<(f64, [f64; 2])> = None;
        let mut mass = 0.0;
        for cluster in &self.clusters {
            let p = self.cluster_tail(cluster, x, tail);
            mass += cluster.weight / total * p;
            let standardized = (self.space.offset(cluster.centre, x) / self.sigma(cluster)).abs();
            if best.is_none_or(|(b, _)| standardized < b) {
                best = Some((standardized, cluster.centre));
            }
        }
        let typical = best.map_or(x, |(_, centre)| centre);
        let scored = self.learnt >= MIXTURE_WARMUP && total > 0.0;
        PointAssessment {
            probability: if scored { clamp_probability(mass) } else { 1.0 },
            typical,
            scored,
        }
    }

    /// The central `confidence` interval of a point on the line, from the mixture's own tails (so
    /// the bounds and the scores agree up to how the two tails of a mixture are combined); floored
    /// at 0 for counts. `None` off the line or before the mixture scores anything (model plot).
    pub fn interval(&self, confidence: f64) -> Option<Interval> {
        let Space::Line { count } = self.space else {
            return None;
        };
        let total: f64 = self.clusters.iter().map(|c| c.weight).sum();
        if self.learnt < MIXTURE_WARMUP || total <= 0.0 {
            return None;
        }
        let above = |x: f64| {
            self.clusters
                .iter()
                .map(|c| c.weight / total * self.cluster_tail(c, [x, 0.0], Tail::High))
                .sum::<f64>()
        };
        // Far enough out that a cluster's tail beyond is negligible (under 1e-4 even at 2 degrees
        // of freedom).
        let edge = |c: &Cluster| 100.0 * self.sigma(c);
        let low = self
            .clusters
            .iter()
            .map(|c| c.centre[0] - edge(c))
            .fold(f64::INFINITY, f64::min);
        let high = self
            .clusters
            .iter()
            .map(|c| c.centre[0] + edge(c))
            .fold(f64::NEG_INFINITY, f64::max);
        // The point with `mass` of the mixture above it: the upper tail falls as x grows.
        let quantile = |mass: f64| {
            let (mut lo, mut hi) = (low, high);
            // 64 halvings of 200 spreads: far below anything a plot shows.
            for _ in 0..64 {
                let mid = 0.5 * (lo + hi);
                if above(mid) > mass {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        let outside = (1.0 - confidence) / 2.0;
        let interval = Interval {
            lower: quantile(1.0 - outside),
            median: quantile(0.5),
            upper: quantile(outside),
        };
        Some(if count {
            interval.floored(0.0)
        } else {
            interval
        })
    }

    /// Learns one point of weight `weight`.
    pub fn update(&mut self, x: [f64; 2], weight: f64) {
        if weight.is_nan() || weight <= 0.0 || !x[0].is_finite() || !x[1].is_finite() {
            return;
        }
        self.learnt += 1.0;
        for cluster in &mut self.clusters {
            cluster.weight *= DECAY;
        }
        let nearest = self
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (i, (self.space.offset(c.centre, x) / self.sigma(c)).abs()))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match nearest {
            Some((i, distance)) if distance <= JOIN_SIGMAS => {
                let space = self.space;
                let cluster = &mut self.clusters[i];
                let offset = space.offset(cluster.centre, x);
                let fraction = weight / (cluster.weight + weight);
                cluster.centre = space.toward(cluster.centre, x, fraction);
                let squared = offset * offset / space.dims();
                cluster.variance += fraction * ((1.0 - fraction) * squared - cluster.variance);
                cluster.weight += weight;
                cluster.points += 1.0;
            }
            _ => {
                let variance = self.pooled_variance().unwrap_or(0.0);
                self.clusters.push(Cluster {
                    weight,
                    points: 1.0,
                    centre: x,
                    variance,
                });
                if self.clusters.len() > MAX_CLUSTERS {
                    self.merge_lightest();
                }
            }
        }
    }

    /// Folds the lightest cluster into its nearest neighbour.
    fn merge_lightest(&mut self) {
        let Some(lightest) = (0..self.clusters.len())
            .min_by(|&a, &b| self.clusters[a].weight.total_cmp(&self.clusters[b].weight))
        else {
            return;
        };
        let gone = self.clusters.remove(lightest);
        let space = self.space;
        let Some(target) = self.clusters.iter_mut().min_by(|a, b| {
            space
                .offset(a.centre, gone.centre)
                .abs()
                .total_cmp(&space.offset(b.centre, gone.centre).abs())
        }) else {
            return;
        };
        let fraction = gone.weight / (target.weight + gone.weight);
        let offset = space.offset(target.centre, gone.centre);
        target.centre = space.toward(target.centre, gone.centre, fraction);
        target.variance = (1.0 - fraction) * target.variance
            + fraction * gone.variance
            + fraction * (1.0 - fraction) * offset * offset / space.dims();
        target.weight += gone.weight;
        target.points += gone.points;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::series::tests::TestRng;

    #[test]
    fn line_interval_holds_the_central_mass() {
        let mut m = Mixture::new(Space::Line { count: false });
        assert_eq!(m.interval(0.95), None, "nothing learnt");
        let mut rng = TestRng::new(4);
        let points: Vec<f64> = (0..2000).map(|_| rng.gaussian(100.0, 10.0)).collect();
        for x in &points {
            m.update([*x, 0.0], 1.0);
        }
        let i = m.interval(0.95).unwrap();
        assert!((i.median - 100.0).abs() < 2.0, "{i:?}");
        let inside = points.iter().filter(|x| i.contains(**x)).count() as f64;
        let share = inside / points.len() as f64;
        assert!((0.93..=0.99).contains(&share), "{share} inside {i:?}");
        assert_eq!(Mixture::new(Space::Sphere).interval(0.95), None);
    }

    #[test]
    fn line_outlier_is_unlikely_and_inliers_are_not() {
        let mut m = Mixture::new(Space::Line { count: false });
        let mut rng = TestRng::new(3);
        for _ in 0..500 {
            m.update([rng.gaussian(100.0, 10.0), 0.0], 1.0);
        }
        assert!(m.probability([105.0, 0.0], Tail::Both).probability > 0.3);
        assert!(m.probability([300.0, 0.0], Tail::Both).probability < 1e-8);
        assert!(m.probability([300.0, 0.0], Tail::Low).probability > 0.5);
        let typical = m.probability([300.0, 0.0], Tail::Both).typical[0];
        assert!((typical - 100.0).abs() < 3.0, "{typical}");
    }

    #[test]
    fn two_modes_are_both_normal() {
        let mut m = Mixture::new(Space::Circle { period: 86_400.0 });
        let mut rng = TestRng::new(9);
        for i in 0..400 {
            let hour = if i % 2 == 0 { 9.0 } else { 17.0 };
            m.update([rng.gaussian(hour * 3600.0, 1200.0), 0.0], 1.0);
        }
        assert!(m.probability([9.2 * 3600.0, 0.0], Tail::Both).probability > 0.1);
        assert!(m.probability([16.8 * 3600.0, 0.0], Tail::Both).probability > 0.1);
        assert!(m.probability([3.0 * 3600.0, 0.0], Tail::Both).probability < 1e-6);
    }

    #[test]
    fn the_circle_wraps_at_midnight() {
        let mut m = Mixture::new(Space::Circle { period: 86_400.0 });
        for i in 0..100 {
            let t = if i % 2 == 0 { 86_000.0 } else { 300.0 };
            m.update([t, 0.0], 1.0);
        }
        // Both sides of midnight are one cluster a few minutes wide, not two far-apart ones.
        assert!(m.probability([0.0, 0.0], Tail::Both).probability > 0.2);
        assert!(m.probability([43_200.0, 0.0], Tail::Both).probability < 1e-6);
    }

    #[test]
    fn sphere_distances_and_far_points() {
        let paris = [48.8566, 2.3522];
        let london = [51.5074, -0.1278];
        let d = great_circle_km(paris, london);
        assert!((d - 343.5).abs() < 2.0, "{d}");
        let mut m = Mixture::new(Space::Sphere);
        let mut rng = TestRng::new(1);
        for _ in 0..200 {
            m.update(
                [rng.gaussian(paris[0], 0.05), rng.gaussian(paris[1], 0.05)],
                1.0,
            );
        }
        assert!(m.probability([48.86, 2.36], Tail::Both).probability > 0.2);
        assert!(m.probability([-33.87, 151.21], Tail::Both).probability < 1e-10);
    }

    #[test]
    fn nothing_is_scored_before_warm_up() {
        let mut m = Mixture::new(Space::Line { count: true });
        for _ in 0..5 {
            m.update([1.0, 0.0], 1.0);
        }
        let a = m.probability([1000.0, 0.0], Tail::Both);
        assert!(!a.scored);
        assert_eq!(a.probability, 1.0);
    }

    #[test]
    fn clusters_stay_bounded() {
        let mut m = Mixture::new(Space::Line { count: false });
        for i in 0..100 {
            m.update([(i * 1000) as f64, 0.0], 1.0);
        }
        assert!(m.clusters.len() <= MAX_CLUSTERS);
    }
}
