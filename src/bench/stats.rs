//! Latency histograms and the figures the table shows.

use std::fmt;
use std::time::Duration;

/// A latency histogram in microseconds, about 1.5 % precise: exact below 128 µs, then 64
/// buckets per power of two. Cheap enough to record a million samples a second.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const LINEAR: u64 = 128;
const SUB_BUCKETS: u64 = 64;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; bucket_of(u64::MAX) + 1],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let log = 63 - u64::from(micros.leading_zeros()); // >= 7
    let shift = log - 6;
    (LINEAR + (log - 7) * SUB_BUCKETS + ((micros >> shift) & (SUB_BUCKETS - 1))) as usize
}

/// The smallest value of a bucket.
fn value_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < LINEAR {
        return bucket;
    }
    let log = (bucket - LINEAR) / SUB_BUCKETS + 7;
    let sub = (bucket - LINEAR) % SUB_BUCKETS;
    (SUB_BUCKETS + sub) << (log - 6)
}

impl Histogram {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value below which `q` (0..=1) of the samples fall.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(value_of(bucket).min(self.max));
            }
        }
        self.max()
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max)
    }

    pub fn summary(&self) -> Latency {
        Latency {
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            max: self.max(),
        }
    }
}

/// p50, p99 and max of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {} / {}",
            millis(self.p50),
            millis(self.p99),
            millis(self.max)
        )
    }
}

/// `0.42 ms`, `12.3 ms`, `1534 ms`.
pub fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `31,250`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The median of some measurements (the middle one; the lower middle for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000u64 {
            histogram.record(Duration::from_micros(micros));
        }
        let p50 = histogram.quantile(0.5).as_micros() as f64;
        let p99 = histogram.quantile(0.99).as_micros() as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.02, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.02, "{p99}");
        assert_eq!(histogram.max(), Duration::from_micros(10_000));
        for micros in [0, 1, 127, 128, 129, 1000, 65_535, 1 << 40] {
            let bucket = bucket_of(micros);
            assert!(value_of(bucket) <= micros && bucket_of(value_of(bucket)) == bucket);
        }
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(thousands(31250), "31,250");
        assert_eq!(thousands(999), "999");
        assert_eq!(millis(Duration::from_micros(420)), "0.42 ms");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
