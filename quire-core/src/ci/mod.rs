//! The CI side of quire: running commands, their logs, and the push source.

pub mod cri;
pub mod process;
pub mod push;
