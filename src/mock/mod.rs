//! An in-process emulator of Gate's STP endpoints (feature `mock`).
//!
//! It serves the fragment's six operations under `/api/v4` and behaves as Gate documents:
//!
//! - **Authentication from the wire**: KEY, Timestamp and SIGN are checked against the
//!   method, raw path, form-decoded raw query, exact body bytes and Timestamp that
//!   arrived, by a verifier independent of the client's signer. Missing header: 400
//!   MISSING_REQUIRED_HEADER; unknown key: 401 INVALID_KEY; unparsable Timestamp: 400
//!   INVALID_PARAM_VALUE; more than 60 s from the emulator's clock: 401 REQUEST_EXPIRED;
//!   wrong SIGN: 401 INVALID_SIGNATURE. Integer and fractional Timestamps are accepted.
//! - **Rules**: only a main account creates groups (403 FORBIDDEN); only the creator lists,
//!   adds or removes members (403 FORBIDDEN; unknown group 404 NOT_FOUND); only the
//!   caller's main account and its sub-accounts may be added (another main's user: 403
//!   FORBIDDEN; no such user: 400 INVALID_PARAM_VALUE); a request naming any refused user
//!   changes nothing; adding twice is harmless; DELETE takes comma-separated ids;
//!   `name` filters case-insensitively; malformed JSON 400 INVALID_REQUEST_BODY; wrong
//!   types, ids <= 0, empty names 400 INVALID_PARAM_VALUE; bodies over the limit 400
//!   INVALID_REQUEST_BODY.
//! - **Headers**: `X-Gate-RateLimit-*` (150 requests per 10 s per endpoint and account by
//!   default, then 429 TOO_MANY_REQUESTS), `X-In-Time`/`X-Out-Time`, `X-Gate-Trace-Id`,
//!   `X-Client-Request-Id` echoed, `x-gate-exptime` honoured (400 REQUEST_EXPIRED when the
//!   request arrives after it).
//!
//! Not modelled: IP allow lists, read-only keys, locked accounts, key permissions, any
//! endpoint beyond STP groups and server time, persistence across restarts.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use gate_stp::mock::{Emulator, EmulatorConfig, World};
//!
//! let emulator = Emulator::start(World::demo(), EmulatorConfig::default()).await?;
//! let base_url = emulator.base_url(); // http://127.0.0.1:PORT/api/v4
//! // ... point a gate_stp::Client at base_url ...
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod demo;
mod server;
mod verify;
mod world;

pub use server::{Emulator, EmulatorConfig, RunningEmulator, router};
pub use world::{Account, World, WorldError};
