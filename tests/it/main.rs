//! The integration tests, one binary: headless ECS tests with pinned time, CLI end to end.

mod common;
mod determinism;
mod failures;
mod messages;
mod rules;
mod scenarios;
mod cli;
