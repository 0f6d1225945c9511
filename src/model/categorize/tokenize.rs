//! The categorization analyzer: text -> tokens, as the default `ml_standard` analyzer does it.
//!
//! Steps: `categorization_filters` (regexes whose matches are removed), or the analyzer's
//! `pattern_replace` char filters; the first line that has a letter (`first_line_with_letters`);
//! tokens of letters and digits with `_ . - @` inside, `/` anywhere and `scheme:/` or `C:\` kept in
//! paths; tokens that start with a digit, are hexadecimal numbers or are only slashes are dropped,
//! and `_ . - @ :` at a token's end are trimmed; day and month names are dropped (stop words); at
//! most 100 tokens are kept.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Token cap of the default analyzer (ES `limit` filter).
pub const DEFAULT_TOKEN_LIMIT: usize = 100;

/// Day and month names, which differ between otherwise equal log lines.
const STOP_WORDS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
    "GMT",
    "UTC",
];

/// What the analyzer does, as parsed from the job config (serializable; regexes compiled apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzerSpec {
    /// Regexes whose matches are removed before tokenizing.
    pub strip_patterns: Vec<String>,
    pub first_line_with_letters: bool,
    pub stop_words: Vec<String>,
    pub token_limit: usize,
}

impl Default for AnalyzerSpec {
    fn default() -> Self {
        AnalyzerSpec {
            strip_patterns: Vec::new(),
            first_line_with_letters: true,
            stop_words: STOP_WORDS.iter().map(|w| w.to_string()).collect(),
            token_limit: DEFAULT_TOKEN_LIMIT,
        }
    }
}

impl AnalyzerSpec {
    /// The analyzer of a job: the default one with `categorization_filters` as strip patterns, or
    /// the `categorization_analyzer` given, if auspex supports it (an `ml_standard` or
    /// `ml_classic` tokenizer, `first_line_with_letters` and `pattern_replace` char filters with
    /// an empty replacement, `stop` and `limit` token filters). The error says what is not.
    pub fn from_config(
        filters: Option<&[String]>,
        analyzer: Option<&serde_json::Value>,
    ) -> Result<AnalyzerSpec, String> {
        use serde_json::Value;
        let mut spec = AnalyzerSpec {
            strip_patterns: filters.map(<[String]>::to_vec).unwrap_or_default(),
            ..AnalyzerSpec::default()
        };
        let Some(analyzer) = analyzer else {
            return Ok(spec);
        };
        let unsupported = |what: String| {
            Err(format!(
                "categorization_analyzer {what} is not supported by auspex (supported: the ml_standard or ml_classic tokenizer, first_line_with_letters and pattern_replace char filters, stop and limit token filters)"
            ))
        };
        let Value::Object(map) = analyzer else {
            return unsupported(format!("[{analyzer}]"));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !["tokenizer", "char_filter", "filter"].contains(&k.as_str()))
        {
            return unsupported(format!("field [{key}]"));
        }
        match map.get("tokenizer") {
            None => {}
            Some(Value::String(t)) if t == "ml_standard" || t == "ml_classic" => {}
            Some(other) => return unsupported(format!("tokenizer [{other}]")),
        }
        if let Some(char_filters) = map.get("char_filter") {
            spec.first_line_with_letters = false;
            for filter in char_filters
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                match filter {
                    Value::String(name) if name == "first_line_with_letters" => {
                        spec.first_line_with_letters = true;
                    }
                    Value::Object(f)
                        if f.get("type").and_then(Value::as_str) == Some("pattern_replace")
                            && f.get("replacement")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .is_empty() =>
                    {
                        match f.get("pattern").and_then(Value::as_str) {
                            Some(pattern) => spec.strip_patterns.push(pattern.to_string()),
                            None => return unsupported(format!("char_filter [{filter}]")),
                        }
                    }
                    other => return unsupported(format!("char_filter [{other}]")),
                }
            }
        }
        if let Some(token_filters) = map.get("filter") {
            spec.stop_words.clear();
            spec.token_limit = usize::MAX;
            for filter in token_filters
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let kind = filter.get("type").and_then(Value::as_str);
                match (kind, filter.get("stopwords"), filter.get("max_token_count")) {
                    (Some("stop"), Some(Value::Array(words)), _) => spec
                        .stop_words
                        .extend(words.iter().filter_map(Value::as_str).map(str::to_string)),
                    (Some("limit"), _, Some(count)) if count.as_u64().is_some() => {
                        spec.token_limit = count.as_u64().unwrap_or(0) as usize;
                    }
                    _ => return unsupported(format!("filter [{filter}]")),
                }
            }
        }
        Ok(spec)
    }
}

/// An [`AnalyzerSpec`] with its regexes compiled.
#[derive(Debug, Clone)]
pub struct Analyzer {
    spec: AnalyzerSpec,
    strip: Vec<Regex>,
}

impl Analyzer {
    /// Fails on a pattern that is not a valid regex (the job config checks them first).
    pub fn new(spec: &AnalyzerSpec) -> Result<Analyzer, regex::Error> {
        let strip = spec
            .strip_patterns
            .iter()
            .map(|p| Regex::new(p))
            .collect::<Result<_, _>>()?;
        Ok(Analyzer {
            spec: spec.clone(),
            strip,
        })
    }

    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for regex in &self.strip {
            if regex.is_match(&text) {
                text = std::borrow::Cow::Owned(regex.replace_all(&text, "").into_owned());
            }
        }
        let line = if self.spec.first_line_with_letters {
            text.lines()
                .find(|l| l.chars().any(char::is_alphabetic))
                .unwrap_or("")
        } else {
            &text
        };
        tokenize(line)
            .into_iter()
            .filter(|t| !self.spec.stop_words.iter().any(|w| w == t))
            .take(self.spec.token_limit)
            .collect()
    }
}

/// The `ml_standard` tokenizer (see the module doc).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let inside = !current.is_empty();
        let keep = c.is_alphanumeric()
            || c == '/'
            || (inside && matches!(c, '_' | '.' | '-' | '@'))
            // `http:/...` or `C:\...`: a colon after letters only, followed by a slash.
            || (c == ':'
                && inside
                && current.chars().all(char::is_alphabetic)
                && matches!(next, Some('/') | Some('\\')))
            || (c == '\\' && (current.is_empty() || current.starts_with('\\') || is_drive(&current)));
        if keep {
            current.push(c);
        } else if inside {
            push_token(&mut tokens, &mut current);
        }
        i += 1;
    }
    push_token(&mut tokens, &mut current);
    tokens
}

/// `C:` and what follows: one letter, then a colon.
fn is_drive(token: &str) -> bool {
    let mut chars = token.chars();
    matches!((chars.next(), chars.next()), (Some(l), Some(':')) if l.is_alphabetic())
}

fn push_token(tokens: &mut Vec<String>, current: &mut String) {
    let token = current.trim_end_matches(['_', '.', '-', '@', ':']);
    let starts_with_digit = token.chars().next().is_some_and(|c| c.is_ascii_digit());
    let hex_like = token
        .chars()
        .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | '-' | '@' | ':'));
    let only_slashes = token.chars().all(|c| c == '/' || c == '\\');
    if !token.is_empty() && !starts_with_digit && !hex_like && !only_slashes {
        tokens.push(token.to_string());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_hex_and_punctuation_are_not_tokens() {
        assert_eq!(
            tokenize(
                "Connection 42 from 10.0.0.1 to host-7.example.com closed (id=deadbeef, user_9)."
            ),
            [
                "Connection",
                "from",
                "to",
                "host-7.example.com",
                "closed",
                "id",
                "user_9"
            ]
        );
        assert_eq!(
            tokenize("ERROR: disk /var/log/app.log full"),
            ["ERROR", "disk", "/var/log/app.log", "full"]
        );
        assert_eq!(
            tokenize("GET http://example.com/a?q=1"),
            ["GET", "http://example.com/a", "q"]
        );
        assert_eq!(tokenize("path C:\\Windows\\x"), ["path", "C:\\Windows\\x"]);
        assert_eq!(tokenize("ok: go"), ["ok", "go"]);
        assert!(tokenize("123 0x1f ff-ee / //").is_empty());
    }

    #[test]
    fn analyzer_takes_first_line_with_letters_and_drops_dates() {
        let analyzer = Analyzer::new(&AnalyzerSpec::default()).unwrap();
        assert_eq!(
            analyzer.tokens("--- 12\nMon Oct 19 17:04:44 service started\nsecond line"),
            ["service", "started"]
        );
        let filtered = Analyzer::new(&AnalyzerSpec {
            strip_patterns: vec!["\\[.*?\\]".into()],
            ..AnalyzerSpec::default()
        })
        .unwrap();
        assert_eq!(filtered.tokens("[worker thread] job done"), ["job", "done"]);
        let long: String = (0..150).map(|i| format!("w{i} ")).collect();
        assert_eq!(analyzer.tokens(&long).len(), DEFAULT_TOKEN_LIMIT);
    }
}
