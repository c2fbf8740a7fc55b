//! Gate's signature check, computed from what arrived on the wire.
//!
//! Deliberately independent of [`crate::signing`]: written from Gate's documentation so
//! that the emulator checks the client rather than agreeing with it by construction.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

/// What a request carried, as received.
pub(crate) struct Received<'a> {
    pub(crate) method: &'a str,
    pub(crate) raw_path: &'a str,
    pub(crate) raw_query: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) timestamp: &'a str,
    pub(crate) sign: &'a str,
}

/// Whether `SIGN` matches the request for this secret; compared in constant time.
pub(crate) fn signature_matches(secret: &[u8], received: &Received<'_>) -> bool {
    let Ok(claimed) = hex::decode(received.sign) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha512> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(received.method.to_ascii_uppercase().as_bytes());
    mac.update(b"\n");
    mac.update(received.raw_path.as_bytes());
    mac.update(b"\n");
    mac.update(&unquote_plus(received.raw_query));
    mac.update(b"\n");
    mac.update(hex::encode(Sha512::digest(received.body)).as_bytes());
    mac.update(b"\n");
    mac.update(received.timestamp.as_bytes());
    mac.verify_slice(&claimed).is_ok()
}

/// Form decoding of a whole query string: `+` is a space, `%XX` a byte, anything else
/// (including a broken escape) is kept.
pub(crate) fn unquote_plus(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'+' => {
                out.push(b' ');
                rest = tail;
            }
            b'%' => match tail {
                [h, l, after @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    out.push(digit(*h) << 4 | digit(*l));
                    rest = after;
                }
                _ => {
                    out.push(b'%');
                    rest = tail;
                }
            },
            other => {
                out.push(other);
                rest = tail;
            }
        }
    }
    out
}

/// Decoded value of the first query parameter named `name`.
pub(crate) fn query_param(raw_query: &str, name: &str) -> Option<String> {
    raw_query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (unquote_plus(key) == name.as_bytes())
            .then(|| String::from_utf8_lossy(&unquote_plus(value)).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn official(
        method: &'static str,
        query: &'static str,
        body: &'static [u8],
        sign: &'static str,
    ) -> bool {
        signature_matches(
            b"secret",
            &Received {
                method,
                raw_path: "/api/v4/futures/orders",
                raw_query: query,
                body,
                timestamp: "1541993715",
                sign,
            },
        )
    }

    #[test]
    fn gate_official_vectors_verify() {
        assert!(official(
            "GET",
            "contract=BTC_USD&status=finished&limit=50",
            b"",
            "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
        ));
        assert!(official(
            "POST",
            "",
            br#"{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}"#,
            "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0"
        ));
        assert!(!official(
            "GET",
            "contract=BTC_USD&status=finished&limit=51",
            b"",
            "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
        ));
        assert!(!official("GET", "", b"", "not hex"));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(unquote_plus("a+b%2C%zz%4"), b"a b,%zz%4");
        assert_eq!(
            query_param("x=1&user_id=1%2C2", "user_id").as_deref(),
            Some("1,2")
        );
        assert_eq!(query_param("name=a+b", "name").as_deref(), Some("a b"));
        assert_eq!(query_param("name=a", "user_id"), None);
    }
}
