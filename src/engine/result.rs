//! Result documents: the Elasticsearch JSON of what a finalized (or interim) bucket produced, keyed
//! for the store's `results` tree. The one place a bucket becomes documents, for every committer.

use crate::engine::JobError;
use crate::model::BucketResult;
use crate::store::{self, ResultDoc, ResultKind};

/// The documents of one bucket: the bucket at ordinal 0, its records and its influencers at 0..n,
/// and the category definitions that changed up to it.
pub fn result_docs(
    job_id: &str,
    bucket: &BucketResult,
    processing_ms: u64,
    out: &mut Vec<ResultDoc>,
) -> Result<(), JobError> {
    let encode = |value: &serde_json::Value| {
        serde_json::to_vec(value)
            .map_err(|e| JobError::Store(store::StoreError::Encode(e.to_string())))
    };
    out.push(ResultDoc {
        kind: ResultKind::Bucket,
        timestamp_ms: bucket.timestamp,
        ordinal: 0,
        json: encode(&bucket.bucket_json(job_id, processing_ms))?,
    });
    let records = bucket.records_json(job_id);
    let influencers = bucket.influencers_json(job_id);
    let kinds = [
        (ResultKind::Record, records),
        (ResultKind::Influencer, influencers),
    ];
    for (kind, docs) in kinds {
        for (ordinal, doc) in docs.iter().enumerate() {
            out.push(ResultDoc {
                kind,
                timestamp_ms: bucket.timestamp,
                ordinal: ordinal as u32,
                json: encode(doc)?,
            });
        }
    }
    for (ordinal, row) in bucket.model_plot_json(job_id).iter().enumerate() {
        out.push(ResultDoc {
            kind: ResultKind::ModelPlot,
            timestamp_ms: bucket.timestamp,
            ordinal: ordinal as u32,
            json: encode(row)?,
        });
    }
    // A category definition has one key (its id) and is rewritten whenever it changes.
    for category in &bucket.categories {
        out.push(ResultDoc {
            kind: ResultKind::Category,
            timestamp_ms: 0,
            ordinal: u32::try_from(category.id).unwrap_or(u32::MAX),
            json: encode(&category.to_json(job_id))?,
        });
    }
    Ok(())
}
