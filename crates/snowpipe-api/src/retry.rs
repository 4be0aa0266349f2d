//! The retry policy: when to make another attempt and how long to wait, for every client of the workspace.
//!
//! Which failures are worth another attempt is each protocol's own classifier (the sidecar's is
//! `sidecar::classify`); the policy here knows nothing of errors but `Retry-After`, so each can be tested
//! alone. Time is reached through the [`Sleep`] trait, so a test can record the exact schedule instead of
//! waiting it out.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime},
};

use backon::{BackoffBuilder, ExponentialBuilder};
use http::HeaderMap;

/// When to retry a failed call, and how long to wait in between.
///
/// The wait grows exponentially from `min_delay`, doubling each attempt, capped at `max_delay`, with random
/// jitter so that many clients do not retry in step. A `Retry-After` from the service lengthens a wait (up to
/// `max_retry_after`), never shortens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: usize,
    /// Wait before the first retry.
    pub min_delay: Duration,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
    /// Whether to add random jitter to each wait.
    pub jitter: bool,
    /// Longest wait a `Retry-After` header can ask for.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            jitter: true,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryConfig {
    /// The backoff schedule (waits before each retry, before `Retry-After` is applied).
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries);
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }

    /// The waits the schedule would make, without jitter's randomness when jitter is off.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        self.backoff().build()
    }

    /// The wait before the next attempt: the schedule's `next`, lengthened to the `Retry-After` the failed
    /// attempt's answer asked for (capped at `max_retry_after`). `None` (the schedule is exhausted) stays
    /// `None`.
    pub fn adjust(
        &self,
        retry_after: Option<Duration>,
        next: Option<Duration>,
    ) -> Option<Duration> {
        // The schedule's float arithmetic leaves stray nanoseconds (200.000003ms); whole milliseconds read
        // better in logs and make the schedule exact.
        let next = next?;
        let next = Duration::from_millis(u64::try_from(next.as_millis()).unwrap_or(u64::MAX));
        match retry_after {
            Some(after) => Some(next.max(after.min(self.max_retry_after))),
            None => Some(next),
        }
    }
}

/// Reads `Retry-After`: whole seconds, or an HTTP date (a date in the past means "now").
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Waiting between attempts. The client sleeps through this trait, so tests can record the waits and
/// return at once.
pub trait Sleep: Send + Sync + std::fmt::Debug {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn schedule_doubles_from_min_to_max_without_jitter() {
        let config = RetryConfig {
            max_retries: 9,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            jitter: false,
            ..RetryConfig::default()
        };
        let millis: Vec<u128> = config.delays().map(|d| d.as_millis()).collect();
        assert_eq!(
            millis,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
    }

    #[test]
    fn jitter_stays_within_one_step() {
        let config = RetryConfig {
            max_retries: 5,
            ..RetryConfig::default()
        };
        let delays: Vec<Duration> = config.delays().collect();
        assert_eq!(delays.len(), 5);
        let mut base = Duration::from_millis(100);
        for delay in delays {
            assert!(
                delay >= base && delay <= base * 2,
                "{delay:?} outside [{base:?}, {:?}]",
                base * 2
            );
            base = (base * 2).min(Duration::from_secs(10));
        }
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_and_is_capped() {
        let config = RetryConfig::default();
        let after = |secs| Some(Duration::from_secs(secs));
        let next = Some(Duration::from_millis(400));
        assert_eq!(config.adjust(after(3), next), after(3));
        assert_eq!(config.adjust(after(0), next), next);
        assert_eq!(config.adjust(after(3600), next), after(60));
        assert_eq!(config.adjust(after(3), None), None);
        assert_eq!(config.adjust(None, next), next);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            retry_after(&headers, now)
        };
        assert_eq!(header("7"), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(header(&later), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(header(&earlier), Some(Duration::ZERO));
        assert_eq!(header("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
