//! `lat_long` values: reading a point from a record and writing one into a result.
//!
//! Elasticsearch accepts a point as the string `"lat,lon"` (what a datafeed sends for a
//! `geo_point`) and, from documents, as an object `{"lat": .., "lon": ..}`. Ingest flattens objects,
//! so the object form reaches the model as the two leaf fields `<field>.lat` and `<field>.lon`,
//! which `AnalysisConfig::analysis_fields` asks for on `lat_long` detectors. Results carry points as
//! `"lat,lon"` strings (`geo_results.actual_point`, `typical_point`) and as `[lat, lon]` in
//! `actual`/`typical`.

use crate::ingest::FieldValue;

/// A valid point from a `"lat,lon"` string: both parts numbers, latitude within ±90 and longitude
/// within ±180; anything else is no point (the record counts as missing the field).
pub fn parse_point(text: &str) -> Option<[f64; 2]> {
    let (lat, lon) = text.split_once(',')?;
    let lat: f64 = lat.trim().parse().ok()?;
    let lon: f64 = lon.trim().parse().ok()?;
    valid([lat, lon])
}

/// A point from the object form's two leaves.
pub fn point_of_parts(lat: Option<&FieldValue>, lon: Option<&FieldValue>) -> Option<[f64; 2]> {
    valid([lat?.as_f64()?, lon?.as_f64()?])
}

fn valid(point: [f64; 2]) -> Option<[f64; 2]> {
    let [lat, lon] = point;
    (lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0).then_some(point)
}

/// The `"lat,lon"` rendering Elasticsearch uses in `geo_results`.
pub fn render_point(point: [f64; 2]) -> String {
    format!("{},{}", round6(point[0]), round6(point[1]))
}

/// Micro-degree precision (about 10 cm): more digits are noise from averaging.
fn round6(x: f64) -> f64 {
    let r = (x * 1e6).round() / 1e6;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// The two leaf fields under which ingest finds the object form of `field`.
pub fn part_fields(field: &str) -> [String; 2] {
    [format!("{field}.lat"), format!("{field}.lon")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_parse_and_render() {
        assert_eq!(parse_point("48.85,2.35"), Some([48.85, 2.35]));
        assert_eq!(parse_point(" -33.9 , 151.2 "), Some([-33.9, 151.2]));
        assert_eq!(parse_point("91,0"), None);
        assert_eq!(parse_point("10,181"), None);
        assert_eq!(parse_point("abc"), None);
        assert_eq!(parse_point("1,2,3"), None);
        assert_eq!(render_point([48.8566012, -0.0000001]), "48.856601,0");
    }

    #[test]
    fn object_parts() {
        let lat = FieldValue::Num(1.5);
        let lon = FieldValue::Text("2.5".into());
        assert_eq!(point_of_parts(Some(&lat), Some(&lon)), Some([1.5, 2.5]));
        assert_eq!(point_of_parts(Some(&lat), None), None);
    }
}
