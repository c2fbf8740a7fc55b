//! STP groups as code: a desired-state file, a pure plan, and a careful apply.
//!
//! ```text
//! file ──DesiredState::load──► DesiredState ─┐
//! StpAdmin (Client) ──read_live──► LiveState ─┴─► Plan::compute (pure) ──► Plan
//!                                                   render_plan / render_plan_markdown /
//!                                                   to_json_string / --out
//! apply:  Proposal::for_desired / for_saved   (read: key of another account refused)
//!   ──► Proposal::check     (stale plan, edited plan, removal limit; before any prompt)
//!   ──► Checked::send       (read again if older than max_read_age, check again,
//!                            then the steps in dependency order, independent ones side
//!                            by side, each answer checked)
//! ```
//!
//! Gate's API shapes the rules: groups cannot be deleted or renamed, so a plan never
//! destroys and live groups the file does not declare are left alone (reported as
//! unmanaged); names are not unique and Gate's name filter is fuzzy, so names are compared
//! exactly here and a file can pin a group by `id`; a create is not idempotent, so a create
//! whose answer was lost is settled by listing again and is never sent twice; an order
//! carries one `stp_id`, so a user may be declared in one group only (our reading: Gate does
//! not document it), and a user moving between groups is added only once its removal is
//! confirmed.
//!
//! Reading needs only the [`StpAdmin`] trait, implemented for [`Client`](crate::Client)
//! (build it with [`pace_rate_limits(true)`](crate::ClientBuilder::pace_rate_limits) and
//! idempotent-write retries for large applies). TOML files need the `desired-toml`
//! feature; JSON always works.

mod apply;
mod gate;
mod limits;
mod live;
mod markdown;
mod model;
mod names;
mod parse;
mod plan;
mod render;
mod schedule;
mod send;
mod validate;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use apply::{
    ApplyError, ApplyOptions, Checked, DEFAULT_MAX_CREATES, DEFAULT_MAX_READ_AGE,
    DEFAULT_MAX_REMOVALS, Proposal,
};
pub use limits::{MAX_DOCUMENT_BYTES, MAX_GROUPS, MAX_NAME_CHARS, MAX_PLAN_BYTES, Oversized};
pub use live::{READ_CONCURRENCY, ReadError, StpAdmin, read_live};
pub use markdown::{markdown_code_span, render_plan_markdown, render_refusal_markdown};
pub use model::{DesiredGroup, DesiredState, GroupInfo, LiveGroup, LiveState, Member, SubAccount};
pub use names::NameWarning;
pub use parse::{DesiredFile, Format, ParseError, read_text};
pub use plan::{
    Action, GroupChange, MAX_IDS_PER_REQUEST, PLAN_FORMAT, Plan, PlanError, PlanFileError, Step,
    UnmanagedGroup,
};
pub use render::{RenderOptions, quoted, render_plan, summary};
pub use schedule::APPLY_CONCURRENCY;
pub use send::{
    ApplyReport, LOST_CREATE_INTERVAL, LOST_CREATE_LISTINGS, Progress, StopReason, StopReport,
    outcome_unknown,
};
pub use validate::{Problem, Problems};
