//! Property tests over the wire: what the client signs, the emulator's independent
//! verifier accepts; any change to a signed byte after signing is refused.
#![cfg(feature = "mock")]

use gate_stp::{
    Credentials,
    mock::{Emulator, EmulatorConfig, World, demo},
    sign_request,
};
use proptest::{prelude::*, test_runner::TestRunner};

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

/// What every case of the property shares: starting an emulator and an HTTP client per
/// case cost about 0.1 s each (most of the suite's longest test); one of each serves all
/// cases, since each case is a single request whose answer depends only on what it sent.
struct Bench {
    runtime: tokio::runtime::Runtime,
    emulator: gate_stp::mock::RunningEmulator,
    http: reqwest::Client,
}

impl Bench {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = EmulatorConfig::default().without_rate_limit();
        let emulator = runtime
            .block_on(Emulator::start(World::demo(), config))
            .unwrap();
        Bench {
            runtime,
            emulator,
            http: reqwest::Client::new(),
        }
    }
}

#[test]
fn verifier_accepts_exactly_what_was_signed() {
    let bench = Bench::start();
    let cases = (
        // Any printable Unicode with at least one non-blank character: Gate (and the
        // emulator) refuse a blank name before the signature matters.
        "\\PC{0,12}[^\\s\\p{C}]\\PC{0,11}",
        "\\PC{0,16}",
        1i64..i64::MAX,
        tamper(),
    );
    let mut runner = TestRunner::new(ProptestConfig::with_cases(96));
    let outcome = runner.run(&cases, |(name, query_value, stp_id, change)| {
        bench.runtime.block_on(sign_tamper_and_send(
            &bench,
            name,
            query_value,
            stp_id,
            change,
        ))
    });
    let Bench {
        runtime, emulator, ..
    } = bench;
    runtime.block_on(emulator.shutdown());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// One case of the property: a request signed by the client, tampered with as `change`
/// says, sent to the shared emulator.
async fn sign_tamper_and_send(
    bench: &Bench,
    name: String,
    query_value: String,
    stp_id: i64,
    change: Tamper,
) -> Result<(), TestCaseError> {
    let (emulator, http) = (&bench.emulator, &bench.http);
    let credentials = Credentials::new(demo::MAIN_KEY, demo::MAIN_SECRET).unwrap();
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
    Ok(())
}
