#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]
// One module layout: a module with submodules is a folder with a `mod.rs`, a module
// without is one file (README, maintainers).
#![deny(clippy::self_named_module_files)]
// docs.rs (`[package.metadata.docs.rs]` sets `--cfg docsrs`): each item behind a feature
// is marked with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod call;
mod client;
pub mod clock;
mod credentials;
pub mod desired;
pub mod error;
mod generated;
pub mod models;
pub mod policy;
pub mod response;
pub mod signing;
pub mod text;
mod transport;

#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;

pub use client::{
    AddUsers, BASE_URL_ENV, Client, ClientBuilder, ClockSync, CreateGroup,
    DEFAULT_MAX_RESPONSE_BYTES, GetAccountDetail, LIVE_BASE_URL, ListGroups, ListSubAccounts,
    ListUsers, RemoveUsers, SubAccountTypeFilter, TESTNET_BASE_URL,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credentials::{Credentials, KEY_ENV, SECRET_ENV};
pub use error::{ApiError, Error, InvalidInput, Label};
pub use policy::RetryPolicy;
pub use response::{RateLimit, Response, ResponseMeta};
pub use transport::{KEY_HEADER, SIGN_HEADER, TIMESTAMP_HEADER, sign_request};
