//! The fragment's house rules (`openapi/gate-stp.yaml`), checked as tests.
//!
//! `check` collects every problem as a sentence naming the operation (or component) and the
//! reason, so one run lists all that is wrong. `check_catches_a_broken_fragment` feeds it a
//! deliberately damaged copy of the fragment, so the checks cannot pass by checking nothing.

use std::collections::{BTreeMap, BTreeSet};

use openapiv3::{
    APIKeyLocation, AdditionalProperties, IntegerFormat, OpenAPI, Operation, Parameter,
    ParameterSchemaOrContent, ReferenceOr, Response, Schema, SchemaKind, SecurityScheme,
    StatusCode, Type, VariantOrUnknownOrEmpty,
};
use serde_yaml_ng::Value;

/// The fragment; `include_str!` also makes cargo rebuild this test when it changes.
const FRAGMENT: &str = include_str!("../../openapi/gate-stp.yaml");

/// The only operation that is sent unsigned, and must say so with `security: []`.
const PUBLIC_OPERATION: &str = "getSystemTime";
/// The security scheme every other operation must require.
const SECURITY_SCHEME: &str = "apiv4";
/// Every path lies at or below one of these.
const PATH_PREFIXES: &[&str] = &[
    "/account/stp_groups",
    "/account/detail",
    "/sub_accounts",
    "/spot/time",
];
/// Gate's operationIds (as in its SDKs) with their method and path; all must be present.
const EXPECTED_OPERATIONS: &[(&str, &str, &str)] = &[
    ("getSystemTime", "get", "/spot/time"),
    ("listSTPGroups", "get", "/account/stp_groups"),
    ("createSTPGroup", "post", "/account/stp_groups"),
    (
        "listSTPGroupsUsers",
        "get",
        "/account/stp_groups/{stp_id}/users",
    ),
    (
        "addSTPGroupUsers",
        "post",
        "/account/stp_groups/{stp_id}/users",
    ),
    (
        "deleteSTPGroupUsers",
        "delete",
        "/account/stp_groups/{stp_id}/users",
    ),
    ("getAccountDetail", "get", "/account/detail"),
    ("listSubAccounts", "get", "/sub_accounts"),
];
/// The one schema every `4XX` and `5XX` response must carry.
const ERROR_SCHEMA: &str = "GateError";
const JSON: &str = "application/json";

const SCHEMAS: &str = "#/components/schemas/";
const PARAMETERS: &str = "#/components/parameters/";
const RESPONSES: &str = "#/components/responses/";

fn parse(text: &str) -> Result<OpenAPI, String> {
    serde_yaml_ng::from_str(text).map_err(|e| format!("not an OpenAPI 3.0 document: {e}"))
}

/// Every rule broken by `spec`, one sentence each; empty when the fragment is sound.
fn check(spec: &OpenAPI) -> Vec<String> {
    let mut problems = Vec::new();
    let p = &mut problems;

    if !spec.openapi.starts_with("3.0.") {
        p.push(format!(
            "openapi: version {:?} is not 3.0.x (progenitor 0.15 accepts only 3.0)",
            spec.openapi
        ));
    }
    check_security_scheme(spec, p);
    check_error_schema(spec, p);

    // Component schemas used by each operation, directly or through other components, so
    // that a problem in a shared schema names the operations it affects.
    let mut used_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut params_used_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();

    for (path, item) in &spec.paths.paths {
        let ReferenceOr::Item(item) = item else {
            p.push(format!("path {path}: is a $ref; path items must be inline"));
            continue;
        };
        if !PATH_PREFIXES
            .iter()
            .any(|prefix| path == prefix || path.starts_with(&format!("{prefix}/")))
        {
            p.push(format!(
                "path {path}: not under the documented prefixes {PATH_PREFIXES:?}"
            ));
        }
        for param in &item.parameters {
            check_parameter(spec, param, &format!("path {path}"), p);
        }
        for (method, op) in item.iter() {
            let label = op_label(op, method, path);
            if let Some(id) = &op.operation_id {
                let here = format!("{} {path}", method.to_ascii_uppercase());
                if let Some(before) = seen_ids.insert(id.clone(), here) {
                    p.push(format!(
                        "{label}: operationId {id} is also used by {before}"
                    ));
                }
            }
            check_operation(spec, op, &label, p);
            let name = op.operation_id.clone().unwrap_or(label);
            for schema in schemas_used_by(spec, op, &item.parameters) {
                used_by.entry(schema).or_default().insert(name.clone());
            }
            for param in item.parameters.iter().chain(&op.parameters) {
                if let ReferenceOr::Reference { reference } = param
                    && let Some(param) = reference.strip_prefix(PARAMETERS)
                {
                    let users = params_used_by.entry(param.to_owned()).or_default();
                    users.insert(name.clone());
                }
            }
        }
    }

    if let Some(components) = &spec.components {
        for (name, schema) in &components.schemas {
            let before = p.len();
            let at = format!("components.schemas.{name}");
            check_integers(spec, schema.into(), Some(name), &at, p);
            for problem in &mut p[before..] {
                problem.push_str(&users(&used_by, name));
            }
        }
        for (name, param) in &components.parameters {
            let before = p.len();
            check_parameter(spec, param, &format!("components.parameters.{name}"), p);
            for problem in &mut p[before..] {
                problem.push_str(&users(&params_used_by, name));
            }
        }
    }

    check_expected_operations(spec, p);
    problems
}

fn op_label(op: &Operation, method: &str, path: &str) -> String {
    let method = method.to_ascii_uppercase();
    match &op.operation_id {
        Some(id) => format!("{id} ({method} {path})"),
        None => format!("<no operationId> ({method} {path})"),
    }
}

fn users(used_by: &BTreeMap<String, BTreeSet<String>>, schema: &str) -> String {
    match used_by.get(schema) {
        Some(ops) if !ops.is_empty() => {
            format!(
                " (used by {})",
                ops.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
        _ => String::new(),
    }
}

fn check_security_scheme(spec: &OpenAPI, p: &mut Vec<String>) {
    let scheme = spec
        .components
        .as_ref()
        .and_then(|c| c.security_schemes.get(SECURITY_SCHEME));
    match scheme {
        None => p.push(format!(
            "components.securitySchemes.{SECURITY_SCHEME}: missing"
        )),
        Some(ReferenceOr::Reference { reference }) => p.push(format!(
            "components.securitySchemes.{SECURITY_SCHEME}: is a $ref ({reference}), expected \
             an inline apiKey scheme"
        )),
        Some(ReferenceOr::Item(SecurityScheme::APIKey { location, name, .. })) => {
            if !matches!(location, APIKeyLocation::Header) || name != "KEY" {
                p.push(format!(
                    "components.securitySchemes.{SECURITY_SCHEME}: expected an apiKey in \
                     header `KEY`, found one in {location:?} named `{name}`"
                ));
            }
        }
        Some(ReferenceOr::Item(other)) => p.push(format!(
            "components.securitySchemes.{SECURITY_SCHEME}: expected an apiKey in header \
             `KEY`, found {other:?}"
        )),
    }
}

fn check_error_schema(spec: &OpenAPI, p: &mut Vec<String>) {
    let schema = spec
        .components
        .as_ref()
        .and_then(|c| c.schemas.get(ERROR_SCHEMA));
    match schema {
        Some(ReferenceOr::Item(Schema {
            schema_kind: SchemaKind::Type(Type::Object(object)),
            ..
        })) => {
            if !object.properties.contains_key("label")
                || !object.required.iter().any(|r| r == "label")
            {
                p.push(format!(
                    "components.schemas.{ERROR_SCHEMA}: must have a required `label` property"
                ));
            }
        }
        Some(_) => p.push(format!(
            "components.schemas.{ERROR_SCHEMA}: must be an inline object schema"
        )),
        None => p.push(format!("components.schemas.{ERROR_SCHEMA}: missing")),
    }
}

fn check_operation(spec: &OpenAPI, op: &Operation, label: &str, p: &mut Vec<String>) {
    let id = op.operation_id.as_deref();
    if id.is_none_or(|id| id.trim().is_empty()) {
        p.push(format!("{label}: has no operationId"));
    }
    if op.summary.as_deref().is_none_or(|s| s.trim().is_empty()) {
        p.push(format!("{label}: has no summary"));
    }

    // Security: `security` on the operation replaces the top-level list.
    if id == Some(PUBLIC_OPERATION) {
        if !op.security.as_ref().is_some_and(Vec::is_empty) {
            p.push(format!(
                "{label}: is public and must say `security: []`, found {:?}",
                op.security
            ));
        }
    } else {
        let (requirements, from) = match &op.security {
            Some(own) => (own.as_slice(), "its own `security`"),
            None => (
                spec.security.as_deref().unwrap_or_default(),
                "the top-level `security`",
            ),
        };
        if requirements.is_empty() {
            p.push(format!(
                "{label}: is not covered by {SECURITY_SCHEME}: {from} is empty or missing, so \
                 the operation would be sent unsigned"
            ));
        } else if let Some(bad) = requirements
            .iter()
            .find(|r| !r.contains_key(SECURITY_SCHEME))
        {
            p.push(format!(
                "{label}: {from} offers the alternative {bad:?} without {SECURITY_SCHEME}"
            ));
        }
    }

    // Parameters.
    for param in &op.parameters {
        check_parameter(spec, param, label, p);
    }

    // Request body.
    if let Some(body) = &op.request_body {
        match body {
            ReferenceOr::Reference { reference } => p.push(format!(
                "{label}: requestBody is a $ref ({reference}); keep request bodies inline"
            )),
            ReferenceOr::Item(body) => {
                for (media, content) in &body.content {
                    if let Some(schema) = &content.schema {
                        let at = format!("{label}: requestBody {media}");
                        check_integers(spec, schema.into(), None, &at, p);
                    }
                }
            }
        }
    }

    // Responses: one JSON success type, one error type.
    match op.responses.responses.get(&StatusCode::Code(200)) {
        None => p.push(format!("{label}: has no 200 response")),
        Some(response) => match resolve_response(spec, response) {
            Err(e) => p.push(format!("{label}: response 200: {e}")),
            Ok(response) => match response.content.get(JSON).and_then(|m| m.schema.as_ref()) {
                None => p.push(format!("{label}: response 200 has no {JSON} schema")),
                Some(schema) => {
                    let at = format!("{label}: response 200");
                    check_integers(spec, schema.into(), None, &at, p);
                }
            },
        },
    }
    for range in [4, 5] {
        let status = format!("{range}XX");
        match op.responses.responses.get(&StatusCode::Range(range)) {
            None => p.push(format!("{label}: has no {status} response")),
            Some(response) => {
                if let Err(e) = error_response(spec, response) {
                    p.push(format!("{label}: response {status}: {e}"));
                }
            }
        }
    }
    if op.responses.default.is_some() {
        p.push(format!(
            "{label}: has a `default` response; declare errors as 4XX and 5XX (a differently \
             typed default panics progenitor)"
        ));
    }
}

/// The response must resolve to JSON whose schema is exactly `$ref: GateError`.
fn error_response(spec: &OpenAPI, response: &ReferenceOr<Response>) -> Result<(), String> {
    let response = resolve_response(spec, response)?;
    let schema = response
        .content
        .get(JSON)
        .and_then(|m| m.schema.as_ref())
        .ok_or_else(|| format!("has no {JSON} schema"))?;
    let expected = format!("{SCHEMAS}{ERROR_SCHEMA}");
    match schema {
        ReferenceOr::Reference { reference } if *reference == expected => Ok(()),
        ReferenceOr::Reference { reference } => {
            Err(format!("schema is {reference}, expected {expected}"))
        }
        ReferenceOr::Item(_) => Err(format!("schema is inline, expected {expected}")),
    }
}

fn resolve_response<'a>(
    spec: &'a OpenAPI,
    response: &'a ReferenceOr<Response>,
) -> Result<&'a Response, String> {
    let mut current = response;
    for _ in 0..8 {
        match current {
            ReferenceOr::Item(response) => return Ok(response),
            ReferenceOr::Reference { reference } => {
                current = reference
                    .strip_prefix(RESPONSES)
                    .and_then(|name| spec.components.as_ref()?.responses.get(name))
                    .ok_or_else(|| format!("$ref {reference} does not resolve"))?;
            }
        }
    }
    Err("$ref chain too long".to_owned())
}

fn resolve_parameter<'a>(
    spec: &'a OpenAPI,
    param: &'a ReferenceOr<Parameter>,
) -> Result<&'a Parameter, String> {
    let mut current = param;
    for _ in 0..8 {
        match current {
            ReferenceOr::Item(param) => return Ok(param),
            ReferenceOr::Reference { reference } => {
                current = reference
                    .strip_prefix(PARAMETERS)
                    .and_then(|name| spec.components.as_ref()?.parameters.get(name))
                    .ok_or_else(|| format!("parameter $ref {reference} does not resolve"))?;
            }
        }
    }
    Err("parameter $ref chain too long".to_owned())
}

/// Follows `$ref`s to component schemas; `Err` names a dangling or circular one.
fn resolve_schema<'a>(spec: &'a OpenAPI, schema: SchemaRef<'a>) -> Result<&'a Schema, String> {
    let mut current = schema;
    for _ in 0..8 {
        match current {
            SchemaRef::Item(schema) => return Ok(schema),
            SchemaRef::Ref(reference) => {
                current = reference
                    .strip_prefix(SCHEMAS)
                    .and_then(|name| spec.components.as_ref()?.schemas.get(name))
                    .ok_or_else(|| format!("schema $ref {reference} does not resolve"))?
                    .into();
            }
        }
    }
    Err("schema $ref chain too long".to_owned())
}

/// Checks an inline parameter; a `$ref` must resolve, and its target is checked once, as a
/// component (whose problems name the operations using it).
fn check_parameter(
    spec: &OpenAPI,
    param: &ReferenceOr<Parameter>,
    label: &str,
    p: &mut Vec<String>,
) {
    let param = match param {
        ReferenceOr::Item(param) => param,
        ReferenceOr::Reference { .. } => {
            if let Err(e) = resolve_parameter(spec, param) {
                p.push(format!("{label}: {e}"));
            }
            return;
        }
    };
    let data = param.parameter_data_ref();
    let at = format!("{label}: parameter {}", data.name);
    match &data.format {
        ParameterSchemaOrContent::Schema(schema) => {
            check_integers(spec, schema.into(), Some(&data.name), &at, p);
        }
        ParameterSchemaOrContent::Content(content) => {
            for media in content.values() {
                if let Some(schema) = &media.schema {
                    check_integers(spec, schema.into(), Some(&data.name), &at, p);
                }
            }
        }
    }
}

/// A schema or a `$ref` to one, whether or not it is boxed.
#[derive(Clone, Copy)]
enum SchemaRef<'a> {
    Ref(&'a str),
    Item(&'a Schema),
}

impl<'a> From<&'a ReferenceOr<Schema>> for SchemaRef<'a> {
    fn from(schema: &'a ReferenceOr<Schema>) -> Self {
        match schema {
            ReferenceOr::Reference { reference } => SchemaRef::Ref(reference),
            ReferenceOr::Item(schema) => SchemaRef::Item(schema),
        }
    }
}

impl<'a> From<&'a ReferenceOr<Box<Schema>>> for SchemaRef<'a> {
    fn from(schema: &'a ReferenceOr<Box<Schema>>) -> Self {
        match schema {
            ReferenceOr::Reference { reference } => SchemaRef::Ref(reference),
            ReferenceOr::Item(schema) => SchemaRef::Item(schema),
        }
    }
}

/// A schema found inside another: the schema, the name it goes by, and where it is.
type Node<'a> = (SchemaRef<'a>, Option<&'a str>, String);

/// Every schema nested in `schema` (itself included), with where it is and the name it
/// goes by: a property's or parameter's name, inherited by array items and compositions.
/// A `$ref` is listed but not followed.
fn nodes<'a>(schema: SchemaRef<'a>, name: Option<&'a str>, at: String, out: &mut Vec<Node<'a>>) {
    out.push((schema, name, at.clone()));
    let SchemaRef::Item(schema) = schema else {
        return;
    };
    let mut children: Vec<Node<'a>> = Vec::new();
    match &schema.schema_kind {
        SchemaKind::Type(Type::Object(object)) => {
            properties(object.properties.iter(), &at, &mut children);
            additional(
                object.additional_properties.as_ref(),
                name,
                &at,
                &mut children,
            );
        }
        SchemaKind::Type(Type::Array(array)) => {
            if let Some(items) = &array.items {
                children.push((items.into(), name, format!("{at}.items")));
            }
        }
        SchemaKind::Type(_) => {}
        SchemaKind::OneOf { one_of } => composed("oneOf", one_of, name, &at, &mut children),
        SchemaKind::AllOf { all_of } => composed("allOf", all_of, name, &at, &mut children),
        SchemaKind::AnyOf { any_of } => composed("anyOf", any_of, name, &at, &mut children),
        SchemaKind::Not { not } => {
            children.push((not.as_ref().into(), name, format!("{at}.not")));
        }
        SchemaKind::Any(any) => {
            properties(any.properties.iter(), &at, &mut children);
            additional(any.additional_properties.as_ref(), name, &at, &mut children);
            if let Some(items) = &any.items {
                children.push((items.into(), name, format!("{at}.items")));
            }
            composed("oneOf", &any.one_of, name, &at, &mut children);
            composed("allOf", &any.all_of, name, &at, &mut children);
            composed("anyOf", &any.any_of, name, &at, &mut children);
            if let Some(not) = &any.not {
                children.push((not.as_ref().into(), name, format!("{at}.not")));
            }
        }
    }
    for (child, name, at) in children {
        nodes(child, name, at, out);
    }
}

fn properties<'a>(
    props: impl Iterator<Item = (&'a String, &'a ReferenceOr<Box<Schema>>)>,
    at: &str,
    children: &mut Vec<Node<'a>>,
) {
    for (prop, schema) in props {
        children.push((
            schema.into(),
            Some(prop.as_str()),
            format!("{at}.properties.{prop}"),
        ));
    }
}

fn additional<'a>(
    additional: Option<&'a AdditionalProperties>,
    name: Option<&'a str>,
    at: &str,
    children: &mut Vec<Node<'a>>,
) {
    if let Some(AdditionalProperties::Schema(schema)) = additional {
        children.push((
            schema.as_ref().into(),
            name,
            format!("{at}.additionalProperties"),
        ));
    }
}

fn composed<'a>(
    kind: &str,
    list: &'a [ReferenceOr<Schema>],
    name: Option<&'a str>,
    at: &str,
    children: &mut Vec<Node<'a>>,
) {
    for (i, schema) in list.iter().enumerate() {
        children.push((schema.into(), name, format!("{at}.{kind}[{i}]")));
    }
}

/// Whether a property or parameter of this name holds an id or a time.
fn is_id_or_time(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    name == "id" || name.ends_with("id") || name.ends_with("ids") || name.contains("time")
}

/// Integer ids and times must be `format: int64`: Gate's ids and millisecond times overflow
/// 32 bits. A `$ref` is followed, so an alias of an integer schema is judged by the name of
/// whatever refers to it. An integer with no name (the items of an unnamed body array) is
/// held to the rule as well: nothing shows it is not an id.
fn check_integers(
    spec: &OpenAPI,
    schema: SchemaRef<'_>,
    name: Option<&str>,
    at: &str,
    p: &mut Vec<String>,
) {
    let mut all = Vec::new();
    nodes(schema, name, at.to_owned(), &mut all);
    for (node, name, at) in all {
        let target = match resolve_schema(spec, node) {
            Ok(target) => target,
            Err(e) => {
                p.push(format!("{at}: {e}"));
                continue;
            }
        };
        // Object schemas behind a `$ref` are checked once, as components.
        let format = match &target.schema_kind {
            SchemaKind::Type(Type::Integer(integer)) => match &integer.format {
                VariantOrUnknownOrEmpty::Item(IntegerFormat::Int64) => continue,
                VariantOrUnknownOrEmpty::Item(IntegerFormat::Int32) => "int32".to_owned(),
                VariantOrUnknownOrEmpty::Unknown(other) => other.clone(),
                VariantOrUnknownOrEmpty::Empty => "no format".to_owned(),
            },
            SchemaKind::Any(any) if any.typ.as_deref() == Some("integer") => {
                match any.format.as_deref() {
                    Some("int64") => continue,
                    Some(other) => other.to_owned(),
                    None => "no format".to_owned(),
                }
            }
            _ => continue,
        };
        if name.is_none_or(is_id_or_time) {
            let what = name.map_or_else(|| "an unnamed integer".to_owned(), |n| format!("`{n}`"));
            p.push(format!(
                "{at}: {what} is an id or time and must be `format: int64`, found {format}"
            ));
        }
    }
}

/// Component schemas reachable from an operation, through other components too.
fn schemas_used_by(
    spec: &OpenAPI,
    op: &Operation,
    path_params: &[ReferenceOr<Parameter>],
) -> BTreeSet<String> {
    let mut roots: Vec<SchemaRef<'_>> = Vec::new();
    for param in path_params.iter().chain(&op.parameters) {
        if let Ok(param) = resolve_parameter(spec, param) {
            match &param.parameter_data_ref().format {
                ParameterSchemaOrContent::Schema(s) => roots.push(s.into()),
                ParameterSchemaOrContent::Content(c) => {
                    roots.extend(
                        c.values()
                            .filter_map(|m| m.schema.as_ref())
                            .map(SchemaRef::from),
                    );
                }
            }
        }
    }
    if let Some(ReferenceOr::Item(body)) = &op.request_body {
        roots.extend(
            body.content
                .values()
                .filter_map(|m| m.schema.as_ref())
                .map(SchemaRef::from),
        );
    }
    for response in op.responses.responses.values() {
        if let Ok(response) = resolve_response(spec, response) {
            roots.extend(
                response
                    .content
                    .values()
                    .filter_map(|m| m.schema.as_ref())
                    .map(SchemaRef::from),
            );
        }
    }

    let mut found = BTreeSet::new();
    while let Some(root) = roots.pop() {
        let mut all = Vec::new();
        nodes(root, None, String::new(), &mut all);
        for (node, _, _) in all {
            if let SchemaRef::Ref(reference) = node
                && let Some(name) = reference.strip_prefix(SCHEMAS)
                && found.insert(name.to_owned())
                && let Some(schema) = spec.components.as_ref().and_then(|c| c.schemas.get(name))
            {
                roots.push(schema.into());
            }
        }
    }
    found
}

fn check_expected_operations(spec: &OpenAPI, p: &mut Vec<String>) {
    let mut found: BTreeMap<&str, Vec<(String, &str)>> = BTreeMap::new();
    for (path, item) in &spec.paths.paths {
        if let ReferenceOr::Item(item) = item {
            for (method, op) in item.iter() {
                if let Some(id) = &op.operation_id {
                    found.entry(id).or_default().push((method.to_owned(), path));
                }
            }
        }
    }
    for (id, method, path) in EXPECTED_OPERATIONS {
        match found.get(id) {
            None => p.push(format!(
                "{id}: missing (expected {} {path})",
                method.to_ascii_uppercase()
            )),
            Some(places) => {
                if !places.iter().any(|(m, p)| m == method && p == path) {
                    let actual: Vec<String> = places
                        .iter()
                        .map(|(m, p)| format!("{} {p}", m.to_ascii_uppercase()))
                        .collect();
                    p.push(format!(
                        "{id}: expected {} {path}, found {}",
                        method.to_ascii_uppercase(),
                        actual.join(", ")
                    ));
                }
            }
        }
    }
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "openapi/gate-stp.yaml breaks {} rule(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

#[test]
fn fragment_follows_the_house_rules() {
    let spec = parse(FRAGMENT).unwrap_or_else(|e| panic!("openapi/gate-stp.yaml: {e}"));
    assert_no_problems(&check(&spec));
}

#[test]
fn fragment_declares_openapi_3_0() {
    // Checked on the raw text too: openapiv3 reads any version string.
    let raw: Value = serde_yaml_ng::from_str(FRAGMENT).expect("fragment is YAML");
    let version = raw.get("openapi").and_then(Value::as_str);
    assert!(
        version.is_some_and(|v| v.starts_with("3.0.")),
        "openapi/gate-stp.yaml: `openapi: {version:?}` is not 3.0.x"
    );
}

/// A mapping entry of a YAML value, by a path of keys; panics with the path if absent.
fn at<'a>(value: &'a mut Value, keys: &[&str]) -> &'a mut Value {
    keys.iter().fold(value, |v, key| {
        v.get_mut(*key)
            .unwrap_or_else(|| panic!("fragment has no {}", keys.join(".")))
    })
}

/// Sets (or adds) the entry at a path of keys whose parent exists.
fn set(value: &mut Value, keys: &[&str], new: &str) {
    let (last, parent) = keys.split_last().expect("a non-empty key path");
    let new: Value = serde_yaml_ng::from_str(new).expect("replacement is YAML");
    at(value, parent)
        .as_mapping_mut()
        .unwrap_or_else(|| panic!("{} is not a mapping", parent.join(".")))
        .insert((*last).into(), new);
}

fn remove(value: &mut Value, keys: &[&str]) {
    let (last, parent) = keys.split_last().expect("a non-empty key path");
    let removed = at(value, parent)
        .as_mapping_mut()
        .and_then(|m| m.remove(*last));
    assert!(removed.is_some(), "fragment has no {}", keys.join("."));
}

#[test]
fn check_catches_a_broken_fragment() {
    let mut raw: Value = serde_yaml_ng::from_str(FRAGMENT).expect("fragment is YAML");
    let users = "/account/stp_groups/{stp_id}/users";

    // The damage; `expected` below lists the problem each must produce.
    remove(
        &mut raw,
        &["paths", "/account/stp_groups", "post", "summary"],
    );
    set(
        &mut raw,
        &[
            "components",
            "schemas",
            "StpGroup",
            "properties",
            "id",
            "format",
        ],
        "int32",
    );
    remove(&mut raw, &["paths", users, "get", "responses", "4XX"]);
    remove(&mut raw, &["paths", "/spot/time", "get", "security"]);
    set(&mut raw, &["paths", users, "delete", "security"], "[]");
    set(
        &mut raw,
        &["paths", users, "parameters"],
        "[{name: stp_id, in: path, required: true, schema: {type: integer}}]",
    );
    set(
        &mut raw,
        &["paths", users, "post", "responses", "5XX"],
        "{description: oops, content: {application/json: {schema: {$ref: '#/components/schemas/ServerTime'}}}}",
    );
    remove(&mut raw, &["paths", users, "post", "operationId"]);
    set(
        &mut raw,
        &["components", "securitySchemes", "apiv4", "name"],
        "SIGN",
    );
    set(&mut raw, &["openapi"], "3.1.0");
    set(
        &mut raw,
        &[
            "paths",
            "/spot/time",
            "get",
            "responses",
            "200",
            "content",
            "application/json",
        ],
        "{schema: {$ref: '#/components/schemas/Nowhere'}}",
    );
    set(
        &mut raw,
        &["components", "parameters", "ExpTime", "schema", "format"],
        "int32",
    );

    let broken = serde_yaml_ng::to_string(&raw).unwrap();
    let spec = parse(&broken).expect("the damaged copy still parses");
    let problems = check(&spec);

    let expected: &[&[&str]] = &[
        &["createSTPGroup (POST /account/stp_groups)", "no summary"],
        &[
            "components.schemas.StpGroup.properties.id",
            "(used by createSTPGroup, listSTPGroups)",
            "int64",
            "int32",
        ],
        &[
            "listSTPGroupsUsers (GET /account/stp_groups/{stp_id}/users)",
            "no 4XX",
        ],
        &["getSystemTime (GET /spot/time)", "security: []"],
        &[
            "deleteSTPGroupUsers (DELETE /account/stp_groups/{stp_id}/users)",
            "unsigned",
        ],
        &[
            "path /account/stp_groups/{stp_id}/users: parameter stp_id",
            "no format",
        ],
        &["response 5XX", "ServerTime", "GateError"],
        &[
            "<no operationId> (POST /account/stp_groups/{stp_id}/users)",
            "no operationId",
        ],
        &["addSTPGroupUsers: missing"],
        &["securitySchemes.apiv4", "`SIGN`"],
        &["3.1.0", "3.0.x"],
        &[
            "getSystemTime (GET /spot/time): response 200",
            "Nowhere does not resolve",
        ],
        &[
            "components.parameters.ExpTime: parameter x-gate-exptime",
            "int32",
            "(used by ",
            "createSTPGroup, deleteSTPGroupUsers, getAccountDetail, listSTPGroups, \
             listSTPGroupsUsers, listSubAccounts)",
        ],
    ];
    let missed: Vec<String> = expected
        .iter()
        .filter(|parts| {
            !problems
                .iter()
                .any(|p| parts.iter().all(|part| p.contains(part)))
        })
        .map(|parts| parts.join(" … "))
        .collect();
    assert!(
        missed.is_empty(),
        "check() missed:\n  - {}\nit reported:\n  - {}",
        missed.join("\n  - "),
        problems.join("\n  - ")
    );
    assert_eq!(
        problems.len(),
        expected.len(),
        "check() reported more than the damage done:\n  - {}",
        problems.join("\n  - ")
    );
}
