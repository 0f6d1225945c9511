//! The in-flight body budget: request body bytes being read or held, across all connections, and
//! their limit (`max_in_flight_bytes`). `request::read_body` reserves from it as a body arrives; the
//! server puts one budget on every request (`server.rs`). Talks to nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::error::{ApiError, EsType};

/// The bytes of request bodies being read or held by their requests, across all connections, and
/// their limit. A flood of parallel large posts is refused with 429 once the limit is spent, so
/// bodies cannot exhaust memory (the role of Elasticsearch's in-flight requests circuit breaker).
#[derive(Debug)]
pub struct BodyBudget {
    limit: u64,
    used: AtomicU64,
}

/// Bytes taken from a [`BodyBudget`]; given back when dropped (when the request's answer is built).
#[derive(Debug)]
pub struct BodyReservation {
    pub(super) budget: Option<Arc<BodyBudget>>,
    pub(super) bytes: u64,
}

impl BodyBudget {
    pub fn new(limit: u64) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes currently taken.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    fn take(&self, bytes: u64) -> Result<(), ApiError> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .map(|_| ())
            .map_err(|used| {
                ApiError::new(
                    EsType::RejectedExecution,
                    format!(
                        "rejected execution: [{bytes}b] of request body would exceed the in-flight \
                         body limit [{}b] ([{used}b] in use); retry later",
                        self.limit
                    ),
                )
            })
    }
}

impl BodyReservation {
    pub(super) fn on(budget: Option<&Arc<BodyBudget>>) -> BodyReservation {
        BodyReservation {
            budget: budget.cloned(),
            bytes: 0,
        }
    }

    /// Takes `bytes` more, or refuses with 429 (keeping what it holds).
    pub(super) fn grow(&mut self, bytes: u64) -> Result<(), ApiError> {
        if let Some(budget) = &self.budget {
            budget.take(bytes)?;
            self.bytes += bytes;
        }
        Ok(())
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::header::{HeaderMap, HeaderValue};

    use super::super::request::read_body;
    use super::*;

    #[tokio::test]
    async fn the_budget_is_held_while_the_body_is_and_refuses_beyond_it() {
        let budget = BodyBudget::new(15);
        let body = || Full::new(Bytes::from_static(b"0123456789"));
        let mut declared = HeaderMap::new();
        declared.insert("content-length", HeaderValue::from_static("10"));
        let (first, held) = read_body(&declared, body(), 100, Some(&budget))
            .await
            .unwrap();
        assert_eq!((first.len(), budget.used()), (10, 10));
        // Declared or not, a second body does not fit while the first is held.
        for headers in [declared.clone(), HeaderMap::new()] {
            let error = read_body(&headers, body(), 100, Some(&budget))
                .await
                .unwrap_err();
            assert_eq!(
                (error.status(), error.kind),
                (429, EsType::RejectedExecution)
            );
            assert_eq!(budget.used(), 10, "a refused body gives back what it took");
        }
        drop(held);
        assert_eq!(budget.used(), 0);
        let (_, held) = read_body(&HeaderMap::new(), body(), 100, Some(&budget))
            .await
            .unwrap();
        assert_eq!(budget.used(), 10);
        drop(held);
    }
}
