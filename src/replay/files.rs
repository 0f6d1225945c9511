//! Input files for `auspex run`, read in chunks of about [`CHUNK_BYTES`] so memory stays flat
//! whatever the file size. Each chunk is a `_data` body (NDJSON), parsed by the job's reader.
//!
//! - NDJSON (any name but `*.csv`): one JSON document per line, as `_data` takes it; `-` is stdin.
//! - CSV (`*.csv`): a header row naming the fields, then one record per row. A value that reads
//!   as a plain number becomes a JSON number (so `epoch` times and metric fields work); anything
//!   else, or a number with a leading zero (`007`, an id, not a quantity), stays a string; an empty
//!   cell is an absent field.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

/// Target size of one chunk (one stored input entry).
pub const CHUNK_BYTES: usize = 1 << 20;

/// One `_data`-like body and how many bytes of the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub body: Vec<u8>,
    pub raw_bytes: u64,
    /// 1-based line of the file where the chunk starts (for error messages).
    pub first_line: u64,
}

/// The chunks of one file.
pub struct FileChunks {
    path: PathBuf,
    inner: Inner,
    line: u64,
}

enum Inner {
    Ndjson(Box<dyn BufRead + Send>),
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        headers: Vec<String>,
        offset: u64,
    },
}

/// Size of the file in bytes, when known (not for stdin).
pub fn file_len(path: &Path) -> Option<u64> {
    if path == Path::new("-") {
        return None;
    }
    std::fs::metadata(path).ok().map(|m| m.len())
}

impl FileChunks {
    pub fn open(path: &Path) -> anyhow::Result<FileChunks> {
        let source: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        };
        let is_csv = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        let inner = if is_csv {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(source);
            let headers = reader
                .headers()
                .with_context(|| format!("cannot read the CSV header of {}", path.display()))?
                .iter()
                .map(str::to_string)
                .collect();
            let offset = reader.position().byte();
            Inner::Csv {
                reader,
                headers,
                offset,
            }
        } else {
            Inner::Ndjson(Box::new(BufReader::with_capacity(1 << 16, source)))
        };
        Ok(FileChunks {
            path: path.to_path_buf(),
            inner,
            line: 1,
        })
    }

    fn next_chunk(&mut self) -> anyhow::Result<Option<Chunk>> {
        let first_line = self.line;
        let mut body = Vec::with_capacity(CHUNK_BYTES + 4096);
        let raw_bytes = match &mut self.inner {
            Inner::Ndjson(reader) => {
                let mut raw = 0u64;
                while body.len() < CHUNK_BYTES {
                    let read = reader
                        .read_until(b'\n', &mut body)
                        .with_context(|| format!("cannot read {}", self.path.display()))?;
                    if read == 0 {
                        break;
                    }
                    raw += read as u64;
                    self.line += 1;
                }
                raw
            }
            Inner::Csv {
                reader,
                headers,
                offset,
            } => {
                let mut row = csv::StringRecord::new();
                while body.len() < CHUNK_BYTES {
                    let more = reader.read_record(&mut row).with_context(|| {
                        format!(
                            "invalid CSV in {} near line {}",
                            self.path.display(),
                            self.line
                        )
                    })?;
                    if !more {
                        break;
                    }
                    self.line = row.position().map_or(self.line, |p| p.line()) + 1;
                    serde_json::to_writer(&mut body, &csv_object(headers, &row))?;
                    body.push(b'\n');
                }
                let end = reader.position().byte();
                std::mem::replace(offset, end).abs_diff(end)
            }
        };
        if body.is_empty() {
            return Ok(None);
        }
        Ok(Some(Chunk {
            body,
            raw_bytes,
            first_line,
        }))
    }
}

impl Iterator for FileChunks {
    type Item = anyhow::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

fn csv_object(headers: &[String], row: &csv::StringRecord) -> Map<String, Value> {
    headers
        .iter()
        .zip(row.iter())
        .filter(|(_, cell)| !cell.is_empty())
        .map(|(name, cell)| (name.clone(), csv_value(cell)))
        .collect()
}

fn csv_value(cell: &str) -> Value {
    let digits = cell.trim_start_matches('-');
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.");
    if !leading_zero {
        if let Ok(n) = cell.parse::<i64>() {
            return Value::from(n);
        }
        if let Some(n) = cell
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(cell.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(name: &str, text: &str) -> Vec<Chunk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        FileChunks::open(&path)
            .unwrap()
            .collect::<anyhow::Result<Vec<_>>>()
            .unwrap()
    }

    #[test]
    fn csv_rows_become_json_records() {
        let text = "time,host,latency_ms,zip\n1700000000,web-1,12.5,007\n1700000060,web-2,,10\n";
        let chunks = chunks_of("a.csv", text);
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            String::from_utf8(chunks[0].body.clone()).unwrap(),
            "{\"time\":1700000000,\"host\":\"web-1\",\"latency_ms\":12.5,\"zip\":\"007\"}\n\
             {\"time\":1700000060,\"host\":\"web-2\",\"zip\":10}\n"
        );
        assert_eq!(
            chunks[0].raw_bytes,
            text.len() as u64 - 25,
            "all but the header row"
        );
    }

    #[test]
    fn ndjson_is_cut_at_line_ends_into_bounded_chunks() {
        let line = format!("{{\"time\":1,\"pad\":\"{}\"}}\n", "x".repeat(1000));
        let lines = CHUNK_BYTES / line.len() * 3;
        let text = line.repeat(lines);
        let chunks = chunks_of("a.ndjson", &text);
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.body.clone()).collect();
        assert_eq!(joined, text.as_bytes());
        assert!(chunks.iter().all(|c| c.body.ends_with(b"\n")));
        assert!(chunks
            .iter()
            .all(|c| c.body.len() < CHUNK_BYTES + line.len()));
        assert_eq!(
            chunks[1].first_line,
            (chunks[0].body.len() / line.len()) as u64 + 1
        );
        let total: u64 = chunks.iter().map(|c| c.raw_bytes).sum();
        assert_eq!(total, text.len() as u64);
    }

    #[test]
    fn a_malformed_csv_row_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "a,b\n1,2\n3\n").unwrap();
        let error = FileChunks::open(&path)
            .unwrap()
            .collect::<anyhow::Result<Vec<_>>>()
            .unwrap_err();
        assert!(format!("{error:#}").contains("bad.csv"), "{error:#}");
    }
}
