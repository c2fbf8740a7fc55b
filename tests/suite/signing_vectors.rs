//! The pure signer against independent references: Gate's two published vectors and the
//! fixture produced by Gate's official Python SDK (`tests/fixtures/gen_signing_vectors.py`,
//! run by hand with `gate-api` 7.2.161).

use gate_stp::signing::{SigningInput, SigningKey, body_hash_hex, sign};

use crate::common::vectors::GATE_PUBLISHED;
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
    serde_json::from_str(include_str!("../fixtures/signing_vectors.json")).unwrap()
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
fn gate_published_vectors() {
    for v in GATE_PUBLISHED {
        assert_eq!(body_hash_hex(v.body), v.body_sha512, "{v:?}");
        let input = SigningInput {
            method: v.method,
            path: v.path,
            query: v.query,
            body: v.body,
            timestamp: v.timestamp,
        };
        assert_eq!(sign(v.secret.as_bytes(), &input).to_hex(), v.sign, "{v:?}");
    }
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

/// Gate's published `SIGN` as the 64 raw bytes it spells in hex, decoded here digit by
/// digit rather than by the crate's own hex code.
fn raw_bytes(hex_text: &str) -> Vec<u8> {
    hex_text
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn every_form_of_the_signature_is_gates_value() {
    for v in GATE_PUBLISHED {
        let input = SigningInput {
            method: v.method,
            path: v.path,
            query: v.query,
            body: v.body,
            timestamp: v.timestamp,
        };
        let signature = sign(v.secret.as_bytes(), &input);
        // The raw bytes, for callers that encode SIGN themselves or compare in constant time.
        assert_eq!(
            signature.as_bytes().as_slice(),
            raw_bytes(v.sign).as_slice(),
            "{v:?}"
        );
        assert_eq!(signature.to_hex(), v.sign, "{v:?}");
        assert_eq!(signature.hex_bytes().as_slice(), v.sign.as_bytes(), "{v:?}");
        let mut buffer = [0u8; 128];
        assert_eq!(signature.write_hex(&mut buffer), v.sign, "{v:?}");
    }
}
