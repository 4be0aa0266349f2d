//! The auth backoff: a destination whose credentials or grants are broken must not wake the warehouse on
//! every batch, because each DDL statement costs the user money.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::Clock;

/// How the backoff grows: `initial`, times `multiplier` per consecutive failure, at most `max`, no jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Growth per consecutive failure.
    pub multiplier: f64,
    /// Longest wait.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(3600),
        }
    }
}

impl BackoffConfig {
    /// The wait after `failures` consecutive failures (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            return self.max;
        }
        Duration::from_secs_f64(secs.max(0.0))
    }
}

/// The backoff is running: DDL is refused without calling the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the warehouse is in auth backoff for {remaining:?} more after {failures} consecutive authentication or \
     authorization failures (last: {cause}); fix the destination's credentials or grants, the jobs will be retried"
)]
pub struct BackoffActive {
    /// Time left before DDL is tried again.
    pub remaining: Duration,
    /// Consecutive failures so far.
    pub failures: u32,
    /// The error that started or last lengthened the backoff.
    pub cause: String,
}

#[derive(Debug)]
struct Failing {
    failures: u32,
    until: Instant,
    cause: String,
}

/// The backoff of one destination. Cheap to clone; clones share the state.
#[derive(Debug, Clone)]
pub struct AuthBackoff {
    config: BackoffConfig,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<Option<Failing>>>,
}

impl AuthBackoff {
    /// A backoff that is not running.
    pub fn new(config: BackoffConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            state: Arc::default(),
        }
    }

    /// `Ok` when DDL may run now; otherwise how long the backoff still runs and why.
    pub fn check(&self) -> Result<(), BackoffActive> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(failing) = state.as_ref() else {
            return Ok(());
        };
        let now = self.clock.now();
        if now >= failing.until {
            return Ok(());
        }
        Err(BackoffActive {
            remaining: failing.until - now,
            failures: failing.failures,
            cause: failing.cause.clone(),
        })
    }

    /// Starts or lengthens the backoff after an authentication or authorization failure; returns the wait.
    pub fn record_failure(&self, cause: &str) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let failures = state.as_ref().map_or(0, |f| f.failures).saturating_add(1);
        let delay = self.config.delay(failures);
        *state = Some(Failing {
            failures,
            until: self.clock.now() + delay,
            cause: cause.to_owned(),
        });
        tracing::warn!(
            failures,
            ?delay,
            cause,
            "auth backoff: no DDL until it passes"
        );
        delay
    }

    /// Ends the backoff: an upload met no authentication or authorization failure.
    pub fn reset(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.take().is_some() {
            tracing::info!("auth backoff reset");
        }
    }

    /// Consecutive failures recorded since the last reset.
    pub fn failures(&self) -> u32 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |f| f.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn delays_double_from_one_second_up_to_an_hour() {
        let config = BackoffConfig::default();
        let secs: Vec<u64> = (1..=14).map(|n| config.delay(n).as_secs()).collect();
        assert_eq!(
            secs,
            [
                1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
            ]
        );
        assert_eq!(config.delay(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn backoff_runs_grows_and_resets() {
        let clock = Arc::new(ManualClock::default());
        let backoff = AuthBackoff::new(BackoffConfig::default(), clock.clone());
        assert!(backoff.check().is_ok());

        assert_eq!(
            backoff.record_failure("JWT token is invalid"),
            Duration::from_secs(1)
        );
        let active = backoff.check().unwrap_err();
        assert_eq!(
            (active.remaining, active.failures),
            (Duration::from_secs(1), 1)
        );
        assert!(active.to_string().contains("JWT token is invalid"));

        clock.advance(Duration::from_millis(999));
        assert!(backoff.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(
            backoff.check().is_ok(),
            "the backoff ends when its wait passes"
        );

        assert_eq!(backoff.record_failure("again"), Duration::from_secs(2));
        assert_eq!(backoff.record_failure("again"), Duration::from_secs(4));
        assert_eq!(
            backoff.check().unwrap_err().remaining,
            Duration::from_secs(4)
        );

        backoff.reset();
        assert!(backoff.check().is_ok());
        assert_eq!(backoff.failures(), 0);
        assert_eq!(
            backoff.record_failure("after reset"),
            Duration::from_secs(1)
        );
    }
}
