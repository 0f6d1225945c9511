//! The categorizer on synthetic log lines.

use super::*;

fn categorizer(limit: usize) -> Categorizer {
    Categorizer::new(
        CategorizerConfig {
            analyzer: AnalyzerSpec::default(),
            examples_limit: limit,
            partition_field: None,
            stop_on_warn: false,
        },
        0,
        None,
    )
}

fn login(i: u32) -> String {
    format!(
        "User user{i} logged in from 10.0.{}.{} session 0x{:x}",
        i % 7,
        i % 250,
        i * 7919
    )
}

fn disk(i: u32) -> String {
    format!(
        "Disk quota exceeded on volume vol{i} for tenant t{} at {} bytes",
        i % 3,
        i * 1000
    )
}

#[test]
fn lines_differing_in_numbers_and_ids_share_a_category() {
    let mut c = categorizer(4);
    let logins: Vec<u64> = (0..50)
        .map(|i| c.categorize("", &login(i)).unwrap())
        .collect();
    assert!(logins.iter().all(|id| *id == 1), "{logins:?}");
    let disks: Vec<u64> = (0..50)
        .map(|i| c.categorize("", &disk(i)).unwrap())
        .collect();
    assert!(disks.iter().all(|id| *id == 2), "{disks:?}");
    let other = c
        .categorize("", "Service payment restarted after configuration reload")
        .unwrap();
    assert_eq!(other, 3);
    let stats = c.stats();
    assert_eq!(
        (stats.categorized_doc_count, stats.total_category_count),
        (101, 3)
    );
    assert_eq!(
        (stats.frequent_category_count, stats.rare_category_count),
        (2, 1)
    );
    assert!(!stats.warn);
}

#[test]
fn examples_are_capped_and_the_regex_matches_every_example() {
    let mut c = categorizer(4);
    for i in 0..30 {
        c.categorize("", &login(i));
    }
    let category = c.category(1).unwrap();
    let doc = category.to_json("j");
    let examples = doc["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 4);
    assert_eq!(doc["num_matches"], 30);
    assert_eq!(doc["terms"], "User logged in from session");
    let regex = regex::Regex::new(&format!("^{}$", doc["regex"].as_str().unwrap())).unwrap();
    for example in examples {
        assert!(
            regex.is_match(example.as_str().unwrap()),
            "{example} vs {regex}"
        );
    }
    for i in 0..30 {
        assert!(regex.is_match(&login(i)));
    }
    assert!(!regex.is_match(&disk(1)));
    let longest = (0..30).map(|i| login(i).len()).max().unwrap();
    assert_eq!(doc["max_matching_length"], longest + longest / 10);
}

#[test]
fn categorization_is_deterministic_and_survives_a_snapshot() {
    let lines: Vec<String> = (0..40)
        .map(|i| if i % 3 == 0 { disk(i) } else { login(i) })
        .collect();
    let mut straight = categorizer(4);
    let ids: Vec<_> = lines.iter().map(|l| straight.categorize("", l)).collect();
    let mut first = categorizer(4);
    let mut got: Vec<_> = lines[..20]
        .iter()
        .map(|l| first.categorize("", l))
        .collect();
    let bytes = crate::store::encode(&first).unwrap();
    let mut resumed: Categorizer = crate::store::decode(&bytes).unwrap();
    got.extend(lines[20..].iter().map(|l| resumed.categorize("", l)));
    assert_eq!(got, ids);
    assert_eq!(resumed, straight);
}

#[test]
fn per_partition_ids_are_unique_and_stop_on_warn_stops_a_partition() {
    let mut c = Categorizer::new(
        CategorizerConfig {
            analyzer: AnalyzerSpec::default(),
            examples_limit: 4,
            partition_field: Some("service".into()),
            stop_on_warn: true,
        },
        0,
        Some(1),
    );
    assert_eq!(c.categorize("a", &login(1)), Some(1));
    assert_eq!(
        c.categorize("b", &login(2)),
        Some(2),
        "same message kind, another partition"
    );
    // Partition "b" gets only distinct messages: too many categories, so it warns and stops.
    let mut stopped_at = None;
    for i in 0..200u32 {
        let words = [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
        ];
        let line = format!(
            "{} {} {} {}",
            words[(i % 8) as usize],
            words[((i / 8) % 8) as usize],
            words[((i / 64) % 8) as usize],
            "x".repeat(1 + i as usize % 5)
        );
        if c.categorize("b", &line).is_none() {
            stopped_at = Some(i);
            break;
        }
    }
    assert!(stopped_at.is_some(), "partition b never stopped");
    assert!(c.stats().warn);
    assert!(
        c.categorize("a", &login(3)).is_some(),
        "partition a carries on"
    );
    let doc = c.category(2).unwrap().to_json("j");
    assert_eq!(doc["partition_field_name"], "service");
    assert_eq!(doc["partition_field_value"], "b");
}
