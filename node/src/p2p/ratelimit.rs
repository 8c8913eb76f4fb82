//! Per-peer request budgets: a token bucket per peer, so one busy or
//! hostile peer cannot keep the node from serving everyone else.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Requests a peer may make in a burst.
pub const BURST: f64 = 200.0;
/// Requests a peer may make per second, sustained.
pub const PER_SECOND: f64 = 50.0;
/// Buckets idle this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

pub struct RateLimiter<K> {
    burst: f64,
    per_second: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(burst: f64, per_second: f64) -> Self {
        Self {
            burst,
            per_second,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`; false when its budget is spent.
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        if self.buckets.len() > 10_000 {
            self.buckets
                .retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
        }
        let (tokens, last) = self.buckets.entry(key.clone()).or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_capped_and_budgets_refill_per_peer() {
        let mut limiter = RateLimiter::new(3.0, 10.0);
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.allow(&"a", start)));
        assert!(!limiter.allow(&"a", start), "the burst is spent");
        assert!(
            limiter.allow(&"b", start),
            "another peer has its own budget"
        );
        assert!(
            limiter.allow(&"a", start + Duration::from_millis(100)),
            "one token back after 100 ms"
        );
        assert!(!limiter.allow(&"a", start + Duration::from_millis(100)));
    }
}
