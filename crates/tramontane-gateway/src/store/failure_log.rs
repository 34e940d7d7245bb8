//! Store failures in the log without flooding it: while Redis is away every request fails
//! the same way, so one warning per period says so, with how many were left out since.
//! Each gateway owns its log (in its [`crate::metrics::Metrics`], beside the failure count),
//! so two gateways in one process never silence each other.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreError;

/// At most one warning per period.
pub const PERIOD: Duration = Duration::from_secs(10);

pub struct FailureLog {
    state: Mutex<LogState>,
}

struct LogState {
    last: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    pub const fn new() -> FailureLog {
        FailureLog {
            state: Mutex::new(LogState {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// Logs a failure of `operation` unless one was logged in the last period; returns
    /// whether it was.
    pub fn warn(&self, operation: &str, error: &StoreError) -> bool {
        self.warn_at(operation, error, Instant::now())
    }

    fn warn_at(&self, operation: &str, error: &StoreError, now: Instant) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < PERIOD)
        {
            state.suppressed += 1;
            return false;
        }
        let suppressed = std::mem::take(&mut state.suppressed);
        state.last = Some(now);
        drop(state);
        tracing::warn!(
            operation,
            %error,
            similar_failures_not_logged = suppressed,
            "the limit store failed; the workspace's store_failure decides what the request gets"
        );
        true
    }
}

impl Default for FailureLog {
    fn default() -> FailureLog {
        FailureLog::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_period() {
        let log = FailureLog::new();
        let error = StoreError("Redis admit: connection refused".into());
        let start = Instant::now();
        assert!(log.warn_at("admit", &error, start));
        for i in 1..50 {
            assert!(!log.warn_at("admit", &error, start + Duration::from_millis(i * 100)));
        }
        assert_eq!(log.state.lock().unwrap().suppressed, 49);
        assert!(log.warn_at("reserve", &error, start + PERIOD));
        assert_eq!(log.state.lock().unwrap().suppressed, 0);
    }
}
