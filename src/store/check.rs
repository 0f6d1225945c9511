//! `check_integrity`: reads every value of every tree, verifies its frame and payload (I5) and the
//! invariants that span trees, the ones that make lost keys visible: every per-job key belongs to
//! a job in `jobs`; every job has its progress and tally and every progress and tally its job;
//! input sequence numbers run without gaps up to `progress.last_seq` (I4); the input, bucket and
//! record keys match the job's tally (I6); the snapshot progress points at exists with all its
//! chunks (I3); no scope lost flushed writes (`durable.rs`). Reports problems instead of stopping
//! at the first one. Read-only; used by `auspex verify` and the crash tests.
//!
//! `check_job` is the cheap form for one job, run by the job layer before it serves a job (at
//! start and at every open): seeks instead of reading every value, counting only the input a
//! replay needs and the bucket and record keys (not their values).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::{
    durable, frame, keys, recovery::FORMAT_VERSION_KEY, snapshots::SnapshotMeta, tally, tree,
    Progress, ResultKind, Store, StoreError, Tally, FORMAT_VERSION,
};

/// Problems kept in a report; more are only counted, so a badly damaged store still yields a
/// readable report in bounded memory.
const MAX_PROBLEMS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityProblem {
    pub tree: &'static str,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for IntegrityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] [{}]: {}", self.tree, self.key, self.reason)
    }
}

#[derive(Debug, Clone, Default)]
pub struct IntegrityReport {
    /// Values read, per tree, in `tree::ALL` order.
    pub values_checked: Vec<(&'static str, u64)>,
    /// The first `MAX_PROBLEMS` problems, in tree order then key order.
    pub problems: Vec<IntegrityProblem>,
    /// Problems found beyond those kept.
    pub problems_omitted: u64,
}

impl IntegrityReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }

    fn add(&mut self, tree: &'static str, key: &[u8], reason: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(IntegrityProblem {
                tree,
                key: keys::render(key),
                reason: reason.into(),
            });
        } else {
            self.problems_omitted += 1;
        }
    }

    /// Records a `Corrupt` error as a problem; any other error (I/O) ends the check.
    fn absorb<T>(&mut self, result: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::Corrupt { tree, key, reason }) => {
                if self.problems.len() < MAX_PROBLEMS {
                    self.problems.push(IntegrityProblem { tree, key, reason });
                } else {
                    self.problems_omitted += 1;
                }
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }
}

/// What the chunks of one snapshot add up to, for comparison with its metadata.
#[derive(Default)]
struct ChunkTally {
    count: u32,
    len: u64,
    crc: crc32fast::Hasher,
    /// A chunk was out of sequence or unreadable: the state cannot be reassembled.
    broken: bool,
}

type SnapshotRef = (Vec<u8>, Vec<u8>);
/// Names what is wrong with a key of a tree of JSON documents, if anything.
type KeyProblem = fn(&[u8]) -> Option<&'static str>;

impl Store {
    /// Walks the whole store. `Err` only for I/O errors and for sled failing on its own damaged
    /// files (a panic in sled, contained); corruption of values is in the report.
    pub fn check_integrity(&self) -> Result<IntegrityReport, StoreError> {
        super::contain("checking the store", || self.check_integrity_inner())
    }

    fn check_integrity_inner(&self) -> Result<IntegrityReport, StoreError> {
        let mut report = IntegrityReport::default();
        let mut counts: HashMap<&'static str, u64> = HashMap::new();

        let mut tallies: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
        let mut tallied = false;
        for entry in self.meta.iter() {
            let (key, value) = entry?;
            *counts.entry(tree::META).or_default() += 1;
            if let Some(job) = key.strip_prefix(tally::TALLY_PREFIX) {
                if let Some(found) =
                    report.absorb(frame::unframe_bincode::<Tally>(tree::META, &key, &value))?
                {
                    tallies.insert(job.to_vec(), found);
                }
            } else if key.as_ref() == tally::TALLIED_KEY || key.as_ref() == durable::FLUSH_EPOCH_KEY
            {
                tallied |= key.as_ref() == tally::TALLIED_KEY;
                report.absorb(frame::unframe(tree::META, &key, &value))?;
            } else if key.as_ref() != FORMAT_VERSION_KEY {
                report.add(tree::META, &key, "unknown meta key");
            } else if let Some(found) =
                report.absorb(frame::unframe_bincode::<u32>(tree::META, &key, &value))?
            {
                if found != FORMAT_VERSION {
                    report.add(
                        tree::META,
                        &key,
                        format!("format version {found}, expected {FORMAT_VERSION}"),
                    );
                }
            }
        }

        let mut jobs = HashSet::new();
        for entry in self.jobs.iter() {
            let (key, value) = entry?;
            *counts.entry(tree::JOBS).or_default() += 1;
            if key.is_empty()
                || key.contains(&keys::SEPARATOR)
                || std::str::from_utf8(&key).is_err()
            {
                report.add(tree::JOBS, &key, "not a valid job id");
            }
            if let Some(payload) = report.absorb(frame::unframe(tree::JOBS, &key, &value))? {
                report.absorb(frame::check_json(tree::JOBS, &key, payload))?;
            }
            jobs.insert(key.to_vec());
        }

        let mut progress_of: HashMap<Vec<u8>, Progress> = HashMap::new();
        for entry in self.progress.iter() {
            let (key, value) = entry?;
            *counts.entry(tree::PROGRESS).or_default() += 1;
            if !jobs.contains(key.as_ref()) {
                report.add(
                    tree::PROGRESS,
                    &key,
                    "progress of a job that has no config in [jobs] (the config was lost)",
                );
            }
            if let Some(progress) = report.absorb(frame::unframe_bincode::<Progress>(
                tree::PROGRESS,
                &key,
                &value,
            ))? {
                progress_of.insert(key.to_vec(), progress);
            }
        }
        for job in &jobs {
            if !self.progress.contains_key(job)? {
                report.add(tree::JOBS, job, "job has no progress");
            }
        }

        let mut observed: BTreeMap<Vec<u8>, Observed> = BTreeMap::new();
        for entry in self.input.iter() {
            let (key, value) = entry?;
            *counts.entry(tree::INPUT).or_default() += 1;
            let (job, rest) = keys::split_job(&key);
            check_owner(&mut report, tree::INPUT, &key, &jobs);
            match rest.and_then(keys::input_seq) {
                Some(seq) => observed.entry(job.to_vec()).or_default().input_seq(seq),
                None => report.add(tree::INPUT, &key, "malformed input key"),
            }
            report.absorb(frame::unframe(tree::INPUT, &key, &value))?;
        }

        for entry in self.results.iter() {
            let (key, value) = entry?;
            *counts.entry(tree::RESULTS).or_default() += 1;
            check_owner(&mut report, tree::RESULTS, &key, &jobs);
            let (job, rest) = keys::split_job(&key);
            match rest.and_then(keys::parse_result_suffix) {
                Some((kind, _, _)) => observed.entry(job.to_vec()).or_default().result(kind),
                None => report.add(tree::RESULTS, &key, "malformed result key"),
            }
            if let Some(payload) = report.absorb(frame::unframe(tree::RESULTS, &key, &value))? {
                report.absorb(frame::check_json(tree::RESULTS, &key, payload))?;
            }
        }

        let complete = self.check_snapshots(&mut report, &jobs, &mut counts)?;
        for (job, progress) in &progress_of {
            if let Some(id) = &progress.latest_snapshot_id {
                if !complete.contains(&(job.clone(), id.as_bytes().to_vec())) {
                    report.add(
                        tree::PROGRESS,
                        job,
                        format!("latest snapshot [{id}] is missing or incomplete"),
                    );
                }
            }
        }
        for job in tallies.keys() {
            if !jobs.contains(job) {
                report.add(
                    tree::META,
                    &tally::tally_key(job),
                    "tally of a job that has no config in [jobs] (the config was lost)",
                );
            }
        }
        for job in &jobs {
            let Some(progress) = progress_of.get(job) else {
                continue;
            };
            let snapshot_seq = self.active_snapshot_seq(job, progress);
            let seen = observed.remove(job).unwrap_or_default();
            for (tree, key, reason) in judge(
                job,
                &seen,
                progress,
                tallies.get(job).copied(),
                tallied,
                snapshot_seq,
            ) {
                report.add(tree, &key, reason);
            }
        }
        for (scope, reason) in self.lost() {
            report.add(tree::META, scope.as_bytes(), reason);
        }

        let json_trees: [(&'static str, &sled::Tree, KeyProblem); 2] = [
            (
                tree::RESOURCES,
                &self.resources,
                super::resources::key_problem,
            ),
            (tree::SECURITY, &self.security, super::security::key_problem),
        ];
        for (name, json_tree, key_problem) in json_trees {
            for entry in json_tree.iter() {
                let (key, value) = entry?;
                *counts.entry(name).or_default() += 1;
                if let Some(problem) = key_problem(&key) {
                    report.add(name, &key, problem);
                }
                if let Some(payload) = report.absorb(frame::unframe(name, &key, &value))? {
                    report.absorb(frame::check_json(name, &key, payload))?;
                }
            }
        }

        report.values_checked = tree::ALL
            .iter()
            .map(|name| (*name, counts.get(name).copied().unwrap_or(0)))
            .collect();
        Ok(report)
    }

    /// Verifies every snapshot; returns the (job, snapshot id) pairs whose state would reassemble.
    fn check_snapshots(
        &self,
        report: &mut IntegrityReport,
        jobs: &HashSet<Vec<u8>>,
        counts: &mut HashMap<&'static str, u64>,
    ) -> Result<HashSet<SnapshotRef>, StoreError> {
        let mut metas: HashMap<SnapshotRef, (Vec<u8>, SnapshotMeta)> = HashMap::new();
        let mut tallies: HashMap<SnapshotRef, (Vec<u8>, ChunkTally)> = HashMap::new();
        for entry in self.snapshots.iter() {
            let (key, value) = entry?;
            *counts.entry(tree::SNAPSHOTS).or_default() += 1;
            check_owner(report, tree::SNAPSHOTS, &key, jobs);
            let (job, rest) = keys::split_job(&key);
            match rest.and_then(keys::parse_snapshot_suffix) {
                Some(keys::SnapshotKey::Meta { snapshot_id }) => {
                    if let Some(meta) = report.absorb(frame::unframe_bincode::<SnapshotMeta>(
                        tree::SNAPSHOTS,
                        &key,
                        &value,
                    ))? {
                        report.absorb(frame::check_json(tree::SNAPSHOTS, &key, &meta.json))?;
                        metas.insert((job.to_vec(), snapshot_id.to_vec()), (key.to_vec(), meta));
                    }
                }
                Some(keys::SnapshotKey::Chunk { snapshot_id, index }) => {
                    let (_, tally) = tallies
                        .entry((job.to_vec(), snapshot_id.to_vec()))
                        .or_insert_with(|| (key.to_vec(), ChunkTally::default()));
                    if index != tally.count {
                        tally.broken = true;
                    }
                    match report.absorb(frame::unframe(tree::SNAPSHOTS, &key, &value))? {
                        Some(payload) => {
                            tally.crc.update(payload);
                            tally.len += payload.len() as u64;
                        }
                        None => tally.broken = true,
                    }
                    tally.count = index.saturating_add(1);
                }
                None => report.add(tree::SNAPSHOTS, &key, "malformed snapshot key"),
            }
        }

        let mut complete = HashSet::new();
        for (snapshot, (meta_key, meta)) in metas {
            let problem = match tallies.remove(&snapshot) {
                None if meta.chunk_count == 0 => None,
                None => Some(format!("all {} chunks missing", meta.chunk_count)),
                Some((_, tally)) if tally.broken => {
                    Some("a chunk is missing or unreadable".to_owned())
                }
                Some((_, tally)) if tally.count != meta.chunk_count => Some(format!(
                    "{} chunks, metadata says {}",
                    tally.count, meta.chunk_count
                )),
                Some((_, tally)) if tally.len != meta.state_len => Some(format!(
                    "state is {} bytes, metadata says {}",
                    tally.len, meta.state_len
                )),
                Some((_, tally)) if tally.crc.clone().finalize() != meta.state_crc => {
                    Some("state crc32 differs from metadata".to_owned())
                }
                Some(_) => None,
            };
            match problem {
                Some(reason) => report.add(tree::SNAPSHOTS, &meta_key, reason),
                None => {
                    complete.insert(snapshot);
                }
            }
        }
        for (first_chunk_key, _) in tallies.into_values() {
            report.add(
                tree::SNAPSHOTS,
                &first_chunk_key,
                "chunks without snapshot metadata",
            );
        }
        Ok(complete)
    }
}

/// What the trees hold of one job, as seen while walking them.
#[derive(Debug, Default)]
struct Observed {
    first_seq: Option<u64>,
    last_seq: u64,
    /// Input entries counted (`None`: not counted, the cheap form).
    input: Option<u64>,
    /// The first run of missing sequence numbers, `[from, to]`.
    gap: Option<(u64, u64)>,
    buckets: u64,
    records: u64,
}

impl Observed {
    /// An input key, in key order.
    fn input_seq(&mut self, seq: u64) {
        if self.first_seq.is_some() && seq > self.last_seq + 1 && self.gap.is_none() {
            self.gap = Some((self.last_seq + 1, seq - 1));
        }
        self.first_seq.get_or_insert(seq);
        self.last_seq = seq;
        *self.input.get_or_insert(0) += 1;
    }

    fn result(&mut self, kind: ResultKind) {
        match kind {
            ResultKind::Bucket => self.buckets += 1,
            ResultKind::Record => self.records += 1,
            _ => {}
        }
    }
}

/// What is wrong with one job, given what its trees hold (`seen`), its progress, its tally and
/// the input sequence number its active snapshot covers (`None`: no usable snapshot, the replay
/// starts from the first entry).
fn judge(
    job: &[u8],
    seen: &Observed,
    progress: &Progress,
    tally: Option<Tally>,
    tallied: bool,
    snapshot_seq: Option<u64>,
) -> Vec<(&'static str, Vec<u8>, String)> {
    let mut problems = Vec::new();
    let input_key = |seq: u64| keys::input_key(&keys::raw_job_prefix(job), seq);
    if let Some((from, to)) = seen.gap {
        problems.push((
            tree::INPUT,
            input_key(from),
            format!(
                "input entries {from} to {to} are missing (sequence numbers must run without gaps)"
            ),
        ));
    }
    match seen.first_seq {
        Some(_) if seen.last_seq > progress.last_seq => problems.push((
            tree::INPUT,
            input_key(seen.last_seq),
            format!("input beyond progress.last_seq {}", progress.last_seq),
        )),
        Some(_) if seen.last_seq < progress.last_seq => problems.push((
            tree::INPUT,
            input_key(seen.last_seq + 1),
            format!(
                "input entries {} to {} are missing (progress.last_seq is {})",
                seen.last_seq + 1,
                progress.last_seq,
                progress.last_seq
            ),
        )),
        _ => {}
    }
    // The replay starts after the snapshot's sequence number: everything after it must be there.
    let replay_from = snapshot_seq.unwrap_or(0) + 1;
    match seen.first_seq {
        Some(first) if first > replay_from => problems.push((
            tree::INPUT,
            input_key(replay_from),
            format!(
                "input entries {replay_from} to {} are missing, and the replay from the job's \
                 snapshot needs them",
                first - 1
            ),
        )),
        None if progress.last_seq >= replay_from && tally.is_none_or(|t| t.input > 0) => problems
            .push((
                tree::INPUT,
                input_key(replay_from),
                format!(
                    "input entries {replay_from} to {} are missing, and the replay from the \
                     job's snapshot needs them",
                    progress.last_seq
                ),
            )),
        _ => {}
    }
    match tally {
        None if tallied => problems.push((
            tree::META,
            tally::tally_key(job),
            "job has no tally".to_owned(),
        )),
        None => {}
        Some(tally) => {
            let input_differs = seen.input.is_some_and(|n| n != tally.input)
                || seen.first_seq.is_some_and(|first| {
                    seen.input.is_none() && seen.last_seq - first + 1 != tally.input
                });
            if input_differs || seen.buckets != tally.buckets || seen.records != tally.records {
                let input = match seen.input {
                    Some(n) => n.to_string(),
                    None => seen.first_seq.map_or("no".to_owned(), |first| {
                        format!("entries {first} to {}", seen.last_seq)
                    }),
                };
                problems.push((
                    tree::META,
                    tally::tally_key(job),
                    format!(
                        "the store holds {input} input, {} buckets and {} records, but the job's \
                         tally says {}, {} and {}: keys were lost",
                        seen.buckets, seen.records, tally.input, tally.buckets, tally.records
                    ),
                ));
            }
        }
    }
    problems
}

impl Store {
    /// The input sequence number the job's active snapshot covers; `None` when there is none
    /// or its metadata cannot be read (the replay then starts from the beginning).
    fn active_snapshot_seq(&self, job: &[u8], progress: &Progress) -> Option<u64> {
        let id = progress.latest_snapshot_id.as_ref()?;
        let key = keys::snapshot_meta_key(&keys::raw_job_prefix(job), id);
        let value = self.snapshots.get(key).ok()??;
        frame::unframe_bincode::<SnapshotMeta>(tree::SNAPSHOTS, b"", &value)
            .ok()
            .map(|meta| meta.last_seq)
    }

    /// The cheap check of one job (the module doc): what would make serving it serve lost data.
    /// Each problem is one sentence; an empty list means the job may be served. A panic in sled
    /// while reading is a problem too.
    pub fn check_job(&self, job_id: &str) -> Vec<String> {
        super::contain("checking a job", || self.check_job_inner(job_id))
            .unwrap_or_else(|error| vec![error.to_string()])
    }

    fn check_job_inner(&self, job_id: &str) -> Result<Vec<String>, StoreError> {
        let job = keys::job_key(job_id)?;
        let mut problems: Vec<String> = self.lost().remove(job_id).into_iter().collect();
        let Some(progress) = self.get_progress(job_id)? else {
            problems.push("the job has no progress record".to_owned());
            return Ok(problems);
        };
        let snapshot_seq = self.active_snapshot_seq(job, &progress);
        let prefix = keys::raw_job_prefix(job);
        let end = keys::job_end(job);
        let mut seen = Observed::default();
        let seq_of = |entry: Option<Result<(sled::IVec, sled::IVec), sled::Error>>| {
            entry
                .transpose()
                .map(|found| found.and_then(|(key, _)| keys::input_seq(&key[prefix.len()..])))
        };
        if let Some(first) = seq_of(self.input.range(prefix.as_slice()..end.as_slice()).next())? {
            seen.first_seq = Some(first);
            seen.last_seq = seq_of(
                self.input
                    .range(prefix.as_slice()..end.as_slice())
                    .next_back(),
            )?
            .unwrap_or(first);
            // The input a replay reads is counted: a gap there would be replayed over silently.
            let from = keys::input_key(&prefix, snapshot_seq.unwrap_or(0).saturating_add(1));
            let replayed = self.input.range(from..end.clone()).count() as u64;
            let expected = seen.last_seq - snapshot_seq.unwrap_or(0).max(first - 1);
            if seen.last_seq > snapshot_seq.unwrap_or(0) && replayed != expected {
                problems.push(format!(
                    "{} of the {expected} input entries after sequence number {} are missing",
                    expected.saturating_sub(replayed),
                    snapshot_seq.unwrap_or(0).max(first - 1)
                ));
            }
        }
        let counted = self.count_results(job)?;
        seen.buckets = counted.buckets;
        seen.records = counted.records;
        let tallied = self.meta.contains_key(tally::TALLIED_KEY)?;
        for (_, _, reason) in judge(
            job,
            &seen,
            &progress,
            self.raw_tally(job)?,
            tallied,
            snapshot_seq,
        ) {
            problems.push(reason);
        }
        // A damaged active snapshot is not a problem here: opening falls back to an older one.
        Ok(problems)
    }
}

fn check_owner(
    report: &mut IntegrityReport,
    tree: &'static str,
    key: &[u8],
    jobs: &HashSet<Vec<u8>>,
) {
    match keys::split_job(key) {
        (job, Some(_)) if jobs.contains(job) => {}
        (_, Some(_)) => report.add(tree, key, "orphan: job not in [jobs]"),
        (_, None) => report.add(tree, key, "key has no job prefix"),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{commit_with, progress};
    use crate::store::{frame, keys, tree, ResultKind, SnapshotDoc, Store};

    fn healthy() -> Store {
        let store = Store::temporary().unwrap();
        for job in ["a", "ab"] {
            store
                .create_job(job, br#"{"job_id":"j"}"#, &progress(0))
                .unwrap();
            store
                .commit(
                    job,
                    &commit_with(
                        vec![(1, b"raw".to_vec())],
                        &[(ResultKind::Bucket, 0), (ResultKind::Record, 0)],
                        1,
                    ),
                )
                .unwrap();
            let doc = SnapshotDoc {
                snapshot_id: "s".into(),
                timestamp_ms: 0,
                last_seq: 1,
                json: b"{}".to_vec(),
            };
            let mut p = progress(1);
            p.latest_snapshot_id = Some("s".into());
            store
                .put_snapshot(job, &doc, &vec![3; 3 << 20], &p)
                .unwrap();
        }
        store
            .put_resource(crate::store::ResourceKind::Filter, "f", None, b"{}")
            .unwrap();
        store
            .write_security(&[crate::store::SecurityWrite::Put {
                kind: crate::store::SecurityKind::User,
                name: "u".into(),
                json: b"{}".to_vec(),
            }])
            .unwrap();
        store
    }

    fn reasons(store: &Store) -> Vec<String> {
        store
            .check_integrity()
            .unwrap()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_healthy_store_is_clean_and_every_value_is_counted() {
        let store = healthy();
        let report = store.check_integrity().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        let counted: u64 = report.values_checked.iter().map(|(_, n)| n).sum();
        let stored: usize = store.trees().iter().map(|(_, t)| t.len()).sum();
        assert_eq!(counted, stored as u64);
        assert_eq!(
            report
                .values_checked
                .iter()
                .find(|(name, _)| *name == tree::SNAPSHOTS),
            Some(&(tree::SNAPSHOTS, 8))
        );
    }

    #[test]
    fn a_flipped_byte_anywhere_is_found_with_its_tree_and_key() {
        for victim in tree::ALL {
            let store = healthy();
            let target = store
                .trees()
                .into_iter()
                .find(|(name, _)| *name == victim)
                .unwrap()
                .1;
            let (key, value) = target.last().unwrap().unwrap();
            let mut raw = value.to_vec();
            let last = raw.len() - 1;
            raw[last] ^= 0x40;
            target.insert(&key, raw).unwrap();
            let problems = store.check_integrity().unwrap().problems;
            assert!(
                problems.iter().any(|p| p.tree == victim
                    && p.key == keys::render(&key)
                    && p.reason.contains("crc32")),
                "{victim}: {problems:?}"
            );
        }
    }

    #[test]
    fn well_framed_but_invalid_payloads_are_found() {
        let store = healthy();
        let (key, _) = store.results.first().unwrap().unwrap();
        store
            .results
            .insert(&key, frame::frame(b"{not json").unwrap())
            .unwrap();
        store
            .progress
            .insert(b"a", frame::frame(&[9, 9]).unwrap())
            .unwrap();
        let found = reasons(&store);
        assert!(
            found
                .iter()
                .any(|r| r.starts_with("[results]") && r.contains("not JSON")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|r| r.starts_with("[progress] [a]")),
            "{found:?}"
        );
    }

    #[test]
    fn cross_tree_invariants_are_checked() {
        let store = healthy();
        // Orphan input of a job that does not exist.
        store
            .input
            .insert(
                keys::input_key(&keys::job_prefix("ghost").unwrap(), 1),
                frame::frame(b"x").unwrap(),
            )
            .unwrap();
        // Input beyond what progress covers.
        store
            .input
            .insert(
                keys::input_key(&keys::job_prefix("ab").unwrap(), 9),
                frame::frame(b"x").unwrap(),
            )
            .unwrap();
        // A missing chunk of the active snapshot of "a".
        let chunk = keys::snapshot_chunk_key(
            &keys::snapshot_chunk_prefix(&keys::job_prefix("a").unwrap(), "s"),
            1,
        );
        store.snapshots.remove(chunk).unwrap();
        // A job without progress.
        store
            .jobs
            .insert(b"lonely", frame::frame(b"{}").unwrap())
            .unwrap();
        let found = reasons(&store);
        for expected in [
            "[input] [ghost\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01]: orphan",
            "input beyond progress.last_seq 1",
            "[snapshots] [a\\x00\\x01s]: a chunk is missing",
            "[progress] [a]: latest snapshot [s] is missing or incomplete",
            "[jobs] [lonely]: job has no progress",
            // The stray entry 9 of "ab" also leaves a gap after its entry 1 and its tally short.
            "input entries 2 to 8 are missing",
            "[meta] [tally\\x00ab]: the store holds 2 input, 1 buckets and 1 records, but the job's tally says 1, 1 and 1",
        ] {
            assert!(
                found.iter().any(|r| r.contains(expected)),
                "{expected} not in {found:#?}"
            );
        }
        assert_eq!(found.len(), 7, "{found:#?}");
    }

    #[test]
    fn chunks_without_metadata_and_a_dangling_snapshot_pointer_are_found() {
        let store = healthy();
        store
            .snapshots
            .remove(keys::snapshot_meta_key(
                &keys::job_prefix("ab").unwrap(),
                "s",
            ))
            .unwrap();
        let found = reasons(&store);
        assert!(
            found
                .iter()
                .any(|r| r.contains("chunks without snapshot metadata")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|r| r.contains("[progress] [ab]: latest snapshot [s]")),
            "{found:?}"
        );
    }

    #[test]
    fn the_report_keeps_a_bounded_number_of_problems() {
        let store = Store::temporary().unwrap();
        for seq in 0..(super::MAX_PROBLEMS as u64 + 10) {
            store
                .input
                .insert(keys::input_key(b"x\0", seq), b"bad".to_vec())
                .unwrap();
        }
        let report = store.check_integrity().unwrap();
        assert_eq!(report.problems.len(), super::MAX_PROBLEMS);
        // Each key is both an orphan and badly framed.
        assert_eq!(
            report.problems_omitted,
            2 * (super::MAX_PROBLEMS as u64 + 10) - super::MAX_PROBLEMS as u64
        );
        assert!(!report.is_clean());
    }
}
