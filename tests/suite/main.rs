//! The integration tests, as one binary: the dependency graph is linked once rather than
//! once per file, and helpers are compiled once.
//!
//! One module per topic. Shared helpers stay in `tests/common` (included here by path, so
//! that a new `tests/<topic>.rs` can still `mod common;` until it is moved in); Gate's
//! published signing examples are in `common::vectors`, the one copy every test uses.
//!
//! Run one topic with a filter: `cargo test --all-features --test suite hostile::`.

#[path = "../common/mod.rs"]
mod common;

// Signing: the pure signer against Gate's examples and the official Python SDK, and
// what the client signs against the emulator's verifier, as properties.
mod signature_properties;
mod signing_vectors;

// The client over HTTP: what each operation and builder option puts on the wire, every
// way a peer can misbehave, and how deadlines bound retries and pacing.
mod client_builder;
mod deadlines;
mod hostile;
mod pacing;
mod wire;
mod wire_accounts;

// What the environment gives a client (each case in a child process).
mod environment;

// What the client reports: the request span, and no secret in logs, errors or `Debug`.
mod error_display;
mod request_span;
mod secret_hygiene;

// The API description: the fragment's house rules, the generated surface, the emulator
// answering every operation as the fragment says, and the fragment against the surface
// derived from Gate's official SDK (openapi/upstream).
mod drift;
mod generated_surface;
mod spec;
mod spec_conformance;

// The emulator's rules, one by one; its account reads, switches and injected faults.
mod emulator_accounts_faults;
mod emulator_address_limits;
mod emulator_rules;

// STP groups as code: export, plan and apply against the emulator, library and binary.
mod stp_as_code;
mod stp_as_code_library;

// `gate-stp mcp`: the MCP server for agents, driven over stdio by an MCP client.
mod mcp;
mod mcp_bounds;
mod mcp_http;
mod mcp_messages;
mod mcp_plans;
mod mcp_raw;
mod mcp_revision;
mod mcp_schemas;

// The review flow: Markdown plans, the plan document's schema, several accounts at once.
mod review_flow;

// The `gate-stp` command line: every command, its output and docs, profiles, the
// emulator's switches, option placement and help layout, and plan/apply/export options.
mod cli;
mod cli_as_code;
mod cli_docs;
mod cli_habits;
mod cli_mock_flags;
mod cli_output;
mod cli_profiles;
mod cli_terminal;
