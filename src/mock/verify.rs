//! Gate's APIv4 authentication, computed from what arrived on the wire.
//!
//! Deliberately independent of [`crate::signing`]: written from Gate's documentation so that
//! the emulator checks the client instead of agreeing with it by construction.
//!
//! The signed message is five lines joined by `\n`: the method in upper case; the path as
//! received, `/api/v4` included; the raw query decoded with form rules (`+` is a space,
//! then `%XX` a byte, a broken escape kept as is), in the order sent; the lowercase hex
//! SHA-512 of the exact body bytes (of the empty string when there is none); the
//! `Timestamp` header's value exactly as sent. `SIGN` must be the hex HMAC-SHA512 of it,
//! keyed with the account's secret; it is compared in constant time.
//!
//! Order of checks (the first failure answers): `KEY`, `Timestamp`, `SIGN` present (400
//! MISSING_REQUIRED_HEADER naming the header; an empty value counts as missing); the key
//! known (401 INVALID_KEY); the Timestamp parsable as Unix seconds, integer or fractional
//! (400 INVALID_PARAM_VALUE); within the expiry window of the emulator's time (401
//! REQUEST_EXPIRED); the signature (401 INVALID_SIGNATURE).

use axum::http::{HeaderMap, Method};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

use super::{refusal::Refusal, world::Account, world::World};

/// The three authentication headers, as Gate names them.
pub(super) const KEY_HEADER: &str = "KEY";
/// See [`KEY_HEADER`].
pub(super) const TIMESTAMP_HEADER: &str = "Timestamp";
/// See [`KEY_HEADER`].
pub(super) const SIGN_HEADER: &str = "SIGN";

/// What arrived: the parts of a request the signature covers.
pub(super) struct Arrived<'a> {
    pub(super) method: &'a Method,
    pub(super) path: &'a str,
    pub(super) raw_query: &'a str,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a [u8],
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthFailure {
    /// A header is missing or empty.
    MissingHeader(&'static str),
    /// No account has this key.
    UnknownKey,
    /// The Timestamp is not Unix seconds.
    BadTimestamp,
    /// The Timestamp is too far from the emulator's time.
    Expired,
    /// SIGN does not match.
    BadSignature,
}

impl From<AuthFailure> for Refusal {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::MissingHeader(name) => Refusal::missing_header(name),
            AuthFailure::UnknownKey => Refusal::unauthorized("INVALID_KEY", "Invalid key provided"),
            AuthFailure::BadTimestamp => Refusal::bad_param(
                "Timestamp header must be Unix seconds, such as 1541993715 or 1541993715.479",
            ),
            AuthFailure::Expired => Refusal::unauthorized(
                "REQUEST_EXPIRED",
                "gap between request Timestamp and server time exceeds 60",
            ),
            AuthFailure::BadSignature => {
                Refusal::unauthorized("INVALID_SIGNATURE", "Signature mismatch")
            }
        }
    }
}

/// Authenticates a request against `world` at the emulator's time `now_ms`.
pub(super) fn authenticate<'w>(
    world: &'w World,
    arrived: &Arrived<'_>,
    now_ms: i64,
    window_ms: i64,
) -> Result<&'w Account, AuthFailure> {
    let header = |name: &'static str| {
        arrived
            .headers
            .get(name)
            .map(|value| value.as_bytes())
            .filter(|value| !value.is_empty())
            .ok_or(AuthFailure::MissingHeader(name))
    };
    let key = header(KEY_HEADER)?;
    let timestamp = header(TIMESTAMP_HEADER)?;
    let sign = header(SIGN_HEADER)?;

    let account = std::str::from_utf8(key)
        .ok()
        .and_then(|key| world.account_by_key(key))
        .ok_or(AuthFailure::UnknownKey)?;
    let secret = account.secret_bytes().ok_or(AuthFailure::UnknownKey)?;

    let sent_ms = parse_timestamp_ms(timestamp).ok_or(AuthFailure::BadTimestamp)?;
    if (sent_ms - i128::from(now_ms)).abs() > i128::from(window_ms) {
        return Err(AuthFailure::Expired);
    }

    let payload = signature_payload(
        arrived.method.as_str(),
        arrived.path,
        arrived.raw_query,
        arrived.body,
        timestamp,
    );
    if signature_matches(secret, &payload, sign) {
        Ok(account)
    } else {
        Err(AuthFailure::BadSignature)
    }
}

/// The message Gate signs, built from what arrived.
pub(super) fn signature_payload(
    method: &str,
    path: &str,
    raw_query: &str,
    body: &[u8],
    timestamp: &[u8],
) -> Vec<u8> {
    let body_hash = hex::encode(Sha512::digest(body));
    let query = form_decode(raw_query.as_bytes());
    let mut payload = Vec::with_capacity(
        method.len() + path.len() + query.len() + body_hash.len() + timestamp.len() + 4,
    );
    payload.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(path.as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(&query);
    payload.push(b'\n');
    payload.extend_from_slice(body_hash.as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(timestamp);
    payload
}

/// Whether `sign` (hex, as sent) is the HMAC-SHA512 of `payload` under `secret`; the MAC
/// comparison is constant-time (`verify_slice`).
pub(super) fn signature_matches(secret: &[u8], payload: &[u8], sign: &[u8]) -> bool {
    let Ok(claimed) = hex::decode(sign) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha512> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(payload);
    mac.verify_slice(&claimed).is_ok()
}

/// Form decoding: `+` is a space, `%XX` a byte; a `%` not followed by two hex digits is
/// kept as is. (`%2B` decodes to `+`, which stays a plus.)
pub(super) fn form_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&byte) = raw.get(i) {
        match byte {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                raw.get(i + 1).and_then(|&c| hex_value(c)),
                raw.get(i + 2).and_then(|&c| hex_value(c)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Unix seconds, `123` or `123.456789`, as milliseconds (fraction truncated); `None` if it
/// is anything else. An absurdly large value saturates (and is then simply expired).
pub(super) fn parse_timestamp_ms(value: &[u8]) -> Option<i128> {
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], Some(&value[dot + 1..])),
        None => (value, None),
    };
    let all_digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    let seconds = whole.iter().try_fold(0i128, |acc, &d| {
        acc.checked_mul(10)?.checked_add(i128::from(d - b'0'))
    });
    let millis = fraction.map_or(0, |f| {
        (0..3).fold(0i128, |acc, i| {
            acc * 10 + f.get(i).map_or(0, |&d| i128::from(d - b'0'))
        })
    });
    Some(
        seconds
            .and_then(|s| s.checked_mul(1000)?.checked_add(millis))
            .unwrap_or(i128::MAX / 2),
    )
}

/// Lowercase hex of a MAC or hash, as Gate sends it (used by tests).
#[cfg(test)]
fn hmac_hex(secret: &[u8], payload: &[u8]) -> String {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const GET_SIGN: &str = "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a";
    const POST_SIGN: &str = "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0";
    const POST_BODY: &[u8] =
        br#"{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}"#;
    const EMPTY_HASH: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

    fn official_world() -> World {
        World::from_toml_str("[[accounts]]\nuser_id = 1\nkey = \"key\"\nsecret = \"secret\"\n")
            .unwrap()
    }

    fn headers(key: &str, timestamp: &str, sign: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (KEY_HEADER, key),
            (TIMESTAMP_HEADER, timestamp),
            (SIGN_HEADER, sign),
        ] {
            if !value.is_empty() {
                headers.insert(name, HeaderValue::from_str(value).unwrap());
            }
        }
        headers
    }

    fn check(
        method: Method,
        query: &str,
        body: &[u8],
        headers: &HeaderMap,
        now_ms: i64,
    ) -> Result<i64, AuthFailure> {
        let world = official_world();
        let arrived = Arrived {
            method: &method,
            path: "/api/v4/futures/orders",
            raw_query: query,
            headers,
            body,
        };
        authenticate(&world, &arrived, now_ms, 60_000).map(Account::user_id)
    }

    const NOW_MS: i64 = 1_541_993_715_000;

    #[test]
    fn official_get_vector_verifies() {
        let query = "contract=BTC_USD&status=finished&limit=50";
        let h = headers("key", "1541993715", GET_SIGN);
        assert_eq!(check(Method::GET, query, b"", &h, NOW_MS), Ok(1));
        assert_eq!(
            check(
                Method::GET,
                "contract=BTC_USD&status=finished&limit=51",
                b"",
                &h,
                NOW_MS
            ),
            Err(AuthFailure::BadSignature)
        );
    }

    #[test]
    fn official_post_vector_verifies() {
        assert_eq!(
            hex::encode(Sha512::digest(POST_BODY)),
            "ad3c169203dc3026558f01b4df307641fa1fa361f086b2306658886d5708767b1854797c68d9e62fef2f991645aa82673622ebf417e091d0bd22bafe5d956cca"
        );
        let h = headers("key", "1541993715", POST_SIGN);
        assert_eq!(check(Method::POST, "", POST_BODY, &h, NOW_MS), Ok(1));
        let mut changed = POST_BODY.to_vec();
        changed.push(b' ');
        assert_eq!(
            check(Method::POST, "", &changed, &h, NOW_MS),
            Err(AuthFailure::BadSignature)
        );
    }

    #[test]
    fn empty_body_hashes_as_the_empty_string() {
        let payload = signature_payload("get", "/p", "", b"", b"1");
        assert_eq!(payload, format!("GET\n/p\n\n{EMPTY_HASH}\n1").into_bytes());
    }

    #[test]
    fn checks_come_in_gate_order() {
        let query = "contract=BTC_USD&status=finished&limit=50";
        let run = |h: HeaderMap, now| check(Method::GET, query, b"", &h, now);
        assert_eq!(
            run(headers("", "1541993715", GET_SIGN), NOW_MS),
            Err(AuthFailure::MissingHeader("KEY"))
        );
        assert_eq!(
            run(headers("key", "", GET_SIGN), NOW_MS),
            Err(AuthFailure::MissingHeader("Timestamp"))
        );
        assert_eq!(
            run(headers("key", "1541993715", ""), NOW_MS),
            Err(AuthFailure::MissingHeader("SIGN"))
        );
        assert_eq!(
            run(headers("nope", "soon", "zz"), NOW_MS),
            Err(AuthFailure::UnknownKey)
        );
        assert_eq!(
            run(headers("key", "soon", GET_SIGN), NOW_MS),
            Err(AuthFailure::BadTimestamp)
        );
        // Exactly 60 s away is inside the window; 60.001 s is not.
        assert_eq!(
            run(headers("key", "1541993715", GET_SIGN), NOW_MS + 60_000),
            Ok(1)
        );
        assert_eq!(
            run(headers("key", "1541993715", GET_SIGN), NOW_MS - 60_000),
            Ok(1)
        );
        assert_eq!(
            run(headers("key", "1541993715", GET_SIGN), NOW_MS + 60_001),
            Err(AuthFailure::Expired)
        );
        assert_eq!(
            run(headers("key", "1541993715", "00"), NOW_MS),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            run(headers("key", "1541993715", "not hex"), NOW_MS),
            Err(AuthFailure::BadSignature)
        );
    }

    #[test]
    fn fractional_timestamps_are_signed_verbatim() {
        let ts = "1541993715.4796917";
        let payload = signature_payload("GET", "/api/v4/futures/orders", "", b"", ts.as_bytes());
        let sign = hmac_hex(b"secret", &payload);
        let h = headers("key", ts, &sign);
        assert_eq!(check(Method::GET, "", b"", &h, NOW_MS), Ok(1));
        // Signing "1541993715" while sending the fractional value is a mismatch.
        let other = hmac_hex(
            b"secret",
            &signature_payload("GET", "/api/v4/futures/orders", "", b"", b"1541993715"),
        );
        let h = headers("key", ts, &other);
        assert_eq!(
            check(Method::GET, "", b"", &h, NOW_MS),
            Err(AuthFailure::BadSignature)
        );
    }

    #[test]
    fn query_is_form_decoded_in_order() {
        assert_eq!(form_decode(b"a+b%2C%zz%4%2b%41"), b"a b,%zz%4+A");
        assert_eq!(form_decode(b"%"), b"%");
        assert_eq!(form_decode(b"%ff"), [0xff]);
        let payload = signature_payload("DELETE", "/p", "user_id=1%2C2&b=c+d", b"", b"1");
        assert!(payload.starts_with(b"DELETE\n/p\nuser_id=1,2&b=c d\n"));
    }

    #[test]
    fn timestamps_parse_as_unix_seconds() {
        assert_eq!(parse_timestamp_ms(b"1541993715"), Some(1_541_993_715_000));
        assert_eq!(
            parse_timestamp_ms(b"1541993715.4796917"),
            Some(1_541_993_715_479)
        );
        assert_eq!(parse_timestamp_ms(b"1.5"), Some(1_500));
        for bad in [
            &b""[..],
            b"-1",
            b"1.",
            b".5",
            b"1e9",
            b"12a",
            b" 1",
            b"inf",
            b"1.2.3",
        ] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad:?}");
        }
        assert!(parse_timestamp_ms(&[b'9'; 60]).unwrap() > 1_000_000_000_000_000);
    }
}
