//! Request rates per key (a token, a sign-in address): a bucket per key that refills evenly
//! over a minute, kept on each node. A key may burst up to its whole minute's allowance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before idle ones (whose bucket has refilled) are dropped.
const KEPT_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct RateLimiter(Mutex<HashMap<String, Bucket>>);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one request from `key`'s allowance of `per_minute`, or says how long to wait.
    pub fn take(&self, key: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let full = f64::from(per_minute.max(1));
        let per_second = full / 60.0;
        let mut buckets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= KEPT_KEYS {
            buckets.retain(|_, b| b.left + now.duration_since(b.at).as_secs_f64() * per_second < full);
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket { left: full, at: now });
        b.left = (b.left + now.duration_since(b.at).as_secs_f64() * per_second).min(full);
        b.at = now;
        if b.left >= 1.0 {
            b.left -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.left) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_spends_its_minute_then_waits_for_the_refill() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("a", 3, t0), Ok(()));
        }
        let wait = limiter.take("a", 3, t0).unwrap_err();
        assert_eq!(wait.as_secs(), 20, "one request comes back every 20 s");
        assert_eq!(limiter.take("b", 3, t0), Ok(()), "keys are separate");
        assert_eq!(limiter.take("a", 3, t0 + Duration::from_secs(20)), Ok(()));
    }
}
