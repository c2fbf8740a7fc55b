//! Gate APIv4 request signing, as a pure function: no I/O, no clock, no HTTP types.
//!
//! Gate signs five lines joined by `\n`:
//!
//! 1. the HTTP method, upper case;
//! 2. the URL path as sent, including `/api/v4`;
//! 3. the query as sent, form-decoded (`+` is a space, `%XX` is a byte), order kept;
//!    empty when there is none;
//! 4. the lowercase hex SHA-512 of the exact body bytes (of the empty string when there is
//!    no body);
//! 5. the `Timestamp` header's value.
//!
//! `SIGN` is the lowercase hex HMAC-SHA512 of that string, keyed with the API secret.
//! The signer streams the five parts into the HMAC, so the signature string is never
//! built on the hot path; [`signature_string`] builds it, from the same code, for
//! debugging a mismatch.
//!
//! ```
//! use gate_stp::signing::{sign, SigningInput};
//!
//! // Gate's published example.
//! let input = SigningInput {
//!     method: "GET",
//!     path: "/api/v4/futures/orders",
//!     query: "contract=BTC_USD&status=finished&limit=50",
//!     body: b"",
//!     timestamp: "1541993715",
//! };
//! assert!(sign(b"secret", &input).to_hex().starts_with("55f84ea195d6fe57"));
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::percent_decode;
use sha2::{Digest, Sha512};

/// Lowercase hex SHA-512 of the empty string: the body hash of a request without a body.
pub const EMPTY_BODY_SHA512_HEX: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

/// Everything Gate's signature covers, taken from the request exactly as it is sent.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// HTTP method; it is signed upper case whatever case is given here.
    pub method: &'a str,
    /// URL path as sent, including `/api/v4`, without host or query.
    pub path: &'a str,
    /// Query string as sent (percent-encoded, without `?`); the signer decodes it.
    pub query: &'a str,
    /// The exact body bytes; empty when the request has no body.
    pub body: &'a [u8],
    /// The `Timestamp` header's value, exactly as sent.
    pub timestamp: &'a str,
}

/// A computed `SIGN` value.
///
/// It authenticates one request to Gate for as long as its timestamp is accepted, so it
/// is treated like a secret: its `Debug` is redacted and it is only turned into text on
/// request, with [`Signature::to_hex`] or [`Signature::write_hex`].
#[derive(Clone, PartialEq, Eq)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Length of the lowercase hex form.
    pub const HEX_LEN: usize = 128;

    /// The raw 64 HMAC-SHA512 bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Writes the lowercase hex form into `out` and returns it as a string slice.
    pub fn write_hex<'b>(&self, out: &'b mut [u8; Self::HEX_LEN]) -> &'b str {
        *out = hex_digits(&self.0);
        std::str::from_utf8(out).expect("lowercase hex digits are ASCII")
    }

    /// The lowercase hex form as bytes, without allocating: what the `SIGN` header holds.
    pub fn hex_bytes(&self) -> [u8; Self::HEX_LEN] {
        hex_digits(&self.0)
    }

    /// The lowercase hex form, as sent in the `SIGN` header.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(<redacted>)")
    }
}

/// An API secret made ready to sign with: HMAC-SHA512 keyed once, so that each signature
/// costs only the hashing of its own input (keying hashes two blocks of its own).
///
/// It can forge signatures just like the secret, so it is guarded like one: `Debug` is
/// redacted and its hash state is wiped when dropped (the `zeroize` feature of `sha2`).
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha512>);

impl SigningKey {
    /// Keys HMAC-SHA512 with the API `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self(
            <Hmac<Sha512> as KeyInit>::new_from_slice(secret)
                .expect("HMAC accepts keys of any length"),
        )
    }

    /// Computes `SIGN` for `input`.
    pub fn sign(&self, input: &SigningInput<'_>) -> Signature {
        let mut mac = self.0.clone();
        write_signature_string(input, |part| mac.update(part));
        Signature(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Computes `SIGN` for `input` with the API `secret`; [`SigningKey`] saves keying the
/// HMAC again for every request.
pub fn sign(secret: &[u8], input: &SigningInput<'_>) -> Signature {
    SigningKey::new(secret).sign(input)
}

/// The exact bytes that [`sign`] authenticates, for comparing with what a server expects.
///
/// Bytes rather than a `String`: a decoded query may hold bytes that are not UTF-8.
pub fn signature_string(input: &SigningInput<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        input.method.len() + input.path.len() + input.query.len() + 128 + 20 + 4,
    );
    write_signature_string(input, |part| out.extend_from_slice(part));
    out
}

/// Lowercase hex SHA-512 of `body`, as used in the signature string.
pub fn body_hash_hex(body: &[u8]) -> String {
    String::from_utf8_lossy(&body_hash_digits(body)).into_owned()
}

/// Feeds the signature string to `sink` part by part: the one definition of its layout.
fn write_signature_string(input: &SigningInput<'_>, mut sink: impl FnMut(&[u8])) {
    if input.method.bytes().all(|b| !b.is_ascii_lowercase()) {
        sink(input.method.as_bytes());
    } else {
        for byte in input.method.bytes() {
            sink(&[byte.to_ascii_uppercase()]);
        }
    }
    sink(b"\n");
    sink(input.path.as_bytes());
    sink(b"\n");
    form_decode(input.query, &mut sink);
    sink(b"\n");
    sink(&body_hash_digits(input.body));
    sink(b"\n");
    sink(input.timestamp.as_bytes());
}

/// Form decoding as Gate's SDKs do it (`unquote_plus`, `url.QueryUnescape`): `+` becomes
/// a space and `%XX` the byte it names; a `%` not followed by two hex digits stays as is.
fn form_decode(query: &str, sink: &mut impl FnMut(&[u8])) {
    for (i, segment) in query.split('+').enumerate() {
        if i > 0 {
            sink(b" ");
        }
        // Borrowed when the segment has no escapes: no allocation in the common case.
        let decoded: std::borrow::Cow<'_, [u8]> = percent_decode(segment.as_bytes()).into();
        sink(&decoded);
    }
}

/// The body's hash as 128 lowercase hex digits; the empty body's is a constant.
fn body_hash_digits(body: &[u8]) -> [u8; 128] {
    if body.is_empty() {
        let mut out = [0u8; 128];
        out.copy_from_slice(EMPTY_BODY_SHA512_HEX.as_bytes());
        return out;
    }
    hex_digits(&Sha512::digest(body).into())
}

/// Lowercase hex of a 64-byte digest, by the `hex` crate into a fixed-size buffer.
fn hex_digits(bytes: &[u8; 64]) -> [u8; 128] {
    let mut out = [0u8; 128];
    // The sizes are in the types: 64 bytes always make 128 digits, so the crate's one
    // error (an output of the wrong length) cannot happen.
    hex::encode_to_slice(bytes, &mut out).expect("64 bytes make 128 hex digits");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(query: &'a str, body: &'a [u8]) -> SigningInput<'a> {
        SigningInput {
            method: "get",
            path: "/api/v4/account/stp_groups",
            query,
            body,
            timestamp: "1700000000",
        }
    }

    #[test]
    fn query_is_form_decoded() {
        let s = signature_string(&input("name=a+b%2Cc%26d%3D%25", b""));
        let text = String::from_utf8(s).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "GET");
        assert_eq!(lines[2], "name=a b,c&d=%");
        assert_eq!(lines[3], EMPTY_BODY_SHA512_HEX);
    }

    #[test]
    fn invalid_escape_is_kept_and_non_utf8_is_a_byte() {
        let s = signature_string(&input("a=%zz%FF", b""));
        let line = s.split(|b| *b == b'\n').nth(2).unwrap();
        assert_eq!(line, b"a=%zz\xff");
    }

    #[test]
    fn body_hash_matches_sha512_of_the_bytes() {
        assert_eq!(body_hash_hex(b""), EMPTY_BODY_SHA512_HEX);
        assert_eq!(
            body_hash_hex(b"abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn hex_digits_are_two_lowercase_digits_per_byte_in_order() {
        // Against `format!`, not the crate under use: every byte value, in every position.
        for seed in [0u8, 1, 0x7f, 0xff] {
            let bytes: [u8; 64] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ seed);
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex_digits(&bytes).as_slice(), expected.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        for chunk in all.chunks(64) {
            let bytes: [u8; 64] = chunk.try_into().unwrap();
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex_digits(&bytes).as_slice(), expected.as_bytes());
        }
    }

    #[test]
    fn signature_debug_is_redacted() {
        let sig = sign(b"secret", &input("", b""));
        assert_eq!(format!("{sig:?}"), "Signature(<redacted>)");
        let mut buf = [0u8; 128];
        assert_eq!(sig.write_hex(&mut buf), sig.to_hex());
        assert_eq!(sig.hex_bytes().as_slice(), sig.to_hex().as_bytes());
    }
}
