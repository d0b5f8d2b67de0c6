//! Per-vehicle sequence bookkeeping: which sequence numbers a consumer has processed, so that
//! redeliveries are dropped and gaps are counted, even when entries arrive out of order (a
//! reclaimed entry is older than the new ones read before it).

use std::collections::BTreeSet;

/// The sequence numbers seen from one sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    /// Every number below this was seen.
    next: u64,
    /// Numbers seen above `next`.
    above: BTreeSet<u64>,
}

impl SeqSet {
    /// Records `seq`; returns whether it is new (false: a duplicate to drop).
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq < self.next {
            return false;
        }
        if seq > self.next {
            return self.above.insert(seq);
        }
        self.next += 1;
        while self.above.remove(&self.next) {
            self.next += 1;
        }
        true
    }

    /// How many distinct numbers were seen.
    pub fn count(&self) -> u64 {
        self.next + self.above.len() as u64
    }

    /// Numbers missing below the highest seen: messages lost, or not yet arrived.
    pub fn missing(&self) -> u64 {
        self.above.last().map_or(0, |&max| max + 1 - self.count())
    }

    /// The highest number seen.
    pub fn highest(&self) -> Option<u64> {
        self.above.last().copied().or(self.next.checked_sub(1))
    }

    /// Compact text for storage: `next` or `next:a,b,c`.
    pub fn encode(&self) -> String {
        if self.above.is_empty() {
            return self.next.to_string();
        }
        let above: Vec<String> = self.above.iter().map(u64::to_string).collect();
        format!("{}:{}", self.next, above.join(","))
    }

    /// Reads [`encode`](Self::encode)'s text.
    pub fn decode(text: &str) -> Option<Self> {
        let (next, above) = text.split_once(':').unwrap_or((text, ""));
        let above = above.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect::<Option<BTreeSet<u64>>>()?;
        Some(Self { next: next.parse().ok()?, above })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_out_of_order_numbers() {
        let mut seen = SeqSet::default();
        assert!(seen.insert(0) && seen.insert(1));
        assert!(!seen.insert(1), "a duplicate");
        assert!(seen.insert(4) && seen.insert(5));
        assert_eq!(seen.missing(), 2);
        assert!(!seen.insert(4), "a duplicate above the contiguous part");
        assert!(seen.insert(3) && seen.insert(2), "late arrivals fill the gap");
        assert_eq!((seen.missing(), seen.count(), seen.highest()), (0, 6, Some(5)));
        assert_eq!(seen, SeqSet { next: 6, above: BTreeSet::new() });
    }

    #[test]
    fn encoding_round_trips() {
        let mut seen = SeqSet::default();
        for seq in [0, 1, 2, 7, 9] {
            seen.insert(seq);
        }
        assert_eq!(seen.encode(), "3:7,9");
        assert_eq!(SeqSet::decode("3:7,9"), Some(seen));
        assert_eq!(SeqSet::decode("12"), Some(SeqSet { next: 12, above: BTreeSet::new() }));
        assert_eq!(SeqSet::decode("x"), None);
    }
}
