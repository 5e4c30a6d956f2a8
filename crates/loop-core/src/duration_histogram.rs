//! Durations counted in buckets, so a median can be read from a handful of counts instead of
//! every session. A bucket is a duration to two significant figures, in steps that keep every
//! bucket within a quarter of its lower bound; the median interpolates inside its bucket.

use std::collections::BTreeMap;

/// The bucket a duration (in milliseconds) falls in: 0 under 100 ms; otherwise its number of
/// digits × 100 plus its first two digits rounded down to a step of 2 (10–19), 5 (20–39) or 10
/// (40–99). `12_345` → `512` (12,000–14,000 ms). The store's migration computes the same in SQL.
pub fn bucket_of(ms: i64) -> i64 {
    if ms < 100 {
        return 0;
    }
    let digits = ms.ilog10() as i64 + 1;
    let lead = ms / 10_i64.pow(digits as u32 - 2);
    digits * 100 + lead - lead % step(lead)
}

fn step(lead: i64) -> i64 {
    if lead < 20 {
        2
    } else if lead < 40 {
        5
    } else {
        10
    }
}

/// Where a bucket starts and how wide it is, in milliseconds.
fn bounds(bucket: i64) -> (i64, i64) {
    if bucket <= 0 {
        return (0, 100);
    }
    let (digits, lead) = (bucket / 100, bucket % 100);
    let scale = 10_i64.pow((digits - 2).max(0) as u32);
    (lead * scale, step(lead) * scale)
}

/// Counts of durations per bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationHistogram(BTreeMap<i64, u64>);

impl DurationHistogram {
    pub fn add(&mut self, bucket: i64, count: u64) {
        if count > 0 {
            *self.0.entry(bucket).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The nearest-rank median, placed inside its bucket as if the bucket's durations were
    /// spread evenly across it.
    pub fn median(&self) -> Option<i64> {
        let rank = self.count().div_ceil(2);
        let mut before = 0;
        for (&bucket, &n) in &self.0 {
            if before + n >= rank {
                let (start, width) = bounds(bucket);
                let within = (rank - before) as f64 - 0.5;
                return Some(start + (width as f64 * within / n as f64).round() as i64);
            }
            before += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_two_significant_figures_in_steps() {
        assert_eq!(
            [0, 99, 100, 119, 125, 399, 400, 12_345, 59_999].map(bucket_of),
            [0, 0, 310, 310, 312, 335, 340, 512, 550]
        );
        for ms in [100, 150, 2_500, 61_000, 3_599_999, 86_400_000] {
            let (start, width) = bounds(bucket_of(ms));
            assert!(start <= ms && ms < start + width, "{ms} in [{start}, {})", start + width);
            assert!(width * 4 <= start.max(100), "buckets stay within a quarter of their start");
        }
    }

    #[test]
    fn the_median_is_placed_within_its_bucket() {
        let mut h = DurationHistogram::default();
        assert_eq!(h.median(), None);
        for ms in [60_000, 61_000, 62_000, 600_000] {
            h.add(bucket_of(ms), 1);
        }
        assert_eq!(h.median(), Some(65_000), "rank 2 of the 3 in 60,000–70,000");
        let mut one = DurationHistogram::default();
        one.add(bucket_of(30 * 60_000), 1);
        assert_eq!(one.median(), Some(1_900_000), "the middle of 1,800,000–2,000,000");
    }
}
