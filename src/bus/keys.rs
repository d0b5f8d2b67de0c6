//! Where messages live in Redis: the key layout of docs/PROTOCOL.md.
//!
//! Vehicles are spread over [`PARTITIONS`] partitions. Every key of a partition carries the hash
//! tag `{pNN}`, so on a Redis Cluster one partition (and so one vehicle) lives in one slot and a
//! partition's multi-key transactions stay legal, while different partitions spread over slots.

use crate::model::{MessageKind, VehicleId};

/// Partitions of the fleet. A protocol constant: producers and consumers must agree on it.
pub const PARTITIONS: u16 = 16;

/// Largest `data` field a consumer accepts; larger entries are dead-lettered.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// The streams of one partition, by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Vehicle to centre: telemetry, heartbeats, events, command acknowledgements.
    Uplink,
    /// Centre to vehicle: commands.
    Downlink,
    /// Centre to operators and storage: alerts, presence changes.
    Central,
    /// Entries a consumer could not read, with the reason.
    DeadLetter,
}

impl Family {
    /// Every family that carries envelopes.
    pub const MESSAGE_FAMILIES: [Family; 3] = [Family::Uplink, Family::Downlink, Family::Central];

    /// The family an envelope kind travels in.
    pub fn of(kind: MessageKind) -> Family {
        match kind {
            MessageKind::Telemetry | MessageKind::Heartbeat | MessageKind::Event | MessageKind::CommandAck => Family::Uplink,
            MessageKind::Command => Family::Downlink,
            MessageKind::Alert | MessageKind::Presence => Family::Central,
        }
    }

    /// Name used in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Uplink => "uplink",
            Family::Downlink => "downlink",
            Family::Central => "central",
            Family::DeadLetter => "deadletter",
        }
    }
}

/// The partition vehicle `id` belongs to: `(number - 1) mod 16`, so consecutive vehicles spread.
pub fn partition_of(id: VehicleId) -> u16 {
    (id.0.saturating_sub(1) % u32::from(PARTITIONS)) as u16
}

/// Key names under one prefix (`aegis` unless several fleets share a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A partition's stream of one family, e.g. `aegis:{p03}:uplink`.
    pub fn stream(&self, family: Family, partition: u16) -> String {
        format!("{}:{{p{partition:02}}}:{}", self.prefix, family.as_str())
    }

    /// Every partition's stream of one family, in partition order.
    pub fn streams(&self, family: Family) -> Vec<String> {
        (0..PARTITIONS).map(|p| self.stream(family, p)).collect()
    }

    /// A consumer group's processed-sequence record for one partition (a hash: vehicle to
    /// sequence numbers seen), written in the same transaction as the group's acknowledgements.
    pub fn seen(&self, partition: u16, group: &str) -> String {
        format!("{}:{{p{partition:02}}}:seen:{group}", self.prefix)
    }

    /// Where each vehicle's sequence numbering stands (a hash: vehicle to the next number),
    /// kept by producers so that a restarted one continues instead of repeating numbers.
    pub fn next_seq(&self, partition: u16) -> String {
        format!("{}:{{p{partition:02}}}:next-seq", self.prefix)
    }

    /// Latest known state of a partition's vehicles (a hash: vehicle to JSON), kept by the
    /// orchestrator.
    pub fn vehicles(&self, partition: u16) -> String {
        format!("{}:{{p{partition:02}}}:vehicles", self.prefix)
    }

    /// The orchestrator's fleet summary (a JSON string).
    pub fn fleet_status(&self) -> String {
        format!("{}:fleet:status", self.prefix)
    }

    /// Every alert the centre keeps (a hash: id to JSON).
    pub fn alerts(&self) -> String {
        format!("{}:alerts", self.prefix)
    }

    /// Every command the centre issued (a hash: id to JSON).
    pub fn commands(&self) -> String {
        format!("{}:commands", self.prefix)
    }

    /// Every mission (a hash: id to JSON).
    pub fn missions(&self) -> String {
        format!("{}:missions", self.prefix)
    }

    /// The counters a restarted centre continues from (a JSON string).
    pub fn centre_cursor(&self) -> String {
        format!("{}:centre:cursor", self.prefix)
    }

    /// The run the fleet on this prefix belongs to (a JSON string): set by the first shard,
    /// read by the others and by `aegis store`.
    pub fn run(&self) -> String {
        format!("{}:run", self.prefix)
    }

    /// Operators' requests (a stream).
    pub fn operator_requests(&self) -> String {
        format!("{}:operator:requests", self.prefix)
    }

    /// The answer to one operator request (a list, expiring).
    pub fn operator_reply(&self, request_id: &str) -> String {
        format!("{}:operator:reply:{request_id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vehicles_keys_share_one_hash_tag() {
        let keys = Keys::new("aegis");
        let p = partition_of(VehicleId(19));
        assert_eq!(p, 2);
        assert_eq!(keys.stream(Family::Uplink, p), "aegis:{p02}:uplink");
        assert_eq!(keys.seen(p, "orchestrator"), "aegis:{p02}:seen:orchestrator");
        assert_eq!(keys.vehicles(p), "aegis:{p02}:vehicles");
    }
}
