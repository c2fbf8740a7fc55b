//! Drift check: our fragment (`openapi/gate-stp.yaml`) against the surface derived from
//! Gate's official Python SDK (`openapi/upstream/gate-api-<PINNED>.yaml`, written by
//! `openapi/upstream/derive.py`).
//!
//! Operation by operation (method, path, operationId, security, each parameter's location,
//! type, format and required, request body, success response) and model by model (field
//! names, types, formats, required), every difference is collected; the reviewed ones in
//! `openapi/upstream/intended-differences.yaml` are explained, any other fails the test with
//! what differs, where, upstream against ours, and the next command. An upstream operation
//! under `/account/stp_groups` that we lack fails too, and so does an allow-list entry that
//! no longer matches anything (the list stays honest).
//!
//! No network and no Python: only checked-in files are read. `derive.py refresh` runs this
//! test (`GATE_STP_UPSTREAM` points it at a freshly derived release) to print its report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Our fragment, the one build.rs generates the client from.
const OURS: &str = "openapi/gate-stp.yaml";
/// One line: the SDK release our fragment follows.
const PINNED: &str = "openapi/upstream/PINNED";
/// The reviewed differences between our fragment and the pinned release.
const ALLOW_LIST: &str = "openapi/upstream/intended-differences.yaml";
/// The release whose `deleteSTPGroupUsers` still took a JSON body.
const HISTORY: &str = "openapi/upstream/history/gate-api-4.56.0.yaml";
/// Points the check at another derived fragment (what `derive.py refresh` does).
const UPSTREAM_OVERRIDE: &str = "GATE_STP_UPSTREAM";
/// Every upstream operation under this prefix must be in our fragment.
const STP_PREFIX: &str = "/account/stp_groups";
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

// ------------------------------------------------------------------------- differences

/// What a difference is about: one operation (by operationId) or one model (by our name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Operation(String),
    Model(String),
}

/// One difference between upstream and ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    subject: Subject,
    /// Where inside the subject: `parameter query user_id`, `request body`, `field name`...
    place: String,
    /// What differs: `type`, `format`, `required`, `missing-in-ours`, `extra-in-ours`,
    /// `path`, `operation-id`, `security`, `media-type`.
    kind: &'static str,
    upstream: String,
    ours: String,
    /// Method and path (operations) or upstream model name (models), for the reader.
    context: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match &self.subject {
            Subject::Operation(id) => format!("operation {id}"),
            Subject::Model(name) => format!("model {name}"),
        };
        writeln!(
            f,
            "{subject} ({}), {}: {}",
            self.context, self.place, self.kind
        )?;
        writeln!(f, "      upstream: {}", self.upstream)?;
        write!(f, "      ours:     {}", self.ours)
    }
}

// ------------------------------------------------------------------------- documents

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse_yaml(text: &str, what: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
}

/// The derived fragment of the pinned release, or the one `GATE_STP_UPSTREAM` names.
fn upstream_path() -> PathBuf {
    if let Some(path) = std::env::var_os(UPSTREAM_OVERRIDE) {
        return PathBuf::from(path);
    }
    root().join(format!(
        "openapi/upstream/gate-api-{}.yaml",
        pinned_version()
    ))
}

/// An OpenAPI document with `$ref` resolution inside itself.
struct Document<'a> {
    value: &'a Value,
}

impl<'a> Document<'a> {
    fn resolve(&self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                let target = self
                    .value
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}"));
                self.resolve(target)
            }
            None => value,
        }
    }

    /// Every operation by (METHOD, path with parameter names erased).
    fn operations(&self) -> BTreeMap<(String, String), Op<'a>> {
        let mut operations = BTreeMap::new();
        let Some(paths) = self.value.get("paths").and_then(Value::as_object) else {
            return operations;
        };
        for (path, item) in paths {
            let shared = item.get("parameters").and_then(Value::as_array);
            for method in METHODS {
                let Some(operation) = item.get(*method) else {
                    continue;
                };
                let mut parameters = BTreeMap::new();
                let own = operation.get("parameters").and_then(Value::as_array);
                // Operation parameters override path-item ones of the same location and name.
                for parameter in shared
                    .into_iter()
                    .flatten()
                    .chain(own.into_iter().flatten())
                {
                    let parameter = self.resolve(parameter);
                    let location = text(parameter, "in");
                    let mut name = text(parameter, "name");
                    if location == "header" {
                        name = name.to_ascii_lowercase();
                    }
                    parameters.insert(format!("{location} {name}"), parameter);
                }
                let op = Op {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    value: operation,
                    parameters,
                };
                operations.insert((op.method.clone(), erase_names(path)), op);
            }
        }
        operations
    }

    /// Security scheme names an operation requires (the document's default if unset).
    fn security(&self, operation: &Value) -> Vec<String> {
        let requirements = operation
            .get("security")
            .or_else(|| self.value.get("security"))
            .and_then(Value::as_array);
        let mut names: Vec<String> = requirements
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|requirement| requirement.keys().cloned())
            .collect();
        names.sort();
        names
    }
}

struct Op<'a> {
    method: String,
    path: String,
    value: &'a Value,
    parameters: BTreeMap<String, &'a Value>,
}

impl Op<'_> {
    fn operation_id(&self) -> String {
        text(self.value, "operationId")
    }

    /// The SDK's method name: given by a derived fragment, else our operationId's snake_case.
    fn sdk_method(&self) -> String {
        match self.value.get("x-sdk-method").and_then(Value::as_str) {
            Some(method) => method.to_owned(),
            None => snake_case(&self.operation_id()),
        }
    }

    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn erase_names(path: &str) -> String {
    let mut erased = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                erased.push('{');
            }
            '}' => {
                inside = false;
                erased.push('}');
            }
            _ if inside => {}
            _ => erased.push(c),
        }
    }
    erased
}

/// `listSTPGroupsUsers` -> `list_stp_groups_users`: the SDK keeps operationIds only so.
/// The same conversion build.rs names the generated methods with.
fn snake_case(id: &str) -> String {
    heck::ToSnakeCase::to_snake_case(id)
}

// ------------------------------------------------------------------------- comparison

/// Compares `ours` against `upstream` and returns every difference, sorted.
fn compare(upstream: &Value, ours: &Value) -> Report {
    let mut comparison = Comparison {
        upstream: Document { value: upstream },
        ours: Document { value: ours },
        differences: Vec::new(),
        models: Vec::new(),
        not_covered: Vec::new(),
    };
    comparison.operations();
    comparison.queued_models();
    let mut differences = comparison.differences;
    differences.sort();
    differences.dedup();
    Report {
        differences,
        not_covered: comparison.not_covered,
    }
}

struct Report {
    differences: Vec<Difference>,
    /// Upstream operations outside the STP paths that our fragment does not (yet) have.
    not_covered: Vec<String>,
}

struct Comparison<'a> {
    upstream: Document<'a>,
    ours: Document<'a>,
    differences: Vec<Difference>,
    /// Model pairs met while comparing schemas: (our label, ours, upstream label, upstream).
    models: Vec<(String, &'a Value, String, &'a Value)>,
    not_covered: Vec<String>,
}

/// Where a schema sits, to name it in a difference.
#[derive(Clone)]
struct Place {
    subject: Subject,
    context: String,
    place: String,
}

impl<'a> Comparison<'a> {
    fn push(&mut self, at: &Place, kind: &'static str, upstream: String, ours: String) {
        self.differences.push(Difference {
            subject: at.subject.clone(),
            place: at.place.clone(),
            kind,
            upstream,
            ours,
            context: at.context.clone(),
        });
    }

    fn operations(&mut self) {
        let upstream = self.upstream.operations();
        let ours = self.ours.operations();
        let mut matched_upstream = BTreeSet::new();
        for (key, our_op) in &ours {
            let found = upstream.get_key_value(key).or_else(|| {
                // Same operation at another path: matched by the SDK's method name.
                upstream
                    .iter()
                    .find(|(_, up)| up.sdk_method() == our_op.sdk_method())
            });
            let at = Place {
                subject: Subject::Operation(our_op.operation_id()),
                context: our_op.label(),
                place: "operation".into(),
            };
            match found {
                Some((up_key, up_op)) => {
                    matched_upstream.insert(up_key.clone());
                    self.operation(up_op, our_op);
                }
                None => {
                    // The derived fragment holds only what derive.py was asked to cover.
                    let upstream = "absent from the derived fragment (if the SDK has it, add it \
                                    to EXTRA_OPERATIONS in openapi/upstream/derive.py and refresh)";
                    self.push(&at, "extra-in-ours", upstream.into(), our_op.label());
                }
            }
        }
        for (key, up_op) in &upstream {
            if matched_upstream.contains(key) {
                continue;
            }
            if up_op.path.starts_with(STP_PREFIX) {
                let at = Place {
                    subject: Subject::Operation(up_op.operation_id()),
                    context: up_op.label(),
                    place: "operation".into(),
                };
                let what = format!("{} (SDK method {})", up_op.label(), up_op.sdk_method());
                self.push(&at, "missing-in-ours", what, "absent".into());
            } else {
                self.not_covered
                    .push(format!("{} {}", up_op.label(), up_op.operation_id()));
            }
        }
    }

    fn operation(&mut self, up: &Op<'a>, ours: &Op<'a>) {
        let mut at = Place {
            subject: Subject::Operation(ours.operation_id()),
            context: ours.label(),
            place: "path".into(),
        };
        if up.path != ours.path {
            self.push(&at, "path", up.label(), ours.label());
        }
        at.place = "operationId".into();
        if up.sdk_method() != ours.sdk_method() {
            let upstream = format!("SDK method {}", up.sdk_method());
            let ours_id = format!("{} (SDK method {})", ours.operation_id(), ours.sdk_method());
            self.push(&at, "operation-id", upstream, ours_id);
        }
        at.place = "security".into();
        let (up_security, our_security) = (
            self.upstream.security(up.value),
            self.ours.security(ours.value),
        );
        if up_security != our_security {
            self.push(
                &at,
                "security",
                schemes(&up_security),
                schemes(&our_security),
            );
        }
        self.parameters(up, ours, &at);
        at.place = "request body".into();
        self.request_body(
            up.value.get("requestBody"),
            ours.value.get("requestBody"),
            &at,
        );
        self.responses(up.value, ours.value, &at);
    }

    fn parameters(&mut self, up: &Op<'a>, ours: &Op<'a>, at: &Place) {
        let keys: BTreeSet<&String> = up.parameters.keys().chain(ours.parameters.keys()).collect();
        for key in keys {
            let at = Place {
                place: format!("parameter {key}"),
                ..at.clone()
            };
            match (up.parameters.get(key), ours.parameters.get(key)) {
                (Some(up_param), None) => {
                    let described = Self::describe_parameter(up_param);
                    self.push(&at, "missing-in-ours", described, "absent".into());
                }
                (None, Some(our_param)) => {
                    let described = Self::describe_parameter(our_param);
                    self.push(&at, "extra-in-ours", "absent".into(), described);
                }
                (Some(up_param), Some(our_param)) => {
                    let (up_required, our_required) = (required(up_param), required(our_param));
                    if up_required != our_required {
                        self.push(
                            &at,
                            "required",
                            requiredness(up_required),
                            requiredness(our_required),
                        );
                    }
                    self.schema(&at, up_param.get("schema"), our_param.get("schema"));
                }
                (None, None) => {}
            }
        }
    }

    fn describe_parameter(parameter: &Value) -> String {
        let schema = parameter.get("schema").map(describe);
        format!(
            "{} {}",
            requiredness(required(parameter)),
            schema.unwrap_or_else(|| "without schema".into())
        )
    }

    fn request_body(&mut self, up: Option<&'a Value>, ours: Option<&'a Value>, at: &Place) {
        let up = up.map(|body| self.upstream.resolve(body));
        let ours = ours.map(|body| self.ours.resolve(body));
        match (up, ours) {
            (None, None) => {}
            (Some(up), None) => {
                let described = Self::describe_body(up);
                self.push(at, "missing-in-ours", described, "absent".into());
            }
            (None, Some(ours)) => {
                let described = Self::describe_body(ours);
                self.push(at, "extra-in-ours", "absent".into(), described);
            }
            (Some(up), Some(ours)) => {
                if required(up) != required(ours) {
                    self.push(
                        at,
                        "required",
                        requiredness(required(up)),
                        requiredness(required(ours)),
                    );
                }
                self.content(at, up, ours);
            }
        }
    }

    fn describe_body(body: &Value) -> String {
        let media: Vec<String> = media_types(body).into_iter().collect();
        let schema = json_schema(body).map(describe);
        format!(
            "{} {} ({})",
            requiredness(required(body)),
            schema.unwrap_or_else(|| "without schema".into()),
            media.join(", ")
        )
    }

    /// Media types and the JSON schema of a body or response.
    fn content(&mut self, at: &Place, up: &'a Value, ours: &'a Value) {
        let (up_media, our_media) = (media_types(up), media_types(ours));
        if up_media != our_media {
            let join = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>().join(", ");
            self.push(at, "media-type", join(up_media), join(our_media));
        }
        match (json_schema(up), json_schema(ours)) {
            (Some(up_schema), Some(our_schema)) => {
                self.schema(at, Some(up_schema), Some(our_schema))
            }
            (None, None) => {}
            (up_schema, our_schema) => {
                let up_text = up_schema.map_or("no body".into(), describe);
                let our_text = our_schema.map_or("no body".into(), describe);
                self.push(at, "type", up_text, our_text);
            }
        }
    }

    fn responses(&mut self, up: &'a Value, ours: &'a Value, at: &Place) {
        let (up_responses, our_responses) = (members(up, "responses"), members(ours, "responses"));
        let codes: BTreeSet<&str> = up_responses
            .keys()
            .chain(our_responses.keys())
            .copied()
            .collect();
        for code in codes {
            let at = Place {
                place: format!("response {code}"),
                ..at.clone()
            };
            let up_response = up_responses.get(code).map(|r| self.upstream.resolve(r));
            let our_response = our_responses.get(code).map(|r| self.ours.resolve(r));
            match (up_response, our_response) {
                (Some(up_response), Some(our_response)) => {
                    self.content(&at, up_response, our_response)
                }
                (Some(up_response), None) => {
                    let described = Self::describe_response(up_response);
                    self.push(&at, "missing-in-ours", described, "absent".into());
                }
                (None, Some(our_response)) => {
                    let described = Self::describe_response(our_response);
                    self.push(&at, "extra-in-ours", "absent".into(), described);
                }
                (None, None) => {}
            }
        }
    }

    fn describe_response(response: &Value) -> String {
        json_schema(response).map_or("no body".into(), describe)
    }

    /// Compares two schemas at one place; models met are queued for `queued_models`.
    fn schema(&mut self, at: &Place, up: Option<&'a Value>, ours: Option<&'a Value>) {
        let (Some(up), Some(ours)) = (up, ours) else {
            if up.is_some() != ours.is_some() {
                let up_text = up.map_or("no schema".into(), describe);
                let our_text = ours.map_or("no schema".into(), describe);
                self.push(at, "type", up_text, our_text);
            }
            return;
        };
        let (up, ours) = (unwrap_all_of(up), unwrap_all_of(ours));
        let (up_resolved, our_resolved) = (self.upstream.resolve(up), self.ours.resolve(ours));
        let (up_type, our_type) = (schema_type(up_resolved), schema_type(our_resolved));
        if up_type != our_type {
            let (up_text, our_text) = (describe(up), describe(ours));
            self.push(at, "type", up_text, our_text);
            return;
        }
        match up_type.as_str() {
            "array" => {
                let at = Place {
                    place: format!("{} items", at.place),
                    ..at.clone()
                };
                self.schema(&at, up_resolved.get("items"), our_resolved.get("items"));
            }
            "object" => {
                let (up_label, our_label) =
                    (model_label(up, &at.place), model_label(ours, &at.place));
                self.models
                    .push((our_label, our_resolved, up_label, up_resolved));
            }
            _ => {
                let (up_format, our_format) =
                    (text(up_resolved, "format"), text(our_resolved, "format"));
                // The Python SDK erases integer and number formats (int32/int64 are both
                // `int`): an upstream without one says nothing about ours.
                let format_unknown =
                    up_format.is_empty() && matches!(up_type.as_str(), "integer" | "number");
                if up_format != our_format && !format_unknown {
                    self.push(at, "format", or_none(up_format), or_none(our_format));
                }
            }
        }
    }

    /// Compares every model pair met so far (models pull in models, so loop until done).
    fn queued_models(&mut self) {
        let mut done = BTreeSet::new();
        while let Some((our_label, ours, up_label, up)) = self.models.pop() {
            if !done.insert((our_label.clone(), up_label.clone())) {
                continue;
            }
            let at = Place {
                subject: Subject::Model(our_label),
                context: format!("upstream {up_label}"),
                place: String::new(),
            };
            self.model(&at, up, ours);
        }
    }

    fn model(&mut self, at: &Place, up: &'a Value, ours: &'a Value) {
        let (up_fields, our_fields) = (members(up, "properties"), members(ours, "properties"));
        let (up_required, our_required) = (required_fields(up), required_fields(ours));
        let names: BTreeSet<&str> = up_fields.keys().chain(our_fields.keys()).copied().collect();
        for name in names {
            let at = Place {
                place: format!("field {name}"),
                ..at.clone()
            };
            let (up_is_required, our_is_required) =
                (up_required.contains(name), our_required.contains(name));
            let (up_field, our_field) =
                (up_fields.get(name).copied(), our_fields.get(name).copied());
            match (up_field, our_field) {
                (Some(up_field), None) => {
                    let described =
                        format!("{} {}", requiredness(up_is_required), describe(up_field));
                    self.push(&at, "missing-in-ours", described, "absent".into());
                }
                (None, Some(our_field)) => {
                    let described =
                        format!("{} {}", requiredness(our_is_required), describe(our_field));
                    self.push(&at, "extra-in-ours", "absent".into(), described);
                }
                (Some(up_field), Some(our_field)) => {
                    if up_is_required != our_is_required {
                        self.push(
                            &at,
                            "required",
                            requiredness(up_is_required),
                            requiredness(our_is_required),
                        );
                    }
                    self.schema(&at, Some(up_field), Some(our_field));
                }
                (None, None) => {}
            }
        }
    }
}

/// The members of an object-valued key, by name (none when absent).
fn members<'a>(value: &'a Value, key: &str) -> BTreeMap<&'a str, &'a Value> {
    value
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, member)| (name.as_str(), member))
        .collect()
}

fn schemes(names: &[String]) -> String {
    if names.is_empty() {
        "none (public)".into()
    } else {
        names.join(", ")
    }
}

fn required(value: &Value) -> bool {
    value
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn required_fields(model: &Value) -> BTreeSet<String> {
    model
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn requiredness(required: bool) -> String {
    if required { "required" } else { "optional" }.into()
}

fn or_none(format: String) -> String {
    if format.is_empty() {
        "no format".into()
    } else {
        format
    }
}

fn media_types(body: &Value) -> BTreeSet<String> {
    body.get("content")
        .and_then(Value::as_object)
        .map(|content| content.keys().cloned().collect())
        .unwrap_or_default()
}

fn json_schema(body: &Value) -> Option<&Value> {
    body.get("content")?.get("application/json")?.get("schema")
}

/// `{allOf: [X], description}` (how a described $ref is written) is X.
fn unwrap_all_of(schema: &Value) -> &Value {
    match schema.get("allOf").and_then(Value::as_array) {
        Some(parts) if parts.len() == 1 => &parts[0],
        _ => schema,
    }
}

fn schema_type(schema: &Value) -> String {
    match schema.get("type").and_then(Value::as_str) {
        Some(kind) => kind.to_owned(),
        None if schema.get("properties").is_some() => "object".into(),
        None => "any".into(),
    }
}

fn model_label(schema: &Value, place: &str) -> String {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference.rsplit('/').next().unwrap_or(reference).to_owned(),
        None => format!("(inline object at {place})"),
    }
}

/// A schema in a few words: `integer (int64)`, `array of StpGroup`, `string`.
fn describe(schema: &Value) -> String {
    let schema = unwrap_all_of(schema);
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    let kind = schema_type(schema);
    match kind.as_str() {
        "array" => match schema.get("items") {
            Some(items) => format!("array of {}", describe(items)),
            None => "array".into(),
        },
        _ => match schema.get("format").and_then(Value::as_str) {
            Some(format) => format!("{kind} ({format})"),
            None => kind,
        },
    }
}

// ------------------------------------------------------------------------- allow-list

/// One reviewed, intended difference.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Intended {
    /// An operationId of ours, or `*` for every operation.
    #[serde(default)]
    operation: Option<String>,
    /// A model name of ours (instead of `operation`).
    #[serde(default)]
    model: Option<String>,
    /// `parameter header x-client-request-id`, `request body`, `field name`...
    place: String,
    kind: String,
    upstream: String,
    ours: String,
    reason: String,
}

impl Intended {
    fn explains(&self, difference: &Difference) -> bool {
        let subject = match (&difference.subject, &self.operation, &self.model) {
            (Subject::Operation(id), Some(operation), None) => operation == "*" || operation == id,
            (Subject::Model(name), None, Some(model)) => model == name,
            _ => false,
        };
        subject
            && self.place == difference.place
            && self.kind == difference.kind
            && self.upstream == difference.upstream
            && self.ours == difference.ours
    }

    fn describe(&self) -> String {
        let subject = match (&self.operation, &self.model) {
            (Some(operation), _) => format!("operation {operation}"),
            (None, Some(model)) => format!("model {model}"),
            (None, None) => "(no operation or model)".into(),
        };
        format!(
            "{subject}, {}: {} (upstream: {}; ours: {})",
            self.place, self.kind, self.upstream, self.ours
        )
    }
}

fn load_allow_list(text: &str) -> Vec<Intended> {
    let entries: Vec<Intended> = serde_yaml_ng::from_str(text)
        .unwrap_or_else(|e| panic!("{ALLOW_LIST} is not a list of entries: {e}"));
    for entry in &entries {
        assert!(
            entry.operation.is_some() != entry.model.is_some(),
            "{ALLOW_LIST}: {} must name exactly one of operation or model",
            entry.describe()
        );
        assert!(
            !entry.reason.trim().is_empty(),
            "{ALLOW_LIST}: {} has no reason",
            entry.describe()
        );
    }
    entries
}

/// The verdict of one check: unexplained differences, stale entries, and the report.
struct Verdict {
    unexplained: Vec<Difference>,
    stale: Vec<String>,
    text: String,
}

fn judge(
    report: &Report,
    allow_list: &[Intended],
    ours_name: &str,
    upstream_name: &str,
) -> Verdict {
    let mut used = vec![false; allow_list.len()];
    let mut unexplained = Vec::new();
    for difference in &report.differences {
        let mut explained = false;
        for (i, entry) in allow_list.iter().enumerate() {
            if entry.explains(difference) {
                used[i] = true;
                explained = true;
            }
        }
        if !explained {
            unexplained.push(difference.clone());
        }
    }
    let stale: Vec<String> = allow_list
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(entry, _)| entry.describe())
        .collect();
    let explained = report.differences.len() - unexplained.len();
    let mut text = format!("drift report: {ours_name} against {upstream_name}\n");
    let _ = writeln!(
        text,
        "{} differences: {explained} explained by the allow-list, {} unexplained; {} stale allow-list entries",
        report.differences.len(),
        unexplained.len(),
        stale.len()
    );
    for (n, difference) in unexplained.iter().enumerate() {
        let _ = writeln!(text, "  {}. {difference}", n + 1);
    }
    for entry in &stale {
        let _ = writeln!(
            text,
            "  stale allow-list entry (matches no difference): {entry}"
        );
    }
    if !report.not_covered.is_empty() {
        let _ = writeln!(
            text,
            "upstream operations outside {STP_PREFIX} that {ours_name} does not cover (not required): {}",
            report.not_covered.join("; ")
        );
    }
    if !unexplained.is_empty() || !stale.is_empty() {
        let _ = writeln!(
            text,
            "next: for each difference, follow upstream by editing {OURS} (then the README's \
             \"When Gate changes the API\" steps: cargo build, review the surface snapshot, \
             update the emulator) or, if it is intended, record it with its reason in \
             {ALLOW_LIST}; delete stale entries. Re-check with \
             `cargo test --all-features --test suite drift::`; to adopt a new SDK release: \
             `python3 openapi/upstream/derive.py refresh VERSION --pin`."
        );
    }
    Verdict {
        unexplained,
        stale,
        text,
    }
}

// ------------------------------------------------------------------------- the checks

fn ours() -> Value {
    parse_yaml(&read(&root().join(OURS)), OURS)
}

fn pinned_version() -> String {
    read(&root().join(PINNED)).trim().to_owned()
}

fn pinned_upstream() -> Value {
    let version = pinned_version();
    let path = root().join(format!("openapi/upstream/gate-api-{version}.yaml"));
    parse_yaml(&read(&path), &path.display().to_string())
}

fn allow_list() -> Vec<Intended> {
    load_allow_list(&read(&root().join(ALLOW_LIST)))
}

#[test]
fn our_fragment_matches_upstream() {
    let path = upstream_path();
    let upstream = parse_yaml(&read(&path), &path.display().to_string());
    let name = format!(
        "gate-api {} ({})",
        upstream["info"]["version"].as_str().unwrap_or("?"),
        path.strip_prefix(root()).unwrap_or(&path).display()
    );
    let verdict = judge(&compare(&upstream, &ours()), &allow_list(), OURS, &name);
    assert!(
        verdict.unexplained.is_empty() && verdict.stale.is_empty(),
        "{}",
        verdict.text
    );
    // Shown by `derive.py refresh` (--nocapture); a failure shows it in the panic.
    println!("{}", verdict.text);
}

#[test]
fn pinned_fragment_is_the_pinned_release() {
    assert_eq!(
        pinned_upstream()["info"]["version"],
        Value::from(pinned_version())
    );
}

/// What changed on our operations between gate-api 4.56.0 and the pinned release.
#[test]
fn history_names_exactly_the_delete_users_change() {
    let old = parse_yaml(&read(&root().join(HISTORY)), HISTORY);
    let report = compare(&pinned_upstream(), &old);
    let delete = |place: &str, kind, upstream: &str, ours: &str| Difference {
        subject: Subject::Operation("deleteStpGroupUsers".into()),
        place: place.into(),
        kind,
        upstream: upstream.into(),
        ours: ours.into(),
        context: "DELETE /account/stp_groups/{stp_id}/users".into(),
    };
    let account_detail = |field: &str| Difference {
        subject: Subject::Model("AccountDetail".into()),
        place: format!("field {field}"),
        kind: "missing-in-ours",
        upstream: "optional integer".into(),
        ours: "absent".into(),
        context: "upstream AccountDetail".into(),
    };
    let expected = vec![
        delete(
            "parameter query user_id",
            "missing-in-ours",
            "required integer",
            "absent",
        ),
        delete(
            "request body",
            "extra-in-ours",
            "absent",
            "required array of integer (application/json)",
        ),
        // Genuine too: the account detail gained two fields (not an STP operation).
        account_detail("copy_trading_role"),
        account_detail("tier"),
    ];
    let mut expected = expected;
    expected.sort();
    let shown: Vec<String> = report.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(report.differences, expected, "{}", shown.join("\n"));
    assert!(report.not_covered.is_empty(), "{:?}", report.not_covered);
    let verdict = judge(
        &report,
        &[],
        &format!("gate-api 4.56.0 ({HISTORY})"),
        &format!("the pinned gate-api {}", pinned_version()),
    );
    println!("{}", verdict.text);
    assert!(verdict.text.contains(
        "operation deleteStpGroupUsers (DELETE /account/stp_groups/{stp_id}/users), \
         parameter query user_id: missing-in-ours"
    ));
}

// ------------------------------------------------------------------------- the checker, checked

/// Runs the whole check on a modified copy of our fragment (and of upstream).
fn check_modified(
    change_ours: impl FnOnce(&mut Value),
    change_upstream: impl FnOnce(&mut Value),
) -> Verdict {
    let mut ours = ours();
    let mut upstream = pinned_upstream();
    change_ours(&mut ours);
    change_upstream(&mut upstream);
    judge(
        &compare(&upstream, &ours),
        &allow_list(),
        OURS,
        "the pinned gate-api (copies, modified)",
    )
}

fn unexplained_lines(verdict: &Verdict) -> Vec<String> {
    verdict.unexplained.iter().map(|d| d.to_string()).collect()
}

#[test]
fn a_renamed_field_fails_naming_it() {
    let verdict = check_modified(
        |ours| {
            let model = &mut ours["components"]["schemas"]["StpGroupUser"]["properties"];
            let field = model
                .as_object_mut()
                .and_then(|m| m.remove("user_id"))
                .expect("StpGroupUser has user_id");
            model["uid"] = field;
        },
        |_| {},
    );
    let lines = unexplained_lines(&verdict);
    assert_eq!(lines.len(), 2, "{}", verdict.text);
    assert_eq!(
        lines[0],
        "model StpGroupUser (upstream StpGroupUser), field uid: extra-in-ours\n      \
         upstream: absent\n      ours:     optional integer (int64)"
    );
    assert_eq!(
        lines[1],
        "model StpGroupUser (upstream StpGroupUser), field user_id: missing-in-ours\n      \
         upstream: optional integer\n      ours:     absent"
    );
    assert!(verdict.text.contains("next: "), "{}", verdict.text);
}

#[test]
fn a_parameter_made_required_fails_naming_it() {
    let verdict = check_modified(
        |ours| {
            ours["paths"]["/account/stp_groups"]["get"]["parameters"][0]["required"] = true.into()
        },
        |_| {},
    );
    assert_eq!(
        unexplained_lines(&verdict),
        [
            "operation listSTPGroups (GET /account/stp_groups), parameter query name: required\n      \
          upstream: optional\n      ours:     required"
        ],
        "{}",
        verdict.text
    );
}

#[test]
fn a_changed_path_fails_naming_it() {
    let verdict = check_modified(
        |ours| {
            let paths = ours["paths"].as_object_mut().expect("paths");
            let item = paths
                .remove("/account/stp_groups")
                .expect("the groups path");
            paths.insert("/account/stp_group".into(), item);
        },
        |_| {},
    );
    let lines = unexplained_lines(&verdict);
    assert_eq!(lines.len(), 2, "{}", verdict.text);
    assert_eq!(
        lines[0],
        "operation createSTPGroup (POST /account/stp_group), path: path\n      \
         upstream: POST /account/stp_groups\n      ours:     POST /account/stp_group"
    );
    assert!(lines[1].starts_with("operation listSTPGroups (GET /account/stp_group), path: path"));
}

#[test]
fn a_changed_type_or_format_fails_naming_it() {
    let verdict = check_modified(
        |ours| {
            let time =
                &mut ours["components"]["schemas"]["ServerTime"]["properties"]["server_time"];
            time["type"] = "string".into();
            time["format"] = "date-time".into();
        },
        |_| {},
    );
    assert_eq!(
        unexplained_lines(&verdict),
        [
            "model ServerTime (upstream SystemTime), field server_time: type\n      \
          upstream: integer\n      ours:     string (date-time)"
        ],
        "{}",
        verdict.text
    );
}

#[test]
fn an_operation_upstream_lacks_fails() {
    let verdict = check_modified(
        |ours| {
            let time = ours["paths"]["/spot/time"].clone();
            ours["paths"]["/spot/currencies"] = time;
            ours["paths"]["/spot/currencies"]["get"]["operationId"] = "listCurrencies".into();
        },
        |_| {},
    );
    let lines = unexplained_lines(&verdict);
    assert_eq!(lines.len(), 1, "{}", verdict.text);
    assert!(
        lines[0].starts_with(
            "operation listCurrencies (GET /spot/currencies), operation: extra-in-ours\n      \
             upstream: absent from the derived fragment"
        ),
        "{}",
        verdict.text
    );
}

#[test]
fn a_new_upstream_stp_operation_fails() {
    let verdict = check_modified(
        |_| {},
        |upstream| {
            let users = &upstream["paths"]["/account/stp_groups/{stp_id}/users"]["get"];
            let mut renamed = users.clone();
            renamed["operationId"] = "getStpGroup".into();
            renamed["x-sdk-method"] = "get_stp_group".into();
            upstream["paths"]["/account/stp_groups/{stp_id}"] =
                serde_json::json!({ "get": renamed });
        },
    );
    assert_eq!(
        unexplained_lines(&verdict),
        [
            "operation getStpGroup (GET /account/stp_groups/{stp_id}), operation: missing-in-ours\n      \
          upstream: GET /account/stp_groups/{stp_id} (SDK method get_stp_group)\n      \
          ours:     absent"
        ],
        "{}",
        verdict.text
    );
}

#[test]
fn a_stale_allow_list_entry_fails() {
    // Upstream starts typing user_id as we do: the entry explaining the difference is stale.
    let verdict = check_modified(
        |_| {},
        |upstream| {
            let params = &mut upstream["paths"]["/account/stp_groups/{stp_id}/users"]["delete"]["parameters"];
            params[1]["schema"] = serde_json::json!({ "type": "string" });
        },
    );
    assert!(verdict.unexplained.is_empty(), "{}", verdict.text);
    assert_eq!(
        verdict.stale,
        [
            "operation deleteSTPGroupUsers, parameter query user_id: type \
          (upstream: integer; ours: string)"
        ],
        "{}",
        verdict.text
    );
    assert!(verdict.text.contains("stale allow-list entry"));
}

#[test]
fn snake_case_matches_the_sdk_method_names() {
    for (id, method) in [
        ("listSTPGroups", "list_stp_groups"),
        ("listSTPGroupsUsers", "list_stp_groups_users"),
        ("getSystemTime", "get_system_time"),
        ("getAccountDetail", "get_account_detail"),
        ("listSubAccounts", "list_sub_accounts"),
    ] {
        assert_eq!(snake_case(id), method);
    }
}
