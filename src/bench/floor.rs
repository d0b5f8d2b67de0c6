//! The physics floor of `aegis bench sim`: what rapier alone costs for a fleet's bodies, so the
//! simulation's speed can be read as a share of it on any machine.
//!
//! The same bodies as vehicles (dynamic, ground-plane locks, no gravity, never sleeping, a
//! vehicle's mass and inertia), in the same app shape (minimal plugins, the single-threaded
//! executor, one rapier step per 50 ms fixed step), with one system setting each body's force
//! every step as the drive model does, and nothing else: no terrain, sensors, rules,
//! telemetry or bus.

use std::time::{Duration, Instant};

use bevy::ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_rapier3d::prelude::*;

use crate::sim::clock::{PHYSICS_HZ, SimClock};
use crate::sim::vehicle::VehicleBody;

/// A body of the floor: a vehicle's body, and a number to vary its driving by.
#[derive(Component)]
#[require(VehicleBody)]
struct Body(f32);

/// Vehicle-seconds per wall second for `vehicles` bodies stepped for `duration` of simulated
/// time.
pub fn bench(vehicles: u32, duration: Duration) -> f64 {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin));
    app.world_mut().resource_mut::<Time<Virtual>>().set_max_delta(Duration::from_secs(3600));
    app.add_plugins(crate::third_party::rapier::plugin);
    app.init_resource::<SimClock>();
    app.insert_resource(Time::<Fixed>::from_hz(f64::from(PHYSICS_HZ)));
    app.add_systems(Startup, move |mut commands: Commands| {
        for i in 0..vehicles {
            let (mass, size) = (3_000.0 + (i % 3) as f32 * 5_500.0, Vec3::new(6.0, 2.6, 2.2));
            let inertia = mass * (size.x * size.x + size.z * size.z) / 12.0;
            commands.spawn((
                Body(i as f32),
                Transform::from_xyz((i % 100) as f32 * 20.0, 0.0, (i / 100) as f32 * 20.0),
                AdditionalMassProperties::MassProperties(MassProperties { mass, principal_inertia: Vec3::splat(inertia), ..default() }),
            ));
        }
    });
    app.add_systems(FixedUpdate, (tick, push).chain().before(PhysicsSet::SyncBackend));
    for schedule in [FixedUpdate.intern(), Update.intern(), PostUpdate.intern(), First.intern(), PreUpdate.intern(), Last.intern()] {
        app.edit_schedule(schedule, |s| {
            s.set_executor(SingleThreadedExecutor::new());
        });
    }
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(PHYSICS_HZ));
    app.finish();
    app.cleanup();
    app.update();
    let start = app.world().resource::<SimClock>().seconds();
    let started = Instant::now();
    while app.world().resource::<SimClock>().seconds() - start < duration.as_secs_f64() {
        app.update();
    }
    let simulated = app.world().resource::<SimClock>().seconds() - start;
    f64::from(vehicles) * simulated / started.elapsed().as_secs_f64()
}

fn tick(mut clock: ResMut<SimClock>) {
    clock.steps += 1;
}

/// A force along the heading and a yaw torque that vary per body and step, as a driver's do.
fn push(clock: Res<SimClock>, mut bodies: Query<(&Body, &Transform, &Velocity, &mut ExternalForce)>) {
    let t = clock.seconds() as f32;
    bodies.par_iter_mut().for_each(|(body, transform, velocity, mut force)| {
        let heading = transform.forward();
        let throttle = 0.5 + 0.5 * (t * 0.1 + body.0).sin();
        let drag = velocity.linear * velocity.linear.length() * 2.0;
        force.force = heading * 8_000.0 * throttle - drag;
        force.torque = Vec3::Y * 2_000.0 * (t * 0.3 + body.0).cos();
    });
}
