//! Generates the HTTP client from `openapi/gate-stp.yaml`.
//!
//! Two files land in `OUT_DIR`:
//! - `gate_stp_client.rs`: progenitor's client and models, formatted by prettyplease and
//!   included by `src/generated.rs` (and nowhere else);
//! - `gate_stp_operations.rs`: a table of the fragment's operations (id, method, path, and
//!   whether it is signed), read by the signing hook and by tracing. An operation is
//!   signed unless the fragment says `security: []` for it, so a newly added operation is
//!   signed by default.
//!
//! The build fails, naming the problem, when the fragment cannot be read or generated.

use std::{env, fs, path::PathBuf};

use heck::ToSnakeCase;
use openapiv3::{OpenAPI, ReferenceOr};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle};

const FRAGMENT: &str = "openapi/gate-stp.yaml";

fn main() {
    if let Err(message) = run() {
        // A build script reports failure by exiting non-zero; cargo shows stderr.
        eprintln!("error: gate-stp code generation: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed={FRAGMENT}");
    println!("cargo:rerun-if-changed=build.rs");

    let text = fs::read_to_string(FRAGMENT).map_err(|e| format!("reading {FRAGMENT}: {e}"))?;
    let spec: OpenAPI =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("parsing {FRAGMENT}: {e}"))?;

    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Positional)
        .with_tag(TagStyle::Merged)
        // No default `impl ClientHooks`: without src/transport.rs's impl the crate does not
        // compile, so no build can send an unsigned private request.
        .with_hooks(HooksMode::Expected)
        .with_inner_type(
            "crate::call::CallContext"
                .parse()
                .map_err(|e| format!("{e}"))?,
        )
        .with_derive("schemars::JsonSchema");

    let mut generator = Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("progenitor rejected {FRAGMENT}: {e}"))?;
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("progenitor produced invalid Rust: {e}"))?;
    let client = prettyplease::unparse(&file);

    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?);
    write_if_changed(&out_dir.join("gate_stp_client.rs"), &client)?;
    write_if_changed(
        &out_dir.join("gate_stp_operations.rs"),
        &operations_table(&spec)?,
    )?;
    Ok(())
}

/// Rust source of one `OperationSpec` const per operation of the fragment, named after it
/// (`LIST_STP_GROUPS`), and `OPERATIONS`, the list of them all. The hand-written layer
/// names the consts, so an operation it needs that leaves the fragment fails the build.
fn operations_table(spec: &OpenAPI) -> Result<String, String> {
    let default_signed = spec.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut consts = Vec::new();
    let mut rows = Vec::new();
    for (path, item) in &spec.paths.paths {
        let ReferenceOr::Item(item) = item else {
            return Err(format!(
                "path {path}: external path items are not supported"
            ));
        };
        for (method, op) in item.iter() {
            let id = op
                .operation_id
                .as_deref()
                .ok_or_else(|| format!("{} {path}: operation has no operationId", method))?;
            let signed = match &op.security {
                Some(requirements) => !requirements.is_empty(),
                None => default_signed,
            };
            // progenitor names the method (and `OperationInfo::operation_id`) in snake case.
            let rust_name = id.to_snake_case();
            let name = rust_name.to_ascii_uppercase();
            consts.push(format!(
                "/// `{id}`\n\
                 pub(crate) const {name}: OperationSpec = OperationSpec {{ id: {id:?}, \
                 rust_name: {rust_name:?}, method: {:?}, path: {path:?}, signed: {signed} }};\n",
                method.to_ascii_uppercase()
            ));
            rows.push(format!("    {name},\n"));
        }
    }
    Ok(format!(
        "/// One operation of the fragment.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n\
         pub(crate) struct OperationSpec {{\n\
         \x20   /// Gate's operationId.\n\
         \x20   pub id: &'static str,\n\
         \x20   /// The generated method's name, also `OperationInfo::operation_id`.\n\
         \x20   pub rust_name: &'static str,\n\
         \x20   /// HTTP method, upper case.\n\
         \x20   pub method: &'static str,\n\
         \x20   /// Path template below the base URL.\n\
         \x20   pub path: &'static str,\n\
         \x20   /// Whether requests must carry KEY, Timestamp and SIGN.\n\
         \x20   pub signed: bool,\n\
         }}\n\n\
         {}\n\
         /// Every operation of the fragment, in its order.\n\
         pub(crate) const OPERATIONS: &[OperationSpec] = &[\n{}];\n",
        consts.concat(),
        rows.concat()
    ))
}

/// Leaves the file untouched when its content is the same, so that unrelated rebuilds do
/// not recompile the crate.
fn write_if_changed(path: &PathBuf, content: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    fs::write(path, content).map_err(|e| format!("writing {}: {e}", path.display()))
}
