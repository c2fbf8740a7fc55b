//! The six tools: names, arguments, results and annotations, and which are offered.
//!
//! Names and argument names are an interface: agents, prompts and scripts rely on them.

use std::{collections::BTreeMap, sync::Arc};

use rmcp::{
    model::{JsonObject, Tool, ToolAnnotations},
    schemars::JsonSchema,
};
use serde::{Deserialize, Serialize};

pub(crate) const ACCOUNT: &str = "account";
pub(crate) const LIST_GROUPS: &str = "list_groups";
pub(crate) const LIST_MEMBERS: &str = "list_members";
pub(crate) const EXPORT: &str = "export";
pub(crate) const PLAN: &str = "plan";
pub(crate) const APPLY: &str = "apply";

/// Whether this server offers the tool `name`: listed by `tools/list` and callable.
/// `apply` only with the operator's consent (`--allow-apply`); unknown names never.
pub(crate) fn offered(name: &str, allow_apply: bool) -> bool {
    match name {
        ACCOUNT | LIST_GROUPS | LIST_MEMBERS | EXPORT | PLAN => true,
        APPLY => allow_apply,
        _ => false,
    }
}

/// What serde cannot say about a tool's arguments (ranges, formats): `Err` says which
/// argument is wrong and what it takes.
pub(crate) trait Check {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Arguments of `account` and `export`: none (any other key is refused).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

impl Check for NoArgs {}

/// Arguments of `list_groups`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct ListGroupsArgs {
    /// Part of the group name (Gate's filter is fuzzy and case-insensitive: check the
    /// exact names in the answer).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Items per answer (default 100, at most 1000; an answer also stops at 256 KiB).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub(crate) limit: Option<u32>,
    /// Where to go on: the `next_cursor` of the previous answer (leave out for the first
    /// page).
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub(crate) cursor: Option<String>,
}

impl Check for ListGroupsArgs {
    fn check(&self) -> Result<(), String> {
        self.page().map(drop)
    }
}

/// Arguments that ask for one page of a long answer (see `paging`).
///
/// Each paged tool declares `limit` and `cursor` in its own struct rather than in one
/// flattened struct: serde's `deny_unknown_fields` (an unknown argument is an error the
/// model reads) does not work with `#[serde(flatten)]`.
pub(crate) trait Paged {
    fn limit(&self) -> Option<u32>;
    fn cursor(&self) -> Option<&str>;
    fn page(&self) -> Result<super::paging::Page, String> {
        super::paging::page(self.limit(), self.cursor())
    }
}

macro_rules! paged {
    ($($args:ty),*) => {$(
        impl Paged for $args {
            fn limit(&self) -> Option<u32> {
                self.limit
            }
            fn cursor(&self) -> Option<&str> {
                self.cursor.as_deref()
            }
        }
    )*};
}

paged!(ListGroupsArgs, ListMembersArgs, ExportArgs);

/// Arguments of `export`: a page of groups.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportArgs {
    /// Items per answer (default 100, at most 1000; an answer also stops at 256 KiB).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub(crate) limit: Option<u32>,
    /// Where to go on: the `next_cursor` of the previous answer (leave out for the first
    /// page).
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub(crate) cursor: Option<String>,
}

impl Check for ExportArgs {
    fn check(&self) -> Result<(), String> {
        self.page().map(drop)
    }
}

/// Arguments of `list_members`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct ListMembersArgs {
    /// The group's id (`id` in `list_groups`).
    #[schemars(range(min = 1))]
    pub(crate) stp_id: i64,
    /// Items per answer (default 100, at most 1000; an answer also stops at 256 KiB).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub(crate) limit: Option<u32>,
    /// Where to go on: the `next_cursor` of the previous answer (leave out for the first
    /// page).
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub(crate) cursor: Option<String>,
}

impl Check for ListMembersArgs {
    fn check(&self) -> Result<(), String> {
        self.page()?;
        if self.stp_id < 1 {
            return Err(format!(
                "`stp_id`: expected a group id of 1 or more (the `id` of a group in list_groups), got {}",
                self.stp_id
            ));
        }
        Ok(())
    }
}

/// Format of a desired-state document.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub(crate) enum DocumentFormat {
    /// TOML, as `export` writes it.
    #[default]
    Toml,
    /// JSON.
    Json,
}

/// Arguments of `plan`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanArgs {
    /// The desired state of the STP groups: a TOML or JSON text (start from `export`'s
    /// document and edit it), or the same as a JSON object.
    #[schemars(schema_with = "document_schema")]
    pub(crate) document: serde_json::Value,
    /// The format of a text document (default "toml"); an object document is JSON.
    #[serde(default)]
    pub(crate) format: DocumentFormat,
}

/// The desired-state document as JSON Schema 2020-12: the keys and bounds the library's
/// parser accepts (`gate_stp::desired::DesiredState`, which has no schema of its own).
pub(crate) fn desired_state_schema() -> serde_json::Value {
    use gate_stp::desired::{MAX_GROUPS, MAX_NAME_CHARS};
    serde_json::json!({
        "type": "object",
        "description": "STP groups as code: the groups listed get exactly these members; groups not listed are left alone.",
        "required": ["main_user_id"],
        "additionalProperties": false,
        "properties": {
            "main_user_id": {
                "type": "integer",
                "description": "The main account the API key belongs to (account's main_user_id)."
            },
            "group": {
                "type": "array",
                "maxItems": MAX_GROUPS,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": false,
                    "properties": {
                        "name": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_NAME_CHARS,
                            "description": "The group's exact name."
                        },
                        "id": {
                            "type": "integer",
                            "description": "Optional: pins the live group with this id (needed when two live groups share the name)."
                        },
                        "members": {
                            "type": "array",
                            "description": "User ids (integers) or sub-account login names (strings); anyone else in the group is removed.",
                            "items": {
                                "anyOf": [
                                    {"type": "integer"},
                                    {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}
                                ]
                            }
                        },
                        "protect": {
                            "type": "boolean",
                            "description": "When true, a plan that would remove a member of this group fails."
                        }
                    }
                }
            }
        }
    })
}

fn document_schema(_: &mut rmcp::schemars::SchemaGenerator) -> rmcp::schemars::Schema {
    let schema = serde_json::json!({
        "description": "The desired state: a TOML or JSON text, or a JSON object.",
        "anyOf": [
            {"type": "string", "description": "TOML (the default) or JSON text, as `format` says."},
            desired_state_schema()
        ]
    });
    // A JSON object is always a schema.
    rmcp::schemars::Schema::try_from(schema).unwrap_or_default()
}

impl Check for PlanArgs {}

/// Arguments of `apply`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(crate) struct ApplyArgs {
    /// The `digest` a `plan` call of this server returned.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub(crate) digest: String,
}

/// Whether `digest` has a digest's form: 64 lowercase hex digits.
pub(crate) fn is_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Check for ApplyArgs {
    fn check(&self) -> Result<(), String> {
        if !is_digest(&self.digest) {
            return Err(format!(
                "`digest`: expected 64 lowercase hex digits (the `digest` of a plan result), got {}",
                crate::output::plural(self.digest.chars().count(), "character")
            ));
        }
        Ok(())
    }
}

/// A sub-account of the key's main account.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct SubAccountOut {
    pub(crate) user_id: i64,
    pub(crate) login_name: Option<String>,
}

/// Result of `account`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct AccountOut {
    /// The main account the API key belongs to.
    pub(crate) main_user_id: i64,
    pub(crate) sub_accounts: Vec<SubAccountOut>,
}

/// An STP group.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct GroupOut {
    pub(crate) id: Option<i64>,
    pub(crate) name: String,
    pub(crate) creator_id: Option<i64>,
    /// Creation time, UTC ISO 8601.
    pub(crate) created_at: Option<String>,
}

/// Result of `list_groups`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct GroupsOut {
    /// Groups in the account (matching `name`, if given).
    pub(crate) total: usize,
    /// This page of them.
    pub(crate) groups: Vec<GroupOut>,
    /// Pass as `cursor` for the next page; null on the last.
    pub(crate) next_cursor: Option<String>,
}

/// A member of a group.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct MemberOut {
    pub(crate) user_id: Option<i64>,
    /// Known for the key's own sub-accounts.
    pub(crate) login_name: Option<String>,
    /// When the user joined, UTC ISO 8601.
    pub(crate) joined_at: Option<String>,
}

/// Result of `list_members`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct MembersOut {
    pub(crate) stp_id: i64,
    /// Members of the group.
    pub(crate) total: usize,
    /// This page of them.
    pub(crate) members: Vec<MemberOut>,
    /// Pass as `cursor` for the next page; null on the last.
    pub(crate) next_cursor: Option<String>,
}

/// Result of `export`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct ExportOut {
    /// A page of the live groups as a desired-state document (TOML, ids pinned): edit it
    /// and `plan` it. Groups a document leaves out are left alone, so each page can be
    /// planned on its own.
    pub(crate) document: String,
    /// Groups in this document.
    pub(crate) groups: usize,
    /// Groups in the account.
    pub(crate) total: usize,
    /// Pass as `cursor` for the next page; null on the last.
    pub(crate) next_cursor: Option<String>,
}

/// Result of `plan`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct PlanOut {
    /// Whether applying would send anything.
    pub(crate) changes: bool,
    /// One line: groups created, members added and removed.
    pub(crate) summary: String,
    /// The plan as a person reads it (cut at 64 KiB, the cut said).
    pub(crate) rendered: String,
    /// The plan's JSON document (what `gate-stp plan --out` saves); null when it is larger
    /// than 512 KiB (`plan_bytes` says how large): apply needs only the digest.
    #[schemars(schema_with = "plan_schema")]
    pub(crate) plan: Option<serde_json::Value>,
    /// The size of the plan's JSON document, in bytes.
    pub(crate) plan_bytes: usize,
    /// Names this plan for `apply` (lowercase hex SHA-256 of the plan's JSON document).
    pub(crate) digest: String,
}

/// Result of `apply`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct ApplyOut {
    /// Requests sent and confirmed by Gate's answers.
    pub(crate) steps_done: usize,
    /// Groups created, by name, with their ids.
    pub(crate) created: BTreeMap<String, i64>,
    /// Groups whose create answer was lost and that were found by listing and adopted.
    pub(crate) adopted: Vec<String>,
}

/// The formats JSON Schema 2020-12 defines (§7.3); schemars also writes its own (`int64`,
/// `uint`, …), which strict validators warn about, so those are left out.
const STANDARD_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Removes every `format` that JSON Schema 2020-12 does not define, at any depth.
pub(crate) fn strip_nonstandard_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            if object
                .get("format")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|format| !STANDARD_FORMATS.contains(&format))
            {
                object.remove("format");
            }
            object.values_mut().for_each(strip_nonstandard_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nonstandard_formats),
        _ => {}
    }
}

/// The JSON Schema 2020-12 of `T`: what it accepts (`serialize: false`, arguments) or what
/// it writes (`true`, results); the root's title and description left out (the tool's
/// description says it), no non-standard format.
/// The plan document's schema (`docs/plan.schema.json`, draft-07 from schemars 0.8) as
/// JSON Schema 2020-12: `definitions` are `$defs`, references follow, no `$schema` inside,
/// no non-standard format. The 2020-12 keywords it uses mean the same in both drafts.
pub(crate) fn plan_schema_value() -> serde_json::Value {
    fn to_2020_12(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(object) => {
                object.remove("$schema");
                if let Some(definitions) = object.remove("definitions") {
                    object.insert("$defs".to_owned(), definitions);
                }
                if let Some(serde_json::Value::String(reference)) = object.get_mut("$ref")
                    && let Some(name) = reference.strip_prefix("#/definitions/")
                {
                    *reference = format!("#/$defs/{name}");
                }
                object.values_mut().for_each(to_2020_12);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(to_2020_12),
            _ => {}
        }
    }
    let mut value = serde_json::from_str(&gate_stp::desired::Plan::json_schema())
        .unwrap_or(serde_json::Value::Bool(true));
    to_2020_12(&mut value);
    strip_nonstandard_formats(&mut value);
    value
}

/// Moves every `$defs` below `value` into `into`.
fn take_nested_defs(value: &mut serde_json::Value, into: &mut JsonObject) {
    match value {
        serde_json::Value::Object(object) => {
            if let Some(serde_json::Value::Object(defs)) = object.remove("$defs") {
                into.extend(defs);
            }
            object
                .values_mut()
                .for_each(|value| take_nested_defs(value, into));
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .for_each(|value| take_nested_defs(value, into)),
        _ => {}
    }
}

fn plan_schema(_: &mut rmcp::schemars::SchemaGenerator) -> rmcp::schemars::Schema {
    let nullable = serde_json::json!({"anyOf": [plan_schema_value(), {"type": "null"}]});
    rmcp::schemars::Schema::try_from(nullable).unwrap_or_default()
}

fn schema<T: JsonSchema + 'static>(serialize: bool) -> Arc<JsonObject> {
    let mut settings = rmcp::schemars::generate::SchemaSettings::draft2020_12();
    if serialize {
        settings = settings.for_serialize();
    }
    let root = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::Value::from(root);
    strip_nonstandard_formats(&mut value);
    let mut object = match value {
        serde_json::Value::Object(object) => object,
        _ => JsonObject::new(),
    };
    // `#/$defs/...` resolves against the root: definitions of an embedded schema (the
    // plan's) move there.
    let mut nested = JsonObject::new();
    for value in object.values_mut() {
        take_nested_defs(value, &mut nested);
    }
    if !nested.is_empty() {
        let defs = object
            .entry("$defs")
            .or_insert_with(|| serde_json::Value::Object(JsonObject::new()));
        if let serde_json::Value::Object(defs) = defs {
            for (name, definition) in nested {
                defs.entry(name).or_insert(definition);
            }
        }
    }
    object.remove("title");
    object.remove("description");
    Arc::new(object)
}

/// The four hints, always all explicit: clients assume the worst for a missing one.
fn hints(read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        // Every tool talks to Gate, an external system whose state others change too.
        .open_world(true)
}

fn tool<In: JsonSchema + 'static, Out: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    annotations: ToolAnnotations,
) -> Tool {
    let mut tool = Tool::new(name, description, schema::<In>(false)).annotate(annotations);
    tool.output_schema = Some(schema::<Out>(true));
    tool
}

/// `plan`'s description: what it does, and the document's format with an example.
const PLAN_DESCRIPTION: &str = "Compares a desired-state document with the live STP groups and \
shows what would change; sends only reads. Returns a `digest` naming the plan: applying needs \
that digest and a person's review of the plan.\n\n\
The document lists the groups to manage; each gets exactly its `members` (user ids, or \
sub-account login names), anyone else in it is removed; groups not listed are left alone. \
Start from `export`'s document. TOML (the default):\n\n\
main_user_id = 10000          # the key's main account (see `account`)\n\
[[group]]\n\
name = \"market-makers\"       # matched exactly against the live groups\n\
members = [10001, \"desk-bot\"] # user ids or sub-account login names\n\
protect = true                # optional: refuse a plan that removes a member\n\
# id = 100001                 # optional: pin the live group with this id\n\n\
The same as JSON, as a text with format \"json\" or as an object: \
{\"main_user_id\": 10000, \"group\": [{\"name\": \"market-makers\", \"members\": [10001, \"desk-bot\"]}]}. \
Removing a member switches self-trade prevention off for that user's new orders; Gate cannot \
delete a group.";

/// Every tool this server has, in a fixed order (`offered` decides which are listed).
pub(crate) fn all() -> Vec<Tool> {
    let read = || hints(true, false, true);
    vec![
        tool::<NoArgs, AccountOut>(
            ACCOUNT,
            "The API key's main account id and its sub-accounts (user id, login name).",
            read(),
        ),
        tool::<ListGroupsArgs, GroupsOut>(
            LIST_GROUPS,
            "The STP groups of the key's account: id, name, creator, creation time. \
             `name` filters fuzzily, as Gate does. One page per call (`limit`, default 100); \
             `next_cursor` fetches the next.",
            read(),
        ),
        tool::<ListMembersArgs, MembersOut>(
            LIST_MEMBERS,
            "The members of one STP group, with login names where known. One page per call \
             (`limit`, default 100); `next_cursor` fetches the next.",
            read(),
        ),
        tool::<ExportArgs, ExportOut>(
            EXPORT,
            "The live STP groups as a desired-state document (TOML, ids pinned). Edit it \
             and pass it to `plan` to change the groups. One page of groups per call \
             (`limit`, default 100): a document without some groups leaves them alone, so \
             each page can be planned on its own; `next_cursor` fetches the next.",
            read(),
        ),
        tool::<PlanArgs, PlanOut>(PLAN, PLAN_DESCRIPTION, read()),
        tool::<ApplyArgs, ApplyOut>(
            APPLY,
            "Applies a plan computed by `plan` in this server, named by its digest. The \
             live state is read again first: a plan made stale by any change is refused \
             with nothing sent (plan again). A digest is applied at most once.",
            hints(false, true, false),
        ),
    ]
}

/// The tools `tools/list` shows.
pub(crate) fn listed(allow_apply: bool) -> Vec<Tool> {
    all()
        .into_iter()
        .filter(|tool| offered(&tool.name, allow_apply))
        .collect()
}
