//! Everything about running a pipeline: the wire events, the pipeline model,
//! the runtime given to jobs, processes and their logs, and the scheduler.

pub mod cri;
pub mod event;
pub mod exits;
pub mod load;
pub mod pipeline;
pub mod process;
pub mod push;
pub mod record;
pub mod run;
pub mod runtime;
pub mod schedule;
mod site;
mod spawn;
pub mod stdlib;
pub mod watchdog;
