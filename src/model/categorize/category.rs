//! One category: the token list it was founded on, the tokens (in order) every member shares,
//! its examples and counts; the weighted similarity of a token list to it; and its definition
//! document (`results/categories`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest example kept, in characters (longer ones are cut and end in `...`), as in ES.
const MAX_EXAMPLE_CHARS: usize = 1000;

/// A token's weight in similarity: words count more than mixed tokens such as ids or host names,
/// which tend to vary between messages of one kind.
pub fn weight(token: &str) -> u32 {
    if token.chars().all(char::is_alphabetic) {
        3
    } else {
        1
    }
}

/// Weighted edit distance between two token lists: inserting or deleting a token costs its
/// weight, replacing one the larger of the two weights.
fn edit_distance(a: &[String], b: &[String]) -> u32 {
    let mut previous: Vec<u32> = std::iter::once(0)
        .chain(b.iter().scan(0, |sum, t| {
            *sum += weight(t);
            Some(*sum)
        }))
        .collect();
    let mut current = vec![0; b.len() + 1];
    for x in a {
        let wx = weight(x);
        current[0] = previous[0] + wx;
        for (j, y) in b.iter().enumerate() {
            let replace = if x == y { 0 } else { wx.max(weight(y)) };
            current[j + 1] = (previous[j] + replace)
                .min(previous[j + 1] + wx)
                .min(current[j] + weight(y));
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The longest common subsequence of two token lists (the tokens both have, in the same order).
fn common_subsequence(a: &[String], b: &[String]) -> Vec<String> {
    let mut table = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i].clone());
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

pub fn total_weight(tokens: &[String]) -> u32 {
    tokens.iter().map(|t| weight(t)).sum()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: u64,
    /// (partition field, value) with per-partition categorization.
    pub partition: Option<(String, String)>,
    /// The first member's tokens: new messages are compared with these.
    base: Vec<String>,
    base_weight: u32,
    /// Tokens every member has, in order (the terms and the regex).
    common: Vec<String>,
    pub num_matches: u64,
    examples: BTreeSet<String>,
    max_length: usize,
}

impl Category {
    pub fn new(id: u64, partition: Option<(String, String)>, tokens: Vec<String>) -> Category {
        Category {
            id,
            partition,
            base_weight: total_weight(&tokens),
            common: tokens.clone(),
            base: tokens,
            num_matches: 0,
            examples: BTreeSet::new(),
            max_length: 0,
        }
    }

    /// Similarity in [0, 1] of `tokens` (of total weight `weight`) to this category; `None`
    /// when the weights alone rule out reaching `threshold`.
    pub fn similarity(&self, tokens: &[String], weight: u32, threshold: f64) -> Option<f64> {
        let (low, high) = (weight.min(self.base_weight), weight.max(self.base_weight));
        if high == 0 {
            return Some(1.0);
        }
        if (low as f64) < threshold * high as f64 {
            return None;
        }
        Some(1.0 - edit_distance(tokens, &self.base) as f64 / high as f64)
    }

    /// Adds a member: its tokens narrow the common ones, its text may become an example.
    pub fn add(&mut self, tokens: &[String], text: &str, examples_limit: usize) {
        if self.num_matches > 0 {
            self.common = common_subsequence(&self.common, tokens);
        }
        self.num_matches += 1;
        self.max_length = self.max_length.max(text.chars().count());
        if self.examples.len() < examples_limit {
            let example = if text.chars().count() > MAX_EXAMPLE_CHARS {
                let cut: String = text.chars().take(MAX_EXAMPLE_CHARS - 3).collect();
                cut + "..."
            } else {
                text.to_string()
            };
            self.examples.insert(example);
        }
    }

    pub fn terms(&self) -> String {
        self.common.join(" ")
    }

    /// `.*?` + the common tokens (escaped) joined by `.+?` + `.*`: matches every member.
    pub fn regex(&self) -> String {
        let escaped: Vec<String> = self.common.iter().map(|t| regex::escape(t)).collect();
        format!(".*?{}.*", escaped.join(".+?"))
    }

    /// The definition document as ES serves it from `results/categories`.
    pub fn to_json(&self, job_id: &str) -> Value {
        let mut doc = json!({"job_id": job_id});
        let map = doc.as_object_mut().expect("object literal");
        if let Some((field, value)) = &self.partition {
            map.insert("partition_field_name".into(), field.clone().into());
            map.insert("partition_field_value".into(), value.clone().into());
        }
        map.insert("category_id".into(), self.id.into());
        map.insert("terms".into(), self.terms().into());
        map.insert("regex".into(), self.regex().into());
        // ES widens the longest member by 10% so similar, slightly longer messages still match.
        let widened = self.max_length + self.max_length / 10;
        map.insert("max_matching_length".into(), widened.into());
        map.insert("examples".into(), json!(self.examples));
        map.insert("num_matches".into(), self.num_matches.into());
        map.insert("preferred_to_categories".into(), json!([]));
        map.insert("result_type".into(), "category_definition".into());
        map.insert("mlcategory".into(), self.id.to_string().into());
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn edit_distance_is_weighted() {
        assert_eq!(edit_distance(&tokens("a b"), &tokens("a b")), 0);
        assert_eq!(edit_distance(&tokens("user x1"), &tokens("user x2")), 1);
        assert_eq!(edit_distance(&tokens("user"), &tokens("user logged")), 3);
        assert_eq!(edit_distance(&tokens("disk full"), &tokens("user x2")), 6);
    }

    #[test]
    fn common_tokens_keep_order() {
        assert_eq!(
            common_subsequence(&tokens("a b c d"), &tokens("a x c d b")),
            tokens("a c d")
        );
    }
}
