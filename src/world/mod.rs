//! The world both sides share: terrain with hills, a road network of junctions and depots,
//! and routing on it. Bevy-free: the simulator draws and drives on it, the centre plans
//! missions on it, and neither needs the other to do so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use glam::Vec2;
use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::scenario::Scenario;

/// A terrain wave: height varies as a sum of a few of these.
#[derive(Debug, Clone, Copy)]
struct Wave {
    direction: Vec2,
    wavenumber: f32,
    phase: f32,
    amplitude: f32,
}

/// Terrain height as a smooth function of position, so that height and grade are exact and
/// cost nothing to store.
#[derive(Debug, Clone)]
pub struct Terrain {
    waves: Vec<Wave>,
    base_altitude_m: f32,
    /// Half the side of the square world in metres.
    pub half_size_m: f32,
}

impl Terrain {
    fn new(rng: &mut SmallRng, size_m: f32, relief_m: f32, base_altitude_m: f32) -> Self {
        let count = 6;
        let mut waves: Vec<Wave> = (0..count)
            .map(|i| {
                let angle = rng.random_range(0.0..std::f32::consts::TAU);
                // Wavelengths from a third of the world down to about 600 m: hills, not bumps.
                let wavelength = (size_m / 3.0) / (1.0 + i as f32 * 0.8);
                Wave {
                    direction: Vec2::from_angle(angle),
                    wavenumber: std::f32::consts::TAU / wavelength.max(600.0),
                    phase: rng.random_range(0.0..std::f32::consts::TAU),
                    amplitude: 1.0 / (1.0 + i as f32),
                }
            })
            .collect();
        let total: f32 = waves.iter().map(|w| w.amplitude).sum();
        for wave in &mut waves {
            wave.amplitude *= relief_m / (2.0 * total);
        }
        Self { waves, base_altitude_m, half_size_m: size_m / 2.0 }
    }

    /// Altitude in metres at ground position (x, z).
    pub fn height(&self, x: f32, z: f32) -> f32 {
        let p = Vec2::new(x, z);
        self.base_altitude_m
            + self.waves.iter().map(|w| w.amplitude * (w.direction.dot(p) * w.wavenumber + w.phase).sin()).sum::<f32>()
    }

    /// Height gradient (dh/dx, dh/dz), dimensionless.
    pub fn gradient(&self, x: f32, z: f32) -> Vec2 {
        let p = Vec2::new(x, z);
        self.waves
            .iter()
            .map(|w| w.direction * (w.amplitude * w.wavenumber * (w.direction.dot(p) * w.wavenumber + w.phase).cos()))
            .sum()
    }

    /// Lowest possible altitude, for colouring.
    pub fn base_altitude_m(&self) -> f32 {
        self.base_altitude_m
    }
}

/// A road between two nodes.
#[derive(Debug, Clone, Copy)]
pub struct Road {
    /// One end.
    pub a: u32,
    /// Other end.
    pub b: u32,
    /// Speed limit in metres per second.
    pub limit_mps: f32,
}

/// A depot in the world.
#[derive(Debug, Clone)]
pub struct Depot {
    /// Name from the scenario.
    pub name: String,
    /// Road node it sits on.
    pub node: u32,
}

/// Road junctions, roads and depots, with shortest-time routes to every depot.
#[derive(Debug, Clone)]
pub struct RoadNetwork {
    /// Node positions on the ground plane (x, z) in metres.
    pub nodes: Vec<Vec2>,
    /// Roads.
    pub roads: Vec<Road>,
    /// For each node, (neighbour, road index).
    pub adjacency: Vec<Vec<(u32, u32)>>,
    /// Depots.
    pub depots: Vec<Depot>,
    /// `next_hop[d][n]`: the next node on the fastest route from node `n` to depot `d`.
    next_hop: Vec<Vec<u32>>,
    /// The terrain under the roads.
    pub terrain: Terrain,
}

impl RoadNetwork {
    /// Builds the world of a scenario: deterministic in its `world.road_seed`.
    pub fn generate(scenario: &Scenario) -> Self {
        let spec = &scenario.world;
        let mut rng = SmallRng::seed_from_u64(spec.road_seed ^ 0x005E_ED0F_7E11);
        let terrain = Terrain::new(&mut rng, spec.size_m, spec.relief_m, spec.base_altitude_m);
        let half = spec.size_m / 2.0;
        let cells = ((spec.size_m / spec.junction_spacing_m).round() as usize).max(2);
        let pitch = spec.size_m / cells as f32;
        let side = cells + 1;
        let mut nodes = Vec::with_capacity(side * side);
        for row in 0..side {
            for col in 0..side {
                // Interior junctions are jittered so the grid does not look drawn with a ruler.
                let edge = row == 0 || col == 0 || row == cells || col == cells;
                let jitter = if edge { Vec2::ZERO } else { Vec2::new(rng.random_range(-0.25..0.25), rng.random_range(-0.25..0.25)) * pitch };
                nodes.push(Vec2::new(-half + col as f32 * pitch, -half + row as f32 * pitch) + jitter);
            }
        }
        let mut roads = Vec::new();
        // Every third row and column is an arterial road with a higher limit.
        let limit = |line: usize| if line.is_multiple_of(3) { 80.0 / 3.6 } else { 50.0 / 3.6 };
        for row in 0..side {
            for col in 0..side {
                let i = (row * side + col) as u32;
                if col + 1 < side {
                    roads.push(Road { a: i, b: i + 1, limit_mps: limit(row) });
                }
                if row + 1 < side {
                    roads.push(Road { a: i, b: i + side as u32, limit_mps: limit(col) });
                }
            }
        }
        let mut depots = Vec::new();
        for depot in &scenario.fleet.depots {
            let at = Vec2::new(depot.x_m, depot.z_m);
            let nearest = (0..nodes.len()).min_by(|&a, &b| nodes[a].distance(at).total_cmp(&nodes[b].distance(at))).expect("grid has nodes");
            let node = nodes.len() as u32;
            nodes.push(at);
            roads.push(Road { a: nearest as u32, b: node, limit_mps: 30.0 / 3.6 });
            depots.push(Depot { name: depot.name.clone(), node });
        }
        let mut adjacency = vec![Vec::new(); nodes.len()];
        for (index, road) in roads.iter().enumerate() {
            adjacency[road.a as usize].push((road.b, index as u32));
            adjacency[road.b as usize].push((road.a, index as u32));
        }
        let mut network = Self { nodes, roads, adjacency, depots, next_hop: Vec::new(), terrain };
        network.next_hop = network.depots.iter().map(|d| network.routes_to(d.node)).collect();
        network
    }

    /// Dijkstra on travel time towards `target`: each node's time to it in seconds, and its
    /// next hop on the way.
    pub fn fastest_to(&self, target: u32) -> (Vec<f32>, Vec<u32>) {
        let mut best = vec![f32::INFINITY; self.nodes.len()];
        let mut next = vec![u32::MAX; self.nodes.len()];
        let mut queue = BinaryHeap::new();
        best[target as usize] = 0.0;
        next[target as usize] = target;
        // Times in milliseconds as integers keep the heap ordering total and deterministic.
        queue.push(Reverse((0u64, target)));
        while let Some(Reverse((_, node))) = queue.pop() {
            for &(neighbour, road) in &self.adjacency[node as usize] {
                let seconds = self.road_length(road) / self.roads[road as usize].limit_mps;
                let candidate = best[node as usize] + seconds;
                if candidate < best[neighbour as usize] {
                    best[neighbour as usize] = candidate;
                    next[neighbour as usize] = node;
                    queue.push(Reverse(((candidate * 1000.0) as u64, neighbour)));
                }
            }
        }
        (best, next)
    }

    fn routes_to(&self, target: u32) -> Vec<u32> {
        self.fastest_to(target).1
    }

    /// The next node from `here` on the fastest route to node `target`. Depots' routes are
    /// kept; any other target costs one search of the network, done once per junction reached.
    pub fn next_towards(&self, target: u32, here: u32) -> u32 {
        match self.depots.iter().position(|d| d.node == target) {
            Some(depot) => self.next_hop[depot][here as usize],
            None => self.fastest_to(target).1[here as usize],
        }
    }

    /// The node closest to ground position `at`.
    pub fn nearest_node(&self, at: Vec2) -> u32 {
        (0..self.nodes.len() as u32).min_by(|&a, &b| self.nodes[a as usize].distance_squared(at).total_cmp(&self.nodes[b as usize].distance_squared(at))).unwrap_or(0)
    }

    /// Road junctions, not counting depots: nodes `0..junctions()`.
    pub fn junctions(&self) -> u32 {
        (self.nodes.len() - self.depots.len()) as u32
    }

    /// Length of a road in metres.
    pub fn road_length(&self, road: u32) -> f32 {
        let road = &self.roads[road as usize];
        self.nodes[road.a as usize].distance(self.nodes[road.b as usize])
    }

    /// The next node from `node` towards depot `depot`.
    pub fn next_towards_depot(&self, depot: usize, node: u32) -> u32 {
        self.next_hop[depot][node as usize]
    }

    /// Speed limit on the road between two adjacent nodes, in metres per second.
    pub fn limit_between(&self, a: u32, b: u32) -> f32 {
        self.adjacency[a as usize]
            .iter()
            .find(|(n, _)| *n == b)
            .map_or(30.0 / 3.6, |&(_, road)| self.roads[road as usize].limit_mps)
    }

    /// A random neighbour of `node`, avoiding `previous` where there is a choice.
    pub fn wander(&self, node: u32, previous: u32, rng: &mut impl Rng) -> u32 {
        let options = &self.adjacency[node as usize];
        let forward: Vec<u32> = options.iter().map(|&(n, _)| n).filter(|&n| n != previous).collect();
        if forward.is_empty() { previous } else { forward[rng.random_range(0..forward.len())] }
    }

    /// The index of the depot called `name`.
    pub fn depot_named(&self, name: &str) -> Option<usize> {
        self.depots.iter().position(|d| d.name == name)
    }

    /// Ground position of a node, in metres.
    pub fn position(&self, node: u32) -> Vec2 {
        self.nodes[node as usize]
    }
}
