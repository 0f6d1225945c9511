//! Custom rules as the model applies them: per detector, the job's `custom_rules` with their
//! scope filters already resolved to item lists, so evaluating a rule needs nothing outside the
//! model (and a replay applies exactly the rules the original run did).
//!
//! Semantics (ml-cpp's detection rules): a rule applies to one series in one bucket when every
//! scope field's value passes its filter (`include`: the value is in the filter, `exclude`: it is
//! not) and every condition holds (they are ANDed). `skip_result` then drops the series' record
//! and its share of the bucket score; `skip_model_update` keeps the series' model from learning
//! the bucket. Conditions compare the series' actual value (the feature the record would report),
//! its typical value, `|actual - typical|`, or the bucket start time in epoch seconds.
//!
//! Owns only evaluation. The job layer parses and validates `custom_rules` (ES messages) and
//! resolves filters (`job::rules`); the pipeline puts new rules in force from the input log.

use serde::{Deserialize, Serialize};

use crate::model::detector_model::{DetectorModel, Observation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppliesTo {
    Actual,
    Typical,
    DiffFromTypical,
    Time,
}

impl AppliesTo {
    pub fn parse(text: &str) -> Option<AppliesTo> {
        Some(match text {
            "actual" => AppliesTo::Actual,
            "typical" => AppliesTo::Typical,
            "diff_from_typical" => AppliesTo::DiffFromTypical,
            "time" => AppliesTo::Time,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Operator {
    pub fn parse(text: &str) -> Option<Operator> {
        Some(match text {
            "gt" => Operator::Gt,
            "gte" => Operator::Gte,
            "lt" => Operator::Lt,
            "lte" => Operator::Lte,
            _ => return None,
        })
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Operator::Gt => left > right,
            Operator::Gte => left >= right,
            Operator::Lt => left < right,
            Operator::Lte => left <= right,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleCondition {
    pub applies_to: AppliesTo,
    pub operator: Operator,
    pub value: f64,
}

/// One scope entry: a by/over/partition field and the items of its filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeField {
    pub field: String,
    pub include: bool,
    /// The filter's items; `*` at either end is a wildcard, as in Elasticsearch filters.
    pub items: Vec<String>,
}

impl ScopeField {
    fn contains(&self, value: &str) -> bool {
        self.items.iter().any(|item| item_matches(item, value))
    }
}

fn item_matches(item: &str, value: &str) -> bool {
    let (leading, trailing) = (item.starts_with('*'), item.len() > 1 && item.ends_with('*'));
    match (leading, trailing) {
        (true, true) => value.contains(&item[1..item.len() - 1]),
        (true, false) => value.ends_with(&item[1..]),
        (false, true) => value.starts_with(&item[..item.len() - 1]),
        (false, false) => item == value,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRule {
    pub skip_result: bool,
    pub skip_model_update: bool,
    pub scope: Vec<ScopeField>,
    pub conditions: Vec<RuleCondition>,
}

/// What one series is judged on: its field values and its numbers in the bucket.
#[derive(Debug, Clone, Copy)]
pub struct RuleSubject<'a> {
    /// (field name, value) of the series' partition and by fields, where configured.
    pub fields: [Option<(&'a str, &'a str)>; 2],
    pub actual: f64,
    pub typical: f64,
    pub time_secs: i64,
}

impl DetectionRule {
    fn applies(&self, subject: &RuleSubject) -> bool {
        let scope_ok = self.scope.iter().all(|scope| {
            let value = subject
                .fields
                .iter()
                .flatten()
                .find(|(name, _)| *name == scope.field)
                .map(|(_, value)| *value);
            // A field the series has no value for is in no filter.
            let contained = value.is_some_and(|v| scope.contains(v));
            contained == scope.include
        });
        scope_ok
            && self.conditions.iter().all(|c| {
                let left = match c.applies_to {
                    AppliesTo::Actual => subject.actual,
                    AppliesTo::Typical => subject.typical,
                    AppliesTo::DiffFromTypical => (subject.actual - subject.typical).abs(),
                    AppliesTo::Time => subject.time_secs as f64,
                };
                // A missing value (NaN) satisfies no condition.
                !left.is_nan() && c.operator.holds(left, c.value)
            })
    }
}

/// The actions the rules take on one series in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleActions {
    pub skip_result: bool,
    pub skip_model_update: bool,
}

/// The rules of every detector, by detector position. Empty when the job has none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobRules {
    pub detectors: Vec<Vec<DetectionRule>>,
}

impl JobRules {
    pub fn is_empty(&self) -> bool {
        self.detectors.iter().all(Vec::is_empty)
    }

    /// The combined actions of detector `d`'s rules that apply to `subject`.
    pub fn actions(&self, d: usize, subject: &RuleSubject) -> RuleActions {
        let mut actions = RuleActions::default();
        for rule in self.detectors.get(d).into_iter().flatten() {
            let adds = (rule.skip_result && !actions.skip_result)
                || (rule.skip_model_update && !actions.skip_model_update);
            if adds && rule.applies(subject) {
                actions.skip_result |= rule.skip_result;
                actions.skip_model_update |= rule.skip_model_update;
            }
        }
        actions
    }

    /// Splits detector `d`'s observations of a bucket into those that may give results and those
    /// the models learn from. A series whose result is skipped is still learnt from (unless its
    /// update is skipped too), but marked unscored so the score normalizer does not see it.
    pub(crate) fn screen(
        &self,
        d: usize,
        detector: &DetectorModel,
        observations: Vec<Observation>,
        bucket_start: i64,
    ) -> (Vec<Observation>, Vec<Observation>) {
        if self.detectors.get(d).is_none_or(Vec::is_empty) {
            return (observations.clone(), observations);
        }
        let mut results = Vec::with_capacity(observations.len());
        let mut learnt = Vec::with_capacity(observations.len());
        for mut o in observations {
            let subject = detector.rule_subject(&o, bucket_start);
            let actions = self.actions(d, &subject);
            if !actions.skip_result {
                results.push(o);
            } else {
                o.assessment.scored = false;
            }
            if !actions.skip_model_update {
                learnt.push(o);
            }
        }
        (results, learnt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(by: &'a str, actual: f64, typical: f64) -> RuleSubject<'a> {
        RuleSubject {
            fields: [None, Some(("airline", by))],
            actual,
            typical,
            time_secs: 1_000,
        }
    }

    fn condition(applies_to: AppliesTo, operator: Operator, value: f64) -> RuleCondition {
        RuleCondition {
            applies_to,
            operator,
            value,
        }
    }

    fn rule(scope: Vec<ScopeField>, conditions: Vec<RuleCondition>) -> JobRules {
        JobRules {
            detectors: vec![vec![DetectionRule {
                skip_result: true,
                skip_model_update: false,
                scope,
                conditions,
            }]],
        }
    }

    fn skips(rules: &JobRules, subject: &RuleSubject) -> bool {
        rules.actions(0, subject).skip_result
    }

    #[test]
    fn conditions_are_anded_and_compare_each_quantity() {
        let rules = rule(
            vec![],
            vec![
                condition(AppliesTo::Actual, Operator::Gt, 10.0),
                condition(AppliesTo::Actual, Operator::Lte, 20.0),
            ],
        );
        assert!(skips(&rules, &subject("AAL", 15.0, 0.0)));
        assert!(skips(&rules, &subject("AAL", 20.0, 0.0)));
        assert!(!skips(&rules, &subject("AAL", 10.0, 0.0)));
        assert!(!skips(&rules, &subject("AAL", 21.0, 0.0)));
        assert!(!skips(&rules, &subject("AAL", f64::NAN, 0.0)));

        let diff = rule(
            vec![],
            vec![condition(AppliesTo::DiffFromTypical, Operator::Lt, 5.0)],
        );
        assert!(skips(&diff, &subject("AAL", 98.0, 100.0)));
        assert!(skips(&diff, &subject("AAL", 102.0, 100.0)));
        assert!(!skips(&diff, &subject("AAL", 90.0, 100.0)));

        let typical = rule(
            vec![],
            vec![condition(AppliesTo::Typical, Operator::Gte, 100.0)],
        );
        assert!(skips(&typical, &subject("AAL", 0.0, 100.0)));
        assert!(!skips(&typical, &subject("AAL", 0.0, 99.0)));

        let time = rule(
            vec![],
            vec![condition(AppliesTo::Time, Operator::Lt, 1_000.0)],
        );
        assert!(!skips(&time, &subject("AAL", 0.0, 0.0)));
    }

    #[test]
    fn scope_includes_or_excludes_filter_items_with_wildcards() {
        let scope = |include| ScopeField {
            field: "airline".into(),
            include,
            items: vec!["AAL".into(), "J*".into(), "*X".into(), "*mid*".into()],
        };
        let include = rule(vec![scope(true)], vec![]);
        let exclude = rule(vec![scope(false)], vec![]);
        for (value, inside) in [
            ("AAL", true),
            ("JBU", true),
            ("ABX", true),
            ("xmidy", true),
            ("AA", false),
            ("UAL", false),
        ] {
            assert_eq!(
                skips(&include, &subject(value, 0.0, 0.0)),
                inside,
                "{value}"
            );
            assert_eq!(
                skips(&exclude, &subject(value, 0.0, 0.0)),
                !inside,
                "{value}"
            );
        }
        // A field the series does not have is in no filter.
        let other = rule(
            vec![ScopeField {
                field: "host".into(),
                include: true,
                items: vec!["*".into()],
            }],
            vec![],
        );
        assert!(!skips(&other, &subject("AAL", 0.0, 0.0)));
    }

    #[test]
    fn actions_of_several_rules_combine() {
        let rules = JobRules {
            detectors: vec![vec![
                DetectionRule {
                    skip_result: true,
                    skip_model_update: false,
                    scope: vec![],
                    conditions: vec![condition(AppliesTo::Actual, Operator::Gt, 5.0)],
                },
                DetectionRule {
                    skip_result: false,
                    skip_model_update: true,
                    scope: vec![],
                    conditions: vec![condition(AppliesTo::Actual, Operator::Gt, 50.0)],
                },
            ]],
        };
        assert_eq!(
            rules.actions(0, &subject("a", 10.0, 0.0)),
            RuleActions {
                skip_result: true,
                skip_model_update: false
            }
        );
        assert_eq!(
            rules.actions(0, &subject("a", 60.0, 0.0)),
            RuleActions {
                skip_result: true,
                skip_model_update: true
            }
        );
        assert_eq!(
            rules.actions(1, &subject("a", 60.0, 0.0)),
            RuleActions::default()
        );
    }
}

#[cfg(test)]
mod behaviour_tests;
