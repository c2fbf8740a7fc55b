//! Property tests over the wire: what the client signs, the emulator's independent
//! verifier accepts; any change to a signed byte after signing is refused.
#![cfg(feature = "mock")]

use gate_stp::{
    Credentials,
    mock::{Emulator, EmulatorConfig, World, demo},
    sign_request,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Tamper {
    None,
    Method,
    Path,
    Query,
    Body,
    Timestamp,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        Just(Tamper::None),
        Just(Tamper::Method),
        Just(Tamper::Path),
        Just(Tamper::Query),
        Just(Tamper::Body),
        Just(Tamper::Timestamp),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn verifier_accepts_exactly_what_was_signed(
        // Any printable Unicode with at least one non-blank character: Gate (and the
        // emulator) refuse a blank name before the signature matters.
        name in "\\PC{0,12}[^\\s\\p{C}]\\PC{0,11}",
        query_value in "\\PC{0,16}",
        stp_id in 1i64..i64::MAX,
        change in tamper(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(sign_tamper_and_send(name, query_value, stp_id, change))?;
    }
}

/// One case of the property, outside the macro so that rustfmt formats it: a request
/// signed by the client, tampered with as `change` says, sent to a fresh emulator.
async fn sign_tamper_and_send(
    name: String,
    query_value: String,
    stp_id: i64,
    change: Tamper,
) -> Result<(), TestCaseError> {
    let emulator = Emulator::start(
        World::demo(),
        EmulatorConfig::default().without_rate_limit(),
    )
    .await
    .unwrap();
    let credentials = Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap();
    let http = reqwest::Client::new();
    let now = gate_stp::Clock::now(&gate_stp::SystemClock)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // A create with an arbitrary Unicode name (body) and a query the server ignores
    // but the signature covers.
    let body = serde_json::to_vec(&serde_json::json!({"name": name})).unwrap();
    let mut url =
        reqwest::Url::parse(&format!("{}/account/stp_groups", emulator.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("note", &query_value)
        .append_pair("id", &stp_id.to_string());
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone())
        .build()
        .unwrap();
    sign_request(&mut request, &credentials, now).unwrap();
    // The emulator's verifier ships with the crate; the SIGN sent is also checked against
    // the independent signer of tests/common, written from Gate's documentation.
    let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
    let expected = crate::common::gate_sign(
        demo::MAIN_SECRET,
        "POST",
        request.url().path(),
        request.url().query().unwrap_or_default(),
        &body,
        &header("timestamp"),
    );
    prop_assert_eq!(header("sign"), expected);
    match change {
        Tamper::None => {}
        Tamper::Method => *request.method_mut() = reqwest::Method::GET,
        Tamper::Path => request
            .url_mut()
            .set_path("/api/v4/account/stp_groups/1/users"),
        Tamper::Query => request.url_mut().set_query(Some("note=tampered")),
        Tamper::Body => {
            let mut changed = body.clone();
            changed.insert(changed.len() - 1, b' ');
            *request.body_mut() = Some(changed.into());
        }
        Tamper::Timestamp => {
            request.headers_mut().insert("timestamp", (now + 1).into());
        }
    }
    let response = http.execute(request).await.unwrap();
    let status = response.status().as_u16();
    let answer: serde_json::Value = response.json().await.unwrap();
    match change {
        Tamper::None => prop_assert_eq!(status, 200, "{}", answer),
        _ => {
            prop_assert_eq!(status, 401, "{:?}: {}", change, answer);
            prop_assert_eq!(answer["label"].as_str(), Some("INVALID_SIGNATURE"));
        }
    }
    emulator.shutdown().await;
    Ok(())
}
