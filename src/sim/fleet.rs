//! Fleet-wide resources every simulation plugin may read: the scenario, the world map, the
//! fleet's size and membership, and the index from vehicle id to entity.

use std::sync::Arc;

use bevy::prelude::*;

use crate::model::VehicleId;
use crate::scenario::Scenario;
use crate::world::RoadNetwork;

/// The scenario being run.
#[derive(Resource, Debug, Clone)]
pub struct ScenarioResource(pub Scenario);

/// The world the fleet drives in (shared with the centre, which plans missions on the same
/// map).
#[derive(Resource, Debug, Clone, Deref)]
pub struct WorldMap(pub Arc<RoadNetwork>);

/// Vehicle entities by id, for routing commands and injections. Sparse when this process
/// simulates a shard of the fleet.
#[derive(Resource, Debug, Default)]
pub struct VehicleIndex(pub(crate) Vec<Option<Entity>>);

impl VehicleIndex {
    /// The entity of vehicle `id`, if it is simulated here.
    pub fn get(&self, id: VehicleId) -> Option<Entity> {
        (id.0 as usize).checked_sub(1).and_then(|i| self.0.get(i)).copied().flatten()
    }
}

/// Fleet parameters resolved from the scenario and the command line.
#[derive(Resource, Debug, Clone)]
pub struct FleetConfig {
    /// Vehicles in the whole fleet.
    pub count: u32,
    /// Which of them this process simulates.
    pub members: Members,
    /// Run seed.
    pub seed: u64,
    /// Seconds vehicles wait at depots.
    pub dwell_s: f32,
}

/// Which vehicles of the fleet one process simulates. A vehicle's behaviour depends only on the
/// scenario, the seed and its id, so shards of a fleet together produce exactly the messages the
/// whole fleet produces in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Members {
    /// Every vehicle.
    #[default]
    All,
    /// Shard `index` (from 0) of `count`: vehicles whose number minus one is `index` modulo `count`.
    Shard {
        /// This shard, from 0.
        index: u32,
        /// Shards in all.
        count: u32,
    },
    /// One vehicle.
    One(VehicleId),
}

impl Members {
    /// Whether vehicle `id` is simulated here.
    pub fn contains(self, id: VehicleId) -> bool {
        match self {
            Members::All => true,
            Members::Shard { index, count } => (id.0.wrapping_sub(1)) % count == index,
            Members::One(one) => one == id,
        }
    }

    /// Parses `I/N`, shards numbered from 1 as people count them.
    pub fn parse_shard(text: &str) -> Result<Members, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("`{text}`: expected I/N, like 1/2"))?;
        let i: u32 = i.trim().parse().map_err(|_| format!("`{text}`: shard `{i}` is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| format!("`{text}`: shard count `{n}` is not a number"))?;
        if n == 0 || i == 0 || i > n {
            return Err(format!("`{text}`: shards are numbered 1 to N, and N is at least 1"));
        }
        Ok(Members::Shard { index: i - 1, count: n })
    }
}

/// When each simulated vehicle's telematics unit is out of touch (the scenario's
/// `[[outages]]`), as simulated seconds from and to.
#[derive(Resource, Debug, Default, Clone)]
pub struct Outages(std::collections::BTreeMap<VehicleId, Vec<(f64, f64)>>);

impl Outages {
    /// The outages of `scenario` that hit vehicles simulated here.
    pub fn from_scenario(scenario: &Scenario, members: Members) -> Self {
        let mut by_vehicle: std::collections::BTreeMap<VehicleId, Vec<(f64, f64)>> = Default::default();
        for outage in &scenario.outages {
            let spec = outage.get_ref();
            let from = spec.start.as_secs_f64();
            for &vehicle in spec.vehicles.iter().filter(|v| members.contains(**v)) {
                by_vehicle.entry(vehicle).or_default().push((from, from + spec.duration.as_secs_f64()));
            }
        }
        Self(by_vehicle)
    }

    /// Whether `vehicle` is out of touch at simulated second `at`.
    pub fn dark(&self, vehicle: VehicleId, at: f64) -> bool {
        self.0.get(&vehicle).is_some_and(|periods| periods.iter().any(|&(from, to)| from <= at && at < to))
    }

    /// Whether any vehicle ever is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
