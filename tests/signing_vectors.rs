//! The pure signer against independent references: Gate's two published vectors and the
//! fixture produced by Gate's official Python SDK (`tests/fixtures/gen_signing_vectors.py`,
//! run by hand with `gate-api` 7.2.161).

use gate_stp::signing::{SigningInput, SigningKey, body_hash_hex, sign};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    secret: String,
    method: String,
    path: String,
    query: String,
    body: String,
    timestamp: String,
    sign: String,
}

/// The vectors the official Python SDK produced.
fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/signing_vectors.json")).unwrap()
}

impl Vector {
    fn input(&self) -> SigningInput<'_> {
        SigningInput {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            body: self.body.as_bytes(),
            timestamp: &self.timestamp,
        }
    }
}

#[test]
fn gate_published_get_vector() {
    let input = SigningInput {
        method: "GET",
        path: "/api/v4/futures/orders",
        query: "contract=BTC_USD&status=finished&limit=50",
        body: b"",
        timestamp: "1541993715",
    };
    assert_eq!(
        sign(b"secret", &input).to_hex(),
        "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
    );
}

#[test]
fn gate_published_post_vector() {
    let body =
        br#"{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}"#;
    assert_eq!(
        body_hash_hex(body),
        "ad3c169203dc3026558f01b4df307641fa1fa361f086b2306658886d5708767b1854797c68d9e62fef2f991645aa82673622ebf417e091d0bd22bafe5d956cca"
    );
    let input = SigningInput {
        method: "POST",
        path: "/api/v4/futures/orders",
        query: "",
        body,
        timestamp: "1541993715",
    };
    assert_eq!(
        sign(b"secret", &input).to_hex(),
        "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0"
    );
}

#[test]
fn official_python_sdk_vectors() {
    let fixture = fixture();
    assert!(fixture.vectors.len() >= 30, "fixture too small");
    let mut failures = Vec::new();
    for v in &fixture.vectors {
        if sign(v.secret.as_bytes(), &v.input()).to_hex() != v.sign {
            failures.push(v.name.as_str());
        }
    }
    assert!(
        failures.is_empty(),
        "vectors that do not match the SDK: {failures:?}"
    );
}

/// One [`SigningKey`] per secret, reused for every vector of that secret and twice over:
/// signing must leave the keyed state as it found it.
#[test]
fn a_reused_signing_key_matches_every_vector() {
    let fixture = fixture();
    let mut keys: Vec<(&str, SigningKey)> = Vec::new();
    let mut failures = Vec::new();
    for round in 0..2 {
        for v in &fixture.vectors {
            let key = match keys.iter().position(|(secret, _)| *secret == v.secret) {
                Some(i) => &keys[i].1,
                None => {
                    keys.push((&v.secret, SigningKey::new(v.secret.as_bytes())));
                    &keys[keys.len() - 1].1
                }
            };
            if key.sign(&v.input()).to_hex() != v.sign {
                failures.push((round, v.name.as_str()));
            }
        }
    }
    assert!(
        keys.len() < fixture.vectors.len(),
        "no secret is shared by two vectors: nothing is reused"
    );
    assert!(
        failures.is_empty(),
        "(round, vector) mismatches: {failures:?}"
    );
    assert_eq!(
        format!("{:?}", keys[0].1),
        "SigningKey(<redacted>)",
        "Debug must not show key material"
    );
}
