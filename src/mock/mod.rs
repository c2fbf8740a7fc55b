//! An in-process emulator of Gate's API v4 STP endpoints (feature `mock`).
//!
//! It serves, under `/api/v4`, the eight operations of `openapi/gate-stp.yaml`:
//! `GET /spot/time` (public), `GET`/`POST /account/stp_groups`,
//! `GET`/`POST`/`DELETE /account/stp_groups/{stp_id}/users`, `GET /account/detail` and
//! `GET /sub_accounts`, with the fragment's models.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use gate_stp::mock::{Emulator, EmulatorConfig, World, demo};
//!
//! let emulator = Emulator::start(World::demo(), EmulatorConfig::default()).await?;
//! let base_url = emulator.base_url(); // http://127.0.0.1:PORT/api/v4
//! // ... point a client with demo::MAIN_KEY / demo::MAIN_SECRET at base_url ...
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it models
//!
//! - **Authentication from the wire** (independent of [`crate::signing`]): HMAC-SHA512 of
//!   the upper-case method, the raw path, the form-decoded raw query, the hex SHA-512 of the
//!   exact body bytes and the `Timestamp` value as sent. Answers, in this order: a missing
//!   or empty `KEY`/`Timestamp`/`SIGN` → 400 MISSING_REQUIRED_HEADER ("Missing required
//!   header: Timestamp"); unknown key → 401 INVALID_KEY; a Timestamp that is not Unix
//!   seconds (`1541993715` or `1541993715.4796917`) → 400 INVALID_PARAM_VALUE; more than
//!   60 s from the emulator's time → 401 REQUEST_EXPIRED; wrong SIGN → 401
//!   INVALID_SIGNATURE "Signature mismatch".
//! - **Gate's rules**: only a main account creates a group (sub-account: 403 FORBIDDEN);
//!   only the creator lists, adds or removes members (403 FORBIDDEN; unknown group 404
//!   NOT_FOUND); only the caller's main account and its sub-accounts may be added or removed
//!   (another main's user: 403 FORBIDDEN; no such account: 400 INVALID_PARAM_VALUE); a
//!   request naming any refused user changes nothing; adding a member twice is harmless;
//!   DELETE takes `user_id` in the query, one id or several joined by commas (missing: 400
//!   MISSING_REQUIRED_PARAM), and removing a valid non-member is a no-op; a user already in
//!   another group cannot be added (400 INVALID_PARAM_VALUE, naming the user and that
//!   group; Gate does not document this: it is our reading, since an order carries one
//!   `stp_id`, and [`EmulatorConfig::one_group_per_user`] switches it off); `name` on the
//!   list is a case-insensitive substring match. Group ids start at 100001 and increase;
//!   `create_time` is the emulator's time in seconds; add and delete return the members
//!   after the change, ordered by user id.
//! - **Who the caller is**, from the world file: `GET /account/detail` answers any key
//!   with its account's `user_id` (and what Gate reports for an ordinary, unrestricted
//!   account: no IP or pair restriction, tier 0, classic key mode, no copy trading).
//!   `GET /sub_accounts` lists the caller's sub-accounts by user id, with their
//!   `login_name` (the world file's, else `sub_<user_id>`), `remark`, state 1 (normal),
//!   type 1 (regular) or 3 (`cross_margin = true`) and, as `create_time`, the time the
//!   emulator started; without `type` or with `type=1` only regular ones, with `type=0`
//!   every kind, anything else 400 INVALID_PARAM_VALUE; a sub-account's key gets 403
//!   FORBIDDEN.
//! - **Bad input**: malformed JSON or an unreadable body → 400 INVALID_REQUEST_BODY; wrong
//!   JSON types, ids ≤ 0 (body, path, query), an empty user list, an empty or blank name →
//!   400 INVALID_PARAM_VALUE; a create body without `name` → 400 MISSING_REQUIRED_PARAM; a
//!   body over the size limit (64 KiB by default) → 400 INVALID_REQUEST_BODY, before
//!   authentication; unknown route → 404 NOT_FOUND; wrong method → 405
//!   METHOD_NOT_ALLOWED. Every answer is `application/json`; errors are
//!   `{"label": ..., "message": ...}`.
//! - **Headers** on every response: `X-Gate-RateLimit-Requests-Remain`, `-Limit` and
//!   `-Reset-Timestamp` (Unix seconds of the window's end) for fixed windows of 150
//!   requests per 10 s per endpoint (method and route; 80 for `GET /sub_accounts`, as Gate
//!   documents for its sub-account endpoints), counted per authenticated account
//!   and otherwise per client address; beyond it 429 TOO_MANY_REQUESTS (remain 0), which
//!   answers before any other check. With the limit switched off the three headers are
//!   omitted. Also `X-In-Time`/`X-Out-Time` (µs), a random hex `X-Gate-Trace-Id`,
//!   `X-Client-Request-Id` echoed; `x-gate-exptime` (Unix ms) in the past refuses the
//!   request before it runs with 400 REQUEST_EXPIRED ("... x-gate-exptime ..."). Gate
//!   documents that header for order endpoints only: honouring it here is an assumption,
//!   switched off with [`EmulatorConfig::honour_exptime`].
//! - **Injected faults** ([`RunningEmulator::inject_fault`]): the Nth request of an
//!   operation (by operationId, counted from the injection, each fault firing once) is
//!   answered with an error status and nothing executed ([`FaultKind::Status`]), or gets no
//!   answer at all, the connection closed before a byte of the response
//!   ([`FaultKind::Drop`]: nothing executed; [`FaultKind::ExecuteThenDrop`]: executed, as
//!   when a write's answer is lost). A client sees the last two as a transport error with
//!   no HTTP status.
//! - **Time**: the configured [`Clock`](crate::Clock) plus the clock offset drives
//!   everything: the Timestamp window, `x-gate-exptime`, `create_time`, `/spot/time`, the
//!   in/out times and the rate-limit windows.
//! - **Concurrency**: the state sits behind one mutex, held briefly and never across an
//!   `.await`; every change is checked whole before it is applied.
//!
//! # What it does not model
//!
//! IP allow lists, read-only keys, key permissions, locked accounts and sub-accounts,
//! e-mail addresses, VIP tiers, Gate's limits on the number of groups or members,
//! `Content-Type` checks, the 2023-era DELETE with a JSON body, any endpoint beyond the
//! eight, persistence across restarts, and answers from intermediaries (HTML error pages,
//! empty bodies).

pub mod demo;

mod accounts;
mod admission;
mod config;
mod emulator;
mod faults;
mod groups;
mod input;
mod ratelimit;
mod refusal;
mod server;
mod shared;
mod verify;
mod world;

pub use config::{
    DEFAULT_EXPIRY_WINDOW, DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW,
    EmulatorConfig, RateLimitConfig,
};
pub use emulator::{Emulator, RunningEmulator, SHUTDOWN_GRACE, router, serve};
pub use faults::{Fault, FaultKind, InvalidFault};
pub use world::{Account, World, WorldError};
