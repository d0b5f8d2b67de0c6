//! Wall-clock instants as messages carry them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant to the millisecond. On the wire it is RFC 3339 UTC text, such as
/// `2026-11-28T10:00:00.123Z`; in memory it is eight bytes, so stamping a message neither
/// allocates nor formats (the text is written only when the message is serialised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WallTime {
    unix_ms: u64,
}

impl WallTime {
    /// 1970-01-01T00:00:00.000Z, for tests that compare messages without their stamps.
    pub const UNIX_EPOCH: WallTime = WallTime { unix_ms: 0 };

    /// Now, to the millisecond (a clock set before 1970 reads as 1970).
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// The instant `unix_ms` milliseconds after the Unix epoch.
    pub fn from_unix_ms(unix_ms: u64) -> Self {
        Self { unix_ms }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> u64 {
        self.unix_ms
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_ms)
    }
}

impl From<SystemTime> for WallTime {
    fn from(time: SystemTime) -> Self {
        let unix_ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self { unix_ms }
    }
}

impl std::fmt::Display for WallTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        humantime::format_rfc3339_millis(self.to_system_time()).fmt(f)
    }
}

impl std::str::FromStr for WallTime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_rfc3339_weak(text)
            .map(WallTime::from)
            .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-11-28T10:00:00.000Z: {e}"))
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text() {
        let time: WallTime = "2026-11-28T10:00:00.123Z".parse().unwrap();
        assert_eq!(time.unix_ms(), 1_795_860_000_123);
        assert_eq!(time.to_string(), "2026-11-28T10:00:00.123Z");
        assert_eq!(serde_json::to_string(&time).unwrap(), "\"2026-11-28T10:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<WallTime>("\"2026-11-28T10:00:00.123Z\"").unwrap(), time);
    }

    #[test]
    fn names_what_is_wrong() {
        let error = serde_json::from_str::<WallTime>("\"yesterday\"").unwrap_err().to_string();
        assert!(error.contains("`yesterday` is not an RFC 3339 time"), "{error}");
    }
}
