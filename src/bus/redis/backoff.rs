//! Exponential backoff with jitter, so that a fleet of clients does not reconnect in lockstep.

use std::time::Duration;

use rand::Rng;

/// Delays of `base * 2^attempt`, capped at `max`, each scaled by a random factor in [0.5, 1).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base` and never waiting longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, attempt: 0 }
    }

    /// The delay before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let exponential = self.base.saturating_mul(1u32 << self.attempt.min(16)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        exponential.mul_f64(rand::rng().random_range(0.5..1.0))
    }

    /// Whether the last try failed.
    pub fn failing(&self) -> bool {
        self.attempt > 0
    }

    /// Back to the first delay after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_jitter_and_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] < Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400) && delays[3] < Duration::from_millis(800));
        assert!(delays.iter().all(|d| *d < Duration::from_secs(2)));
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(100));
    }
}
