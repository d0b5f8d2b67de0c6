//! The 3D scene: terrain, roads and depots built from the road network, and a body mesh for
//! each vehicle that follows the terrain and takes its health colour.

use bevy::asset::RenderAssetUsages;
use bevy::camera_controller::free_camera::FreeCamera;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;

use super::panel::Selected;
use crate::model::{RuleDecision, VehicleStatus};
use crate::sim::vehicle::{Condition, Faults, Navigation, RuleState};
use crate::sim::WorldMap;
use crate::world::RoadNetwork;
use crate::sim::Vehicle;

/// Vehicles are drawn larger than life so that they stay visible from kilometres away.
const VEHICLE_DRAW_SCALE: f32 = 12.0;
/// Terrain mesh resolution, vertices per side.
const TERRAIN_GRID: usize = 160;

/// Materials for each health class.
#[derive(Resource)]
struct HealthMaterials {
    healthy: Handle<StandardMaterial>,
    degraded: Handle<StandardMaterial>,
    critical: Handle<StandardMaterial>,
    parked: Handle<StandardMaterial>,
    selected: Handle<StandardMaterial>,
}

/// The visible body of a vehicle, a child of its rigid body.
#[derive(Component)]
pub(super) struct Body;

pub(super) fn plugin(app: &mut App) {
    app.insert_resource(ClearColor(Color::srgb(0.62, 0.75, 0.88)));
    app.add_systems(Startup, (build_world, spawn_camera));
    app.add_systems(Update, (dress_new_vehicles, follow_terrain, colour_by_health));
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((
        Camera3d::default(),
        Transform::from_xyz(-400.0, 1500.0, 2600.0).looking_at(Vec3::new(0.0, 150.0, 0.0), Vec3::Y),
        FreeCamera { walk_speed: 300.0, run_speed: 1200.0, ..default() },
    ));
    commands.spawn((
        DirectionalLight { illuminance: 9_000.0, shadow_maps_enabled: false, ..default() },
        Transform::from_xyz(3000.0, 5000.0, 2000.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight { brightness: 600.0, ..default() });
}

fn build_world(
    mut commands: Commands,
    network: Res<WorldMap>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    commands.spawn((
        Name::new("Terrain"),
        Mesh3d(meshes.add(terrain_mesh(&network))),
        MeshMaterial3d(materials.add(StandardMaterial { perceptual_roughness: 0.95, ..default() })),
    ));
    commands.spawn((
        Name::new("Roads"),
        Mesh3d(meshes.add(road_mesh(&network))),
        MeshMaterial3d(materials.add(StandardMaterial { base_color: Color::srgb(0.18, 0.18, 0.2), perceptual_roughness: 0.9, ..default() })),
    ));
    let depot_mesh = meshes.add(Cuboid::new(90.0, 30.0, 90.0));
    let depot_material = materials.add(StandardMaterial { base_color: Color::srgb(0.2, 0.35, 0.8), ..default() });
    for depot in &network.depots {
        let p = network.position(depot.node);
        let y = network.terrain.height(p.x, p.y);
        commands.spawn((Name::new(depot.name.clone()), Mesh3d(depot_mesh.clone()), MeshMaterial3d(depot_material.clone()), Transform::from_xyz(p.x, y + 15.0, p.y)));
    }
    let colour = |c: Color| StandardMaterial { base_color: c, perceptual_roughness: 0.6, ..default() };
    commands.insert_resource(HealthMaterials {
        healthy: materials.add(colour(Color::srgb(0.15, 0.75, 0.25))),
        degraded: materials.add(colour(Color::srgb(0.95, 0.7, 0.1))),
        critical: materials.add(colour(Color::srgb(0.9, 0.12, 0.1))),
        parked: materials.add(colour(Color::srgb(0.55, 0.55, 0.6))),
        selected: materials.add(StandardMaterial { base_color: Color::WHITE, emissive: LinearRgba::rgb(2.0, 2.0, 0.6), ..default() }),
    });
}

fn terrain_mesh(network: &RoadNetwork) -> Mesh {
    let terrain = &network.terrain;
    let half = terrain.half_size_m * 1.15;
    let n = TERRAIN_GRID;
    let mut positions = Vec::with_capacity(n * n);
    let mut normals = Vec::with_capacity(n * n);
    let mut colours = Vec::with_capacity(n * n);
    let base = terrain.base_altitude_m();
    for row in 0..n {
        for col in 0..n {
            let x = -half + 2.0 * half * col as f32 / (n - 1) as f32;
            let z = -half + 2.0 * half * row as f32 / (n - 1) as f32;
            let h = terrain.height(x, z);
            let g = terrain.gradient(x, z);
            positions.push([x, h, z]);
            normals.push(Vec3::new(-g.x, 1.0, -g.y).normalize().to_array());
            // Valleys green, hilltops brown.
            let t = ((h - base) / 120.0 + 0.5).clamp(0.0, 1.0);
            colours.push([0.25 + 0.3 * t, 0.5 - 0.15 * t, 0.2 + 0.05 * t, 1.0]);
        }
    }
    let mut indices = Vec::with_capacity((n - 1) * (n - 1) * 6);
    for row in 0..n - 1 {
        for col in 0..n - 1 {
            let i = (row * n + col) as u32;
            let below = i + n as u32;
            indices.extend_from_slice(&[i, below, i + 1, i + 1, below, below + 1]);
        }
    }
    Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::RENDER_WORLD)
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
        .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, normals)
        .with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, colours)
        .with_inserted_indices(Indices::U32(indices))
}

fn road_mesh(network: &RoadNetwork) -> Mesh {
    let mut positions: Vec<[f32; 3]> = Vec::new();
    let mut indices: Vec<u32> = Vec::new();
    for road in &network.roads {
        let a = network.position(road.a);
        let b = network.position(road.b);
        let along = (b - a).normalize_or_zero();
        let side = Vec2::new(-along.y, along.x) * if road.limit_mps > 20.0 { 14.0 } else { 9.0 };
        let samples = ((a.distance(b) / 25.0).ceil() as usize).max(1);
        let first = positions.len() as u32;
        for s in 0..=samples {
            let p = a.lerp(b, s as f32 / samples as f32);
            for edge in [p - side, p + side] {
                positions.push([edge.x, network.terrain.height(edge.x, edge.y) + 1.0, edge.y]);
            }
        }
        for s in 0..samples as u32 {
            let i = first + 2 * s;
            indices.extend_from_slice(&[i, i + 1, i + 2, i + 1, i + 3, i + 2]);
        }
    }
    let normals = vec![[0.0, 1.0, 0.0]; positions.len()];
    Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::RENDER_WORLD)
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
        .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, normals)
        .with_inserted_indices(Indices::U32(indices))
}

fn dress_new_vehicles(
    mut commands: Commands,
    vehicles: Query<(Entity, &Vehicle), Added<Vehicle>>,
    materials: Option<Res<HealthMaterials>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut cache: Local<Vec<(crate::model::VehicleModel, Handle<Mesh>)>>,
) {
    let Some(materials) = materials else { return };
    for (entity, vehicle) in &vehicles {
        let size = vehicle.spec().size_m * VEHICLE_DRAW_SCALE;
        let mesh = match cache.iter().find(|(m, _)| *m == vehicle.model) {
            Some((_, handle)) => handle.clone(),
            None => {
                // Length along -Z (forward), height along Y, width along X.
                let handle = meshes.add(Cuboid::new(size.z, size.y, size.x));
                cache.push((vehicle.model, handle.clone()));
                handle
            }
        };
        let body = commands
            .spawn((Body, Mesh3d(mesh), MeshMaterial3d(materials.healthy.clone()), Transform::default()))
            .observe(select_on_click)
            .id();
        commands.entity(entity).add_child(body);
    }
}

fn select_on_click(click: On<Pointer<Click>>, parents: Query<&ChildOf>, mut selected: ResMut<Selected>) {
    if let Ok(parent) = parents.get(click.entity) {
        selected.0 = Some(parent.parent());
    }
}

fn follow_terrain(network: Res<WorldMap>, vehicles: Query<(&Transform, &Vehicle, &Children), Without<Body>>, mut bodies: Query<&mut Transform, With<Body>>) {
    for (transform, vehicle, children) in &vehicles {
        let p = transform.translation;
        let lift = network.terrain.height(p.x, p.z) + vehicle.spec().size_m.y * VEHICLE_DRAW_SCALE / 2.0;
        for child in children.iter() {
            if let Ok(mut body) = bodies.get_mut(child) {
                body.translation.y = lift;
            }
        }
    }
}

fn colour_by_health(
    selected: Res<Selected>,
    materials: Option<Res<HealthMaterials>>,
    vehicles: Query<(Entity, &Condition, &Faults, &RuleState, &Navigation, &Children), With<Vehicle>>,
    mut bodies: Query<&mut MeshMaterial3d<StandardMaterial>, With<Body>>,
) {
    let Some(materials) = materials else { return };
    for (entity, condition, faults, rules, nav, children) in &vehicles {
        let failed = faults.0.iter().any(|f| f.failed_at_s.is_some());
        let handle = if selected.0 == Some(entity) {
            &materials.selected
        } else if failed || rules.decision >= Some(RuleDecision::LimpMode) || condition.health.worst() < 0.3 {
            &materials.critical
        } else if rules.decision.is_some() || condition.health.worst() < 0.8 {
            &materials.degraded
        } else if matches!(nav.status, VehicleStatus::Idle | VehicleStatus::InMaintenance) {
            &materials.parked
        } else {
            &materials.healthy
        };
        for child in children.iter() {
            if let Ok(mut material) = bodies.get_mut(child)
                && material.0 != *handle
            {
                material.0 = handle.clone();
            }
        }
    }
}
