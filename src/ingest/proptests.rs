//! Property tests for the ingest module as a whole: no input makes it panic, and what it stores
//! reads back to the same records whatever the body format.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::ingest::{DataDescription, IngestError, RecordReader, TimeFormat, TimeValue};

fn reader() -> RecordReader {
    let description = DataDescription {
        time_field: "t.s".to_string(),
        time_format: "epoch".to_string(),
        ..DataDescription::default()
    };
    let fields = ["a", "b.c", "t", "x"].map(String::from);
    RecordReader::new(&description, &fields).expect("valid description")
}

/// Keys that collide with the wanted fields in every way (literal dotted, nested, partial).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just("b.c".to_string()),
        Just("t".to_string()),
        Just("s".to_string()),
        Just("t.s".to_string()),
        Just("x".to_string()),
        "[a-z.\u{e9}\"\\\\]{0,4}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
        "[0-9]{1,10}(\\.[0-9]{0,4})?".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), value()), 0..6).prop_map(|kv| kv.into_iter().collect())
}

fn json(records: &[Map<String, Value>], pretty: bool) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let value = Value::Object(r.clone());
            if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            }
            .expect("a Value always serializes")
        })
        .collect()
}

proptest! {
    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = reader().read_body(&body);
    }

    #[test]
    fn json_like_text_never_panics(body in "[\\[\\]{}\":,0-9a-z. \n\r\t\\\\eE+-]{0,300}") {
        match reader().read_body(body.as_bytes()) {
            Ok(batch) => {
                let again = reader().read_body(&batch.stored);
                prop_assert_eq!(again.map(|b| b.records), Ok(batch.records));
            }
            Err(IngestError::Malformed { line, column, .. }) => {
                prop_assert!(line >= 1 && line <= body.lines().count().max(1) + 1);
                prop_assert!(column >= 1);
            }
            Err(IngestError::NotAnObject { line }) => prop_assert!(line >= 1),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn stored_round_trips_in_every_body_format(records in prop::collection::vec(record(), 0..8)) {
        let reader = reader();
        let docs = json(&records, false);
        let ndjson = reader.read_body(docs.join("\n").as_bytes()).expect("NDJSON of objects parses");
        prop_assert_eq!(ndjson.records.len(), records.len());
        let stored = reader.read_body(&ndjson.stored).expect("stored parses");
        prop_assert_eq!(&stored.records, &ndjson.records);
        prop_assert_eq!(&stored.stored, &ndjson.stored);

        let pretty = json(&records, true);
        for body in [
            docs.join(""),
            format!("[{}]", docs.join(",")),
            format!("[\n{}\n]\n", pretty.join(",\n")),
            pretty.join("\r\n\r\n"),
        ] {
            let batch = reader.read_body(body.as_bytes()).expect("same records, other framing");
            prop_assert_eq!(&batch.records, &ndjson.records);
            prop_assert_eq!(batch.stored.iter().filter(|&&b| b == b'\n').count(), records.len());
            let again = reader.read_body(&batch.stored).expect("stored parses");
            prop_assert_eq!(&again.records, &ndjson.records);
        }
    }

    #[test]
    fn random_patterns_and_values_never_panic(
        prefix in prop_oneof![Just(""), Just("yyyy-MM-dd HH"), Just("yyyyMMddHH")],
        pattern in "[yMLdDHkhKmsSEaXxZz' :./T-]{0,24}",
        value in "[0-9A-Za-z :+./T-]{0,32}",
    ) {
        if let Ok(format) = TimeFormat::parse(&format!("{prefix}{pattern}")) {
            let _ = format.parse_value(TimeValue::Text(&value));
            let _ = format.parse_value(TimeValue::Int(20_140_623_000_000));
        }
    }
}
