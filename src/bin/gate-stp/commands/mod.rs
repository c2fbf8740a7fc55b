//! One module per command: its arguments (`Args`) and what it does (`run`).
//!
//! Commands import the settings, the output layer and the failures, never one another
//! (apart from `demo`, which shows the others' work) and never the clap tree above them.

pub(crate) mod apply;
pub(crate) mod completions;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod groups;
pub(crate) mod man;
pub(crate) mod mcp;
pub(crate) mod mock;
pub(crate) mod plan;
pub(crate) mod profiles;
pub(crate) mod sign;
pub(crate) mod time;
pub(crate) mod users;
