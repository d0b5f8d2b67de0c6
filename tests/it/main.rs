//! The integration tests, one binary: headless ECS tests with pinned time, CLI end to end, and
//! the Redis transport against throwaway redis-server instances.

mod api;
mod architecture;
mod common;
mod determinism;
mod failures;
mod messages;
mod missions;
mod ml;
mod orchestration;
mod postgres_server;
mod redis_server;
mod tsdb_server;
mod rules;
mod scenarios;
mod store;
mod lifecycle;
mod cli;
mod transport;
mod upgrade;
mod orchestrator_redis;
