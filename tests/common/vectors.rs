//! Gate's published APIv4 signing examples, the one copy every test uses: the signer
//! (`signing_vectors`), the independent test verifier (this module's test), the CLI's
//! `sign` command (`cli`).

use super::{form_decode, gate_sign, gate_sign_query_bytes};

/// One published example: the request, the secret and the `SIGN` Gate gives for it.
#[derive(Debug, Clone, Copy)]
pub struct Vector {
    pub secret: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    /// The query as sent (already plain: it needs no decoding).
    pub query: &'static str,
    pub body: &'static [u8],
    pub timestamp: &'static str,
    /// Lowercase hex SHA-512 of `body`.
    pub body_sha512: &'static str,
    pub sign: &'static str,
}

/// Gate's GET example (a query, no body).
pub const GATE_GET: Vector = Vector {
    secret: "secret",
    method: "GET",
    path: "/api/v4/futures/orders",
    query: "contract=BTC_USD&status=finished&limit=50",
    body: b"",
    timestamp: "1541993715",
    body_sha512: "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    sign: "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a",
};

/// Gate's POST example (a JSON body, no query).
pub const GATE_POST: Vector = Vector {
    secret: "secret",
    method: "POST",
    path: "/api/v4/futures/orders",
    query: "",
    body: br#"{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}"#,
    timestamp: "1541993715",
    body_sha512: "ad3c169203dc3026558f01b4df307641fa1fa361f086b2306658886d5708767b1854797c68d9e62fef2f991645aa82673622ebf417e091d0bd22bafe5d956cca",
    sign: "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0",
};

/// Both published examples.
pub const GATE_PUBLISHED: [Vector; 2] = [GATE_GET, GATE_POST];

/// The verifier the wire and emulator tests rely on reproduces Gate's examples, in both
/// of its forms, and decodes queries as Gate does.
#[test]
fn the_test_verifier_reproduces_gates_published_vectors() {
    for v in GATE_PUBLISHED {
        let by_raw_query = gate_sign(v.secret, v.method, v.path, v.query, v.body, v.timestamp);
        assert_eq!(by_raw_query, v.sign, "{v:?}");
        let by_query_bytes = gate_sign_query_bytes(
            v.secret,
            v.method,
            v.path,
            v.query.as_bytes(),
            v.body,
            v.timestamp,
        );
        assert_eq!(by_query_bytes, v.sign, "{v:?}");
    }
    assert_eq!(form_decode("a+b%2C%zz%4"), b"a b,%zz%4");
    assert_eq!(form_decode("%E4%B8%AD"), "中".as_bytes());
}
