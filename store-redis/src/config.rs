//! The store's settings, validated once when the store is made.

use std::time::Duration;

/// How a [`RedisStore`](crate::RedisStore) names its keys, how long it waits
/// for Redis, and how it falls back.
///
/// ```
/// use std::time::Duration;
/// use ratekeeper_redis::RedisConfig;
///
/// let config = RedisConfig::default()
///     .with_key_prefix("myapp:rl:")
///     .with_deadline(Duration::from_millis(20))
///     .with_fleet_size(8);
/// assert_eq!(config.deadline(), Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    pub(crate) key_prefix: String,
    pub(crate) deadline: Duration,
    pub(crate) policy_ttl: Duration,
    pub(crate) fleet_size: u32,
    pub(crate) probe_backoff_min: Duration,
    pub(crate) probe_backoff_max: Duration,
    pub(crate) max_batch: usize,
    pub(crate) batches_in_flight: usize,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            key_prefix: String::from("ratekeeper:"),
            deadline: Duration::from_millis(50),
            policy_ttl: Duration::from_secs(3600),
            fleet_size: 4,
            probe_backoff_min: Duration::from_millis(100),
            probe_backoff_max: Duration::from_secs(10),
            max_batch: 128,
            batches_in_flight: 2,
        }
    }
}

impl RedisConfig {
    /// Prefix of every key the store writes (`"ratekeeper:"` by default).
    /// It may not contain `{` or `}`, which would change the hash tags.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> RedisConfig {
        self.key_prefix = prefix.into();
        self
    }

    /// How long an operation may wait for Redis before it is decided on the
    /// fallback (50 ms by default; more than zero).
    pub fn with_deadline(mut self, deadline: Duration) -> RedisConfig {
        self.deadline = deadline;
        self
    }

    /// How long a learned policy stays in Redis after it was last written
    /// (one hour by default; at least 1 ms).
    pub fn with_policy_ttl(mut self, ttl: Duration) -> RedisConfig {
        self.policy_ttl = ttl;
        self
    }

    /// How many instances are expected to share each limit (4 by default;
    /// at least 1). On fallback each instance takes this share of a limit.
    pub fn with_fleet_size(mut self, instances: u32) -> RedisConfig {
        self.fleet_size = instances;
        self
    }

    /// The shortest and longest wait between two probes of Redis while on
    /// fallback (100 ms and 10 s by default); the wait doubles after each
    /// failed probe.
    pub fn with_probe_backoff(mut self, min: Duration, max: Duration) -> RedisConfig {
        self.probe_backoff_min = min;
        self.probe_backoff_max = max;
        self
    }

    /// The most operations sent in one script call (128 by default), and
    /// how many such calls may be in flight at once (2 by default). Both at
    /// least 1.
    pub fn with_batching(mut self, max_batch: usize, batches_in_flight: usize) -> RedisConfig {
        self.max_batch = max_batch;
        self.batches_in_flight = batches_in_flight;
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The deadline of each operation.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// How long a policy lives in Redis.
    pub fn policy_ttl(&self) -> Duration {
        self.policy_ttl
    }

    /// The expected number of instances sharing a limit.
    pub fn fleet_size(&self) -> u32 {
        self.fleet_size
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.key_prefix.contains(['{', '}']) {
            return Err("the key prefix may not contain '{' or '}'");
        }
        if self.deadline.is_zero() {
            return Err("the deadline must be longer than zero");
        }
        if self.policy_ttl < Duration::from_millis(1) {
            return Err("the policy time to live must be at least 1 ms");
        }
        if self.fleet_size == 0 {
            return Err("the fleet size must be at least 1");
        }
        if self.probe_backoff_min.is_zero() || self.probe_backoff_max < self.probe_backoff_min {
            return Err("the probe backoff needs 0 < min <= max");
        }
        if self.max_batch == 0 || self.batches_in_flight == 0 {
            return Err("batches need at least one operation and one call in flight");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_refused() {
        assert_eq!(RedisConfig::default().validate(), Ok(()));
        assert!(RedisConfig::default().with_key_prefix("a{b").validate().is_err());
        assert!(
            RedisConfig::default()
                .with_deadline(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(RedisConfig::default().with_fleet_size(0).validate().is_err());
        assert!(
            RedisConfig::default()
                .with_policy_ttl(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(
            RedisConfig::default()
                .with_probe_backoff(Duration::from_secs(2), Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(RedisConfig::default().with_batching(0, 1).validate().is_err());
    }
}
