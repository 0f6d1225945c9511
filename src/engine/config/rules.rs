//! A detector's `custom_rules` as Elasticsearch parses and checks them: actions (default
//! `skip_result`), `scope` (`{field: {filter_id, filter_type}}`, `filter_type` default `include`)
//! and `conditions` (`applies_to`, `operator`, `value`), with ES's messages, and the normalized
//! form ES renders back. The scope names filters; resolving them to items is `job::rules`'s.

use serde_json::{json, Map, Value};

use crate::engine::JobError;
use crate::model::function::DetectorFunction;
use crate::model::rules::{AppliesTo, DetectionRule, Operator, RuleCondition, ScopeField};
use crate::model::Detector;

/// Actions in the order Elasticsearch renders its enum set.
const ACTIONS: &[&str] = &["skip_result", "skip_model_update"];

/// Functions whose rules may only have conditions on time (ES `FUNCTIONS_WITHOUT_RULE_CONDITION_SUPPORT`).
const NO_VALUE_CONDITIONS: &[DetectorFunction] = &[
    DetectorFunction::Metric,
    DetectorFunction::Rare,
    DetectorFunction::FreqRare,
];

fn parse_error(field: &str) -> JobError {
    JobError::Parse(format!("[detection_rule] failed to parse field [{field}]"))
}

fn bad_rule(reason: String) -> JobError {
    JobError::InvalidArgument(format!("Invalid detector rule: {reason}"))
}

/// One rule parsed: the model's form with empty filter items (filled in by `job::rules`), and the
/// filter id of each scope field.
pub struct ParsedRule {
    pub rule: DetectionRule,
    pub filter_ids: Vec<String>,
}

/// Parses a detector's rules, checks them against it, and rewrites `custom_rules` in the form ES
/// renders (actions listed, filter types filled in).
pub(super) fn check_custom_rules(detector: &mut Detector) -> Result<(), JobError> {
    let Some(value) = detector.custom_rules.take() else {
        return Ok(());
    };
    let parsed = parse_rules(&value)?;
    let function = DetectorFunction::parse(&detector.function);
    let mut scope_fields: Vec<&str> = [
        &detector.by_field_name,
        &detector.over_field_name,
        &detector.partition_field_name,
    ]
    .into_iter()
    .filter_map(|f| f.as_deref())
    .collect();
    scope_fields.sort_unstable();
    for ParsedRule { rule, .. } in &parsed {
        // ES looks at the first condition only.
        let on_value = rule
            .conditions
            .first()
            .is_some_and(|c| c.applies_to != AppliesTo::Time);
        if on_value && function.is_some_and(|f| NO_VALUE_CONDITIONS.contains(&f)) {
            return Err(bad_rule(format!(
                "function {} only supports conditions that apply to time",
                detector.function
            )));
        }
        for scope in &rule.scope {
            if scope_fields.is_empty() {
                return Err(bad_rule(format!(
                    "scope field '{}' is invalid; detector has no available fields for scoping",
                    scope.field
                )));
            }
            if !scope_fields.contains(&scope.field.as_str()) {
                return Err(bad_rule(format!(
                    "scope field '{}' is invalid; select from [{}]",
                    scope.field,
                    scope_fields.join(", ")
                )));
            }
        }
    }
    detector.custom_rules = Some(Value::Array(parsed.iter().map(render).collect()));
    Ok(())
}

/// Parses `custom_rules` (already checked when the job was stored).
pub fn parse_rules(value: &Value) -> Result<Vec<ParsedRule>, JobError> {
    let rules = value
        .as_array()
        .ok_or_else(|| JobError::Parse("[detector] failed to parse field [custom_rules]".into()))?;
    rules.iter().map(parse_rule).collect()
}

fn parse_rule(value: &Value) -> Result<ParsedRule, JobError> {
    let map = value
        .as_object()
        .ok_or_else(|| JobError::Parse("[detector] failed to parse field [custom_rules]".into()))?;
    if let Some(field) = map
        .keys()
        .find(|k| !["actions", "scope", "conditions", "params"].contains(&k.as_str()))
    {
        return Err(JobError::Parse(format!(
            "[detection_rule] unknown field [{field}]"
        )));
    }
    let mut rule = DetectionRule {
        skip_result: true,
        skip_model_update: false,
        scope: Vec::new(),
        conditions: Vec::new(),
    };
    if let Some(actions) = map.get("actions") {
        let actions = actions.as_array().ok_or_else(|| parse_error("actions"))?;
        rule.skip_result = false;
        for action in actions {
            match action.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("skip_result") => rule.skip_result = true,
                Some("skip_model_update") => rule.skip_model_update = true,
                Some("force_time_shift") => {
                    return Err(JobError::InvalidArgument(
                        "The rule action [force_time_shift] is not supported by auspex".into(),
                    ))
                }
                _ => return Err(parse_error("actions")),
            }
        }
    }
    let mut filter_ids = Vec::new();
    if let Some(scope) = map.get("scope") {
        let scope = scope.as_object().ok_or_else(|| parse_error("scope"))?;
        for (field, filter) in scope {
            let filter_id = filter["filter_id"]
                .as_str()
                .ok_or_else(|| parse_error("scope"))?;
            let include = match filter.get("filter_type").map(Value::as_str) {
                None | Some(Some("include")) => true,
                Some(Some("exclude")) => false,
                _ => return Err(parse_error("scope")),
            };
            rule.scope.push(ScopeField {
                field: field.clone(),
                include,
                items: Vec::new(),
            });
            filter_ids.push(filter_id.to_string());
        }
    }
    if let Some(conditions) = map.get("conditions") {
        let conditions = conditions
            .as_array()
            .ok_or_else(|| parse_error("conditions"))?;
        for condition in conditions {
            rule.conditions.push(parse_condition(condition)?);
        }
    }
    if rule.scope.is_empty() && rule.conditions.is_empty() {
        return Err(bad_rule("at least scope or a condition is required".into()));
    }
    Ok(ParsedRule { rule, filter_ids })
}

fn parse_condition(value: &Value) -> Result<RuleCondition, JobError> {
    let failed = || JobError::Parse("[rule_condition] failed to parse object".to_string());
    let applies_to = value["applies_to"]
        .as_str()
        .and_then(AppliesTo::parse)
        .ok_or_else(failed)?;
    let operator = value["operator"]
        .as_str()
        .and_then(Operator::parse)
        .ok_or_else(failed)?;
    let value = value["value"].as_f64().ok_or_else(failed)?;
    Ok(RuleCondition {
        applies_to,
        operator,
        value,
    })
}

fn render(parsed: &ParsedRule) -> Value {
    let rule = &parsed.rule;
    let actions: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| match *a {
            "skip_result" => rule.skip_result,
            _ => rule.skip_model_update,
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("actions".into(), json!(actions));
    if !rule.scope.is_empty() {
        let scope: Map<String, Value> = rule
            .scope
            .iter()
            .zip(&parsed.filter_ids)
            .map(|(s, id)| {
                let filter_type = if s.include { "include" } else { "exclude" };
                (
                    s.field.clone(),
                    json!({"filter_id": id, "filter_type": filter_type}),
                )
            })
            .collect();
        doc.insert("scope".into(), Value::Object(scope));
    }
    if !rule.conditions.is_empty() {
        let conditions: Vec<Value> = rule
            .conditions
            .iter()
            .map(|c| {
                json!({
                    "applies_to": applies_to_name(c.applies_to),
                    "operator": operator_name(c.operator),
                    "value": c.value,
                })
            })
            .collect();
        doc.insert("conditions".into(), Value::Array(conditions));
    }
    Value::Object(doc)
}

fn applies_to_name(a: AppliesTo) -> &'static str {
    match a {
        AppliesTo::Actual => "actual",
        AppliesTo::Typical => "typical",
        AppliesTo::DiffFromTypical => "diff_from_typical",
        AppliesTo::Time => "time",
    }
}

fn operator_name(o: Operator) -> &'static str {
    match o {
        Operator::Gt => "gt",
        Operator::Gte => "gte",
        Operator::Lt => "lt",
        Operator::Lte => "lte",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(detector: Value) -> Result<Value, String> {
        let mut detector: Detector = serde_json::from_value(detector).unwrap();
        check_custom_rules(&mut detector).map_err(|e| e.to_string())?;
        Ok(detector.custom_rules.unwrap())
    }

    #[test]
    fn rules_are_normalized_as_elasticsearch_renders_them() {
        let rules = checked(
            json!({"function": "mean", "field_name": "x", "by_field_name": "airline",
            "custom_rules": [
                {"scope": {"airline": {"filter_id": "safe"}}},
                {"actions": ["skip_model_update", "skip_result"],
                 "conditions": [{"applies_to": "actual", "operator": "lt", "value": 5}]}
            ]}),
        )
        .unwrap();
        assert_eq!(
            rules,
            json!([
                {"actions": ["skip_result"], "scope": {"airline": {"filter_id": "safe", "filter_type": "include"}}},
                {"actions": ["skip_result", "skip_model_update"],
                 "conditions": [{"applies_to": "actual", "operator": "lt", "value": 5.0}]}
            ])
        );
    }

    #[test]
    fn elasticsearch_messages() {
        let with_rules = |detector: Value, rules: Value| {
            let mut detector = detector;
            detector["custom_rules"] = rules;
            checked(detector).unwrap_err()
        };
        let mean_by = json!({"function": "mean", "field_name": "x", "by_field_name": "airline", "partition_field_name": "region"});
        assert_eq!(
            with_rules(mean_by.clone(), json!([{"actions": ["skip_result"]}])),
            "Invalid detector rule: at least scope or a condition is required"
        );
        assert_eq!(
            with_rules(
                mean_by.clone(),
                json!([{"scope": {"host": {"filter_id": "f"}}}])
            ),
            "Invalid detector rule: scope field 'host' is invalid; select from [airline, region]"
        );
        assert_eq!(
            with_rules(
                json!({"function": "count"}),
                json!([{"scope": {"host": {"filter_id": "f"}}}])
            ),
            "Invalid detector rule: scope field 'host' is invalid; detector has no available fields for scoping"
        );
        assert_eq!(
            with_rules(
                json!({"function": "metric", "field_name": "x"}),
                json!([{"conditions": [{"applies_to": "actual", "operator": "gt", "value": 1}]}])
            ),
            "Invalid detector rule: function metric only supports conditions that apply to time"
        );
        assert!(checked(json!({"function": "metric", "field_name": "x",
            "custom_rules": [{"conditions": [{"applies_to": "time", "operator": "gt", "value": 1}]}]}))
        .is_ok());
        assert!(with_rules(
            mean_by.clone(),
            json!([{"conditions": [{"applies_to": "actual", "operator": "eq", "value": 1}]}])
        )
        .contains("rule_condition"));
        assert!(with_rules(
            mean_by,
            json!([{"actions": ["skip_everything"], "conditions": []}])
        )
        .contains("[actions]"));
    }
}
