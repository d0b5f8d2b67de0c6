//! Setup of external plugins, one file each.

pub mod rapier;
