//! Found periods in a series: when `period`'s search reports a cycle the fixed candidates do not
//! hold, a seasonal predictor for it joins the competition (it is used only if `choose` finds it
//! predicts better), and it leaves again after a few of its cycles without being competitive, or
//! when the search finds a different period.
//!
//! Memory: the search's window (about half a kilobyte) is held only while a plain level is the
//! active predictor. Once a seasonal predictor explains the data there is nothing to search for,
//! and the whole state is dropped unless it tracks a found period.

use super::*;

/// A found period's predictor is retired after this many of its cycles (once ready) without
/// being competitive.
const IDLE_CYCLES: i64 = 4;

impl AdaptiveModel {
    /// The period of the found predictor, if there is one (it is always the last predictor).
    pub fn found_period(&self) -> Option<i64> {
        let found = self.periods.as_ref().is_some_and(|p| p.found);
        found.then(|| self.predictors.last().map_or(0, Predictor::period))
    }

    /// Runs the search while a plain level is active, adopts what it finds, and retires a found
    /// predictor that has stopped helping. Called after each learnt bucket.
    pub(super) fn track_periods(&mut self, time: i64, value: f64) {
        let searching = self.active().period() == 0;
        if self.periods.is_none() && searching {
            // Only dropped while a seasonal predictor was active, so one exists to read the
            // bucket span from.
            self.periods = Some(Box::new(Periods::new(self.bucket_span())));
        }
        let Some(periods) = self.periods.as_mut() else {
            return;
        };
        let found = if searching {
            periods.search.observe(time, value)
        } else {
            periods.search.clear();
            None
        };
        if let Some(found) = found {
            self.adopt(found.period);
        }
        self.retire_idle(time);
        if !searching && self.found_period().is_none() {
            self.periods = None;
        }
    }

    /// Adds a predictor for `period` seconds unless a fixed one holds it (equal to or a divisor
    /// of its period: a short cycle next to the daily profile fits what the profile already
    /// holds, and chases noise) or it is the found period
    /// or a multiple of it (the search sees multiples once its window is too coarse for the period
    /// itself); replaces a different found period.
    fn adopt(&mut self, period: i64) {
        let found = self.found_period();
        let fixed = &self.predictors[..self.predictors.len() - usize::from(found.is_some())];
        let holds = |p: &Predictor| p.period() > 0 && p.period() % period == 0;
        if period <= 0 || fixed.iter().any(holds) {
            return;
        }
        if let Some(current) = found {
            if current > 0 && period % current == 0 {
                return;
            }
            self.remove_found();
            if self.found_period().is_some() {
                return;
            }
        }
        let Some(periods) = self.periods.as_mut() else {
            return;
        };
        let span = periods.search.span();
        periods.found = true;
        periods.idle = 0;
        // At least a cycle (see `SEASONAL_LEVEL_CYCLES`), and no faster than the slow plain level:
        // a short cycle's predictor would otherwise follow every level shift within an hour or
        // two and take the anomaly for the new normal.
        let memory = (SEASONAL_LEVEL_CYCLES * (period / span) as f64).max(SLOW_LEVEL);
        self.predictors
            .push(Predictor::seasonal(period, span, memory));
    }

    /// Counts buckets in which the found predictor is ready but neither active nor clearly better
    /// than a plain level, and removes it after `IDLE_CYCLES` of its cycles of them.
    fn retire_idle(&mut self, time: i64) {
        let Some(period) = self.found_period() else {
            return;
        };
        let last = self.predictors.len() - 1;
        let predictor = &self.predictors[last];
        // Judged on recent error: the long-memory one still remembers the cycle long after it
        // has stopped.
        let competitive = last == usize::from(self.active_index)
            || predictor.error() < SEASONAL_GAIN * self.best_plain(Predictor::error);
        let ready = predictor.ready(time);
        let span = predictor.span().max(1);
        let Some(periods) = self.periods.as_mut() else {
            return;
        };
        if competitive {
            periods.idle = 0;
        } else if ready {
            periods.idle = periods.idle.saturating_add(1);
        }
        if i64::from(periods.idle) > IDLE_CYCLES * (period / span) {
            self.remove_found();
        }
    }

    /// Drops the found predictor (never the active one: the active index stays valid).
    fn remove_found(&mut self) {
        let last = self.predictors.len() - 1;
        if let Some(periods) = self.periods.as_mut().filter(|p| p.found) {
            if last != usize::from(self.active_index) {
                self.predictors.pop();
                periods.found = false;
                periods.idle = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::TestRng;
    use super::*;

    const SPAN: i64 = 300;
    const CYCLE: i64 = 5 * HOUR;

    fn cycle(period: i64) -> impl Fn(i64) -> f64 {
        move |t| {
            let phase = t.rem_euclid(period) as f64 / period as f64;
            100.0 + 30.0 * (std::f64::consts::TAU * phase).sin()
        }
    }

    /// Learns `value(t)` plus noise from `from` to `to` and returns the least probability scored.
    fn run(
        model: &mut AdaptiveModel,
        rng: &mut TestRng,
        (from, to): (i64, i64),
        value: impl Fn(i64) -> f64,
    ) -> f64 {
        let mut least = 1.0f64;
        for t in (from..to).step_by(SPAN as usize) {
            let v = value(t) + rng.gaussian(0.0, 2.0);
            least = least.min(model.probability(t, v, Tail::Both).probability);
            model.update(t, v, 1.0);
        }
        least
    }

    #[test]
    fn a_five_hour_cycle_is_found_learnt_and_its_break_flagged() {
        let mut rng = TestRng::new(41);
        let mut model = AdaptiveModel::new(FeatureKind::Continuous, SPAN);
        let learnt = 12 * CYCLE;
        run(&mut model, &mut rng, (0, learnt), cycle(CYCLE));
        assert_eq!(model.found_period(), Some(CYCLE));
        assert_eq!(model.active().period(), CYCLE);
        // Once learnt, the cycle's peaks and troughs are usual.
        let clean = run(
            &mut model,
            &mut rng,
            (learnt, learnt + 6 * CYCLE),
            cycle(CYCLE),
        );
        assert!(clean > 1e-6, "clean cycles scored p = {clean:e}");
        // A cycle that stays at its mean instead of peaking is not.
        let start = learnt + 6 * CYCLE;
        let broken = run(&mut model, &mut rng, (start, start + CYCLE / 2), |_| 100.0);
        assert!(broken < 1e-8, "the broken cycle scored p = {broken:e}");
    }

    #[test]
    fn a_found_period_is_replaced_then_retired_as_the_data_changes() {
        let mut rng = TestRng::new(43);
        let mut model = AdaptiveModel::new(FeatureKind::Continuous, SPAN);
        let mut t = 12 * CYCLE;
        run(&mut model, &mut rng, (0, t), cycle(CYCLE));
        assert_eq!(model.found_period(), Some(CYCLE));
        // The cycle changes to nine hours: the five-hour predictor loses, the search resumes and
        // finds the new one.
        let nine = 9 * HOUR;
        run(&mut model, &mut rng, (t, t + 12 * nine), cycle(nine));
        t += 12 * nine;
        assert_eq!(model.found_period(), Some(nine));
        // Then the cycle stops: once its profile has faded and it no longer predicts better than a
        // plain level, a few cycles later the idle predictor is gone.
        run(&mut model, &mut rng, (t, t + 24 * nine), |_| 100.0);
        assert_eq!(model.found_period(), None);
    }

    #[test]
    fn daily_data_holds_no_search_state_and_no_found_period() {
        let mut rng = TestRng::new(47);
        let mut model = AdaptiveModel::new(FeatureKind::Continuous, SPAN);
        let start = model.approximate_bytes();
        run(&mut model, &mut rng, (0, 10 * DAY), cycle(DAY));
        assert_ne!(model.active().period(), 0);
        assert!(model.periods.is_none(), "{:?}", model.periods);
        assert_eq!(model.found_period(), None);
        assert!(start > std::mem::size_of::<AdaptiveModel>());
    }
}
