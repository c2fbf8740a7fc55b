//! What an agent learns from `tools/list` and gets back: every input and output schema is
//! valid JSON Schema 2020-12 with only the formats that draft defines (checked by a
//! validator, not by eye), every result matches its tool's output schema and carries its
//! JSON in a text block after a one-line summary, and `plan` explains its document and
//! takes it as a JSON object too.
#![cfg(feature = "cli")]

use std::collections::BTreeSet;

use gate_stp::desired::{DesiredState, Format};
use rmcp::model::{CallToolResult, Tool};
use serde_json::{Value, json};

use super::mcp::{DESK, MAIN, by_name, digest_of, emulator, library_client, start};

/// The formats JSON Schema 2020-12 defines (Validation, §7.3), written out here
/// independently of the server's list.
const FORMATS_2020_12: [&str; 19] = [
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

fn formats(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(format)) = object.get("format") {
                found.insert(format.clone());
            }
            object.values().for_each(|value| formats(value, found));
        }
        Value::Array(items) => items.iter().for_each(|value| formats(value, found)),
        _ => {}
    }
}

/// A strict 2020-12 validator of `schema`: an unknown format is an error, not ignored.
fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(schema)
        .unwrap_or_else(|e| panic!("not a usable schema ({e}): {schema}"))
}

#[track_caller]
fn assert_valid_schema(tool: &str, which: &str, schema: &Value) {
    jsonschema::draft202012::meta::validate(schema)
        .unwrap_or_else(|e| panic!("{tool} {which}: not JSON Schema 2020-12: {e}"));
    validator(schema);
    let mut found = BTreeSet::new();
    formats(schema, &mut found);
    for format in &found {
        assert!(
            FORMATS_2020_12.contains(&format.as_str()),
            "{tool} {which}: non-standard format {format:?}"
        );
    }
    assert!(
        !schema.to_string().contains("#/definitions/"),
        "{tool} {which}: a draft-07 reference"
    );
}

fn schema_of(tool: &Tool, output: bool) -> Value {
    let schema = if output {
        tool.output_schema.as_ref().expect("an output schema")
    } else {
        &tool.input_schema
    };
    Value::Object(schema.as_ref().clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_schema_is_json_schema_2020_12_without_non_standard_formats() {
    let emulator = emulator().await;
    let server = start(&emulator, &["--allow-apply"]).await;
    let tools = server.session.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 6);
    for tool in &tools {
        assert_valid_schema(&tool.name, "inputSchema", &schema_of(tool, false));
        assert_valid_schema(&tool.name, "outputSchema", &schema_of(tool, true));
    }
    // The plan's output schema describes the plan itself, not "anything".
    let plan = schema_of(&by_name(&tools, "plan"), true);
    // (or null, for a plan too large to carry: see mcp_bounds)
    let property = &plan["properties"]["plan"]["anyOf"][0];
    assert_eq!(property["type"], json!("object"), "{property}");
    assert!(
        property["required"]
            .as_array()
            .unwrap()
            .contains(&json!("steps"))
    );
    assert!(plan["$defs"].get("Step").is_some(), "{plan}");
    server.stop().await;
}

/// `result` carries `structuredContent` valid against `schema`, and the same JSON in a
/// second text block after a first block whose first line is a summary.
#[track_caller]
fn assert_result_shape(tool: &str, result: &CallToolResult, schema: &Value) {
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    let structured = result
        .structured_content
        .as_ref()
        .expect("structuredContent");
    let errors: Vec<String> = validator(schema)
        .iter_errors(structured)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{tool}: {errors:?}\n{structured}");
    assert_eq!(result.content.len(), 2, "{tool}: {result:?}");
    let text = &result.content[0].as_text().unwrap().text;
    let summary = text.lines().next().unwrap_or_default();
    assert!(
        !summary.is_empty() && !summary.starts_with('{'),
        "{tool}: {text}"
    );
    let json = &result.content[1].as_text().unwrap().text;
    let parsed: Value = serde_json::from_str(json).unwrap();
    assert_eq!(&parsed, structured, "{tool}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_result_matches_its_output_schema_and_carries_its_json_after_a_summary() {
    let emulator = emulator().await;
    let client = library_client(&emulator);
    let old = client
        .create_group("old\u{200b}")
        .await
        .unwrap()
        .id
        .unwrap();
    client.add_users(old, &[MAIN + 3]).await.unwrap();
    let server = start(&emulator, &["--allow-apply"]).await;
    let tools = server.session.list_all_tools().await.unwrap();
    let schema = |name: &str| schema_of(&by_name(&tools, name), true);
    for (tool, arguments) in [
        ("account", json!({})),
        ("list_groups", json!({})),
        ("list_members", json!({"stp_id": old})),
        ("export", json!({})),
    ] {
        let result = server.call(tool, arguments).await.unwrap();
        assert_result_shape(tool, &result, &schema(tool));
    }
    let planned = server
        .call("plan", json!({"document": DESK}))
        .await
        .unwrap();
    assert_result_shape("plan", &planned, &schema("plan"));
    let digest = digest_of(planned.structured_content.as_ref().unwrap());
    let applied = server
        .call("apply", json!({"digest": digest}))
        .await
        .unwrap();
    assert_result_shape("apply", &applied, &schema("apply"));
    // The invisible character of the group's name is an escape in both text blocks.
    let listed = server.call("list_groups", json!({})).await.unwrap();
    for block in &listed.content {
        let text = &block.as_text().unwrap().text;
        assert!(!text.contains('\u{200b}'), "{text}");
    }
    assert!(
        listed.content[1]
            .as_text()
            .unwrap()
            .text
            .contains("old\\u200b")
    );
    server.stop().await;
}

/// The object branch of `plan`'s `document` schema: the desired-state schema.
fn desired_state_schema(tools: &[Tool]) -> Value {
    let input = schema_of(&by_name(tools, "plan"), false);
    input["properties"]["document"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|branch| branch["type"] == json!("object"))
        .cloned()
        .expect("an object branch")
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_takes_the_document_as_an_object_held_to_the_published_schema() {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    let tools = server.session.list_all_tools().await.unwrap();
    let schema = validator(&desired_state_schema(&tools));

    // DESK as an object plans the same plan: the same digest.
    let object =
        json!({"main_user_id": MAIN, "group": [{"name": "desk", "members": ["bot_1", "bot_2"]}]});
    assert!(schema.is_valid(&object));
    let (_, from_text) = server.ok("plan", json!({"document": DESK})).await;
    let (_, from_object) = server.ok("plan", json!({"document": object})).await;
    assert_eq!(digest_of(&from_object), digest_of(&from_text));

    // What export writes is valid against the schema (as JSON).
    let (_, exported) = server.ok("export", json!({})).await;
    let state = DesiredState::parse(
        exported["document"].as_str().unwrap(),
        Format::Toml,
        "export",
    )
    .unwrap();
    let as_json: Value = serde_json::from_str(&state.to_json_string()).unwrap();
    assert!(schema.is_valid(&as_json), "{as_json}");

    // Refused by the schema and by the server alike, the server naming the place.
    for (document, words) in [
        (
            json!({"main_user_id": MAIN, "groups": []}),
            &["`groups`", "unknown field"][..],
        ),
        (
            json!({"main_user_id": MAIN, "group": [{"name": "d", "members": [true]}]}),
            &["`group[0].members[0]`"][..],
        ),
        (json!({"group": []}), &["missing field `main_user_id`"][..]),
        (
            json!({"main_user_id": MAIN, "group": [{"name": ""}]}),
            &["empty name"][..],
        ),
    ] {
        assert!(!schema.is_valid(&document), "the schema accepts {document}");
        let refusal = server.refused("plan", json!({"document": document})).await;
        for word in words {
            assert!(refusal.contains(word), "{word:?} not in {refusal}");
        }
        assert!(refusal.contains("fix the document"), "{refusal}");
    }
    // An object is held to the size of a text document (4 MiB) too.
    let names: Vec<String> = (0..20_000).map(|i| format!("{i:0>250}")).collect();
    let huge = json!({"main_user_id": MAIN, "group": [{"name": "d", "members": names}]});
    let refusal = server.refused("plan", json!({"document": huge})).await;
    assert!(
        refusal.contains("more than the limit of 4 MiB"),
        "{refusal}"
    );
    let refusal = server.refused("plan", json!({"document": [1]})).await;
    assert!(
        refusal.contains("`document`: expected a TOML or JSON text or a JSON object, got an array"),
        "{refusal}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_description_teaches_the_format_with_examples_that_parse() {
    let emulator = emulator().await;
    let server = start(&emulator, &[]).await;
    let tools = server.session.list_all_tools().await.unwrap();
    let description = by_name(&tools, "plan").description.unwrap().into_owned();
    for word in [
        "main_user_id",
        "[[group]]",
        "members",
        "protect",
        "login names",
        "export",
    ] {
        assert!(description.contains(word), "{word:?} not in {description}");
    }
    // The TOML example, from its first line to its last, is a document.
    let start = description.find("main_user_id = ").unwrap();
    let end = description[start..].find("\n\n").unwrap() + start;
    let toml = DesiredState::parse(&description[start..end], Format::Toml, "example").unwrap();
    assert_eq!(toml.groups[0].name, "market-makers");
    assert!(toml.groups[0].protect);
    // And so is the JSON example.
    let start = description.find("{\"main_user_id\"").unwrap();
    let end = description[start..].find("]}]}").unwrap() + start + 4;
    let json = DesiredState::parse(&description[start..end], Format::Json, "example").unwrap();
    assert_eq!(json.groups[0].members, toml.groups[0].members);
    server.stop().await;
}
