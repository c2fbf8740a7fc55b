//! The API's models, generated from `openapi/gate-stp.yaml` (serde and `schemars`
//! derives included, so their JSON Schema can be published or checked).

pub use crate::generated::types::{
    AccountDetail, AccountDetailKey, ServerTime, StpGroup, StpGroupUser, SubAccount,
};
