//! The emulator answers every operation of the fragment with bodies that validate against
//! the fragment's own schemas, for successes and errors; an operation added to the
//! fragment without a case here (and so, without the emulator serving it) fails the test.
#![cfg(feature = "mock")]

use std::collections::BTreeMap;

use crate::common;

use gate_stp::{
    Credentials,
    mock::{EmulatorConfig, RunningEmulator, demo},
    sign_request,
};
use serde_json::{Value, json};

fn fragment() -> Value {
    serde_yaml_ng::from_str(include_str!("../../openapi/gate-stp.yaml")).unwrap()
}

/// A validator for `schema`, with the fragment's components in scope for `$ref`.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = spec["components"].clone();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&root)
        .unwrap()
}

fn response_schema(spec: &Value, path: &str, method: &str, status: &str) -> Value {
    let mut response = spec["paths"][path][method]["responses"][status].clone();
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        response = spec["components"]["responses"][name].clone();
    }
    response["content"]["application/json"]["schema"].clone()
}

async fn send(
    emulator: &RunningEmulator,
    key: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path_and_query}", emulator.base_url());
    let mut builder = http.request(method.parse().unwrap(), url);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let mut request = builder.build().unwrap();
    if !path_and_query.starts_with("/spot/") {
        let now = gate_stp::Clock::now(&gate_stp::SystemClock)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        sign_request(&mut request, &Credentials::new(key, secret).unwrap(), now).unwrap();
    }
    let response = http.execute(request).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn every_operation_answers_in_the_fragments_shapes() {
    let spec = fragment();
    let emulator = common::emulator::start(EmulatorConfig::default()).await;
    let (status, group) = send(
        &emulator,
        demo::MAIN_KEY,
        demo::MAIN_SECRET,
        "POST",
        "/account/stp_groups",
        Some(json!({"name": "conformance"})),
    )
    .await;
    assert_eq!(status, 200);
    let id = group["id"].as_i64().unwrap();
    let users = format!("/account/stp_groups/{id}/users");

    // operationId -> (method, path template, a success request, an error request).
    type Case = (&'static str, String, Option<Value>);
    let cases: BTreeMap<&str, (Case, Case)> = BTreeMap::from([
        (
            "getSystemTime",
            (
                ("GET", "/spot/time".into(), None),
                ("GET", "/spot/time".into(), None),
            ),
        ),
        (
            "listSTPGroups",
            (
                ("GET", "/account/stp_groups?name=CONF".into(), None),
                ("GET", "/account/stp_groups".into(), None),
            ),
        ),
        (
            "createSTPGroup",
            (
                (
                    "POST",
                    "/account/stp_groups".into(),
                    Some(json!({"name": "second"})),
                ),
                (
                    "POST",
                    "/account/stp_groups".into(),
                    Some(json!({"name": ""})),
                ),
            ),
        ),
        (
            "listSTPGroupsUsers",
            (
                ("GET", users.clone(), None),
                ("GET", "/account/stp_groups/999999/users".into(), None),
            ),
        ),
        (
            "addSTPGroupUsers",
            (
                ("POST", users.clone(), Some(json!([demo::SUB_USER]))),
                ("POST", users.clone(), Some(json!([demo::OTHER_SUB_USER]))),
            ),
        ),
        (
            "deleteSTPGroupUsers",
            (
                (
                    "DELETE",
                    format!("{users}?user_id={}", demo::SUB_USER),
                    None,
                ),
                ("DELETE", users.clone(), None),
            ),
        ),
        (
            "getAccountDetail",
            (
                ("GET", "/account/detail".into(), None),
                ("GET", "/account/detail".into(), None),
            ),
        ),
        (
            "listSubAccounts",
            (
                ("GET", "/sub_accounts?type=0".into(), None),
                ("GET", "/sub_accounts?type=9".into(), None),
            ),
        ),
    ]);

    let mut seen = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let id = operation["operationId"].as_str().unwrap();
            seen.push(id);
            let Some((ok, bad)) = cases.get(id) else {
                panic!(
                    "operation {id} ({method} {path}) is in the fragment but not exercised against the emulator"
                );
            };
            assert_eq!(ok.0.to_lowercase(), *method, "{id}");
            let (status, body) = send(
                &emulator,
                demo::MAIN_KEY,
                demo::MAIN_SECRET,
                ok.0,
                &ok.1,
                ok.2.clone(),
            )
            .await;
            assert_eq!(status, 200, "{id}: {body}");
            let schema = validator(&spec, &response_schema(&spec, path, method, "200"));
            assert!(
                schema.is_valid(&body),
                "{id} 200 body does not match the fragment: {body}"
            );

            // Errors: where the request itself cannot be wrong, a bad signature provokes one
            // (for the public endpoint, on a private path, since /spot/time never fails).
            let (status, body) =
                if matches!(id, "getSystemTime" | "listSTPGroups" | "getAccountDetail") {
                    let private_path = if id == "getSystemTime" {
                        "/account/stp_groups"
                    } else {
                        bad.1.as_str()
                    };
                    send(
                        &emulator,
                        demo::MAIN_KEY,
                        "wrong-secret",
                        "GET",
                        private_path,
                        None,
                    )
                    .await
                } else {
                    send(
                        &emulator,
                        demo::MAIN_KEY,
                        demo::MAIN_SECRET,
                        bad.0,
                        &bad.1,
                        bad.2.clone(),
                    )
                    .await
                };
            assert!(
                (400..500).contains(&status),
                "{id}: expected a 4xx, got {status} {body}"
            );
            let schema = validator(&spec, &response_schema(&spec, path, method, "4XX"));
            assert!(
                schema.is_valid(&body),
                "{id} error body does not match GateError: {body}"
            );
        }
    }
    assert_eq!(
        seen.len(),
        cases.len(),
        "a case exists for an operation the fragment lost"
    );
    emulator.shutdown().await;
}

#[test]
fn validation_can_fail() {
    let spec = fragment();
    let schema = validator(
        &spec,
        &response_schema(&spec, "/account/stp_groups", "post", "200"),
    );
    assert!(schema.is_valid(&json!({"id": 1, "name": "x"})));
    assert!(!schema.is_valid(&json!({"id": "1", "name": "x"})));
    assert!(!schema.is_valid(&json!({"id": 1})));
}
