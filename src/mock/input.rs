//! Request parameters as Gate reads them, and its answers for bad input.
//!
//! Bodies arrive as the exact bytes the signature covered; they are decoded here through
//! axum's [`Json`], first for syntax (malformed JSON is INVALID_REQUEST_BODY whatever its
//! shape), then for shape (JSON of the wrong shape is INVALID_PARAM_VALUE).

use std::collections::BTreeSet;

use axum::Json;
use serde::{Deserialize, de::DeserializeOwned, de::IgnoredAny};
use serde_json::{Map, Value};

use super::refusal::Refusal;

/// Query parameters in the order they came, form-decoded (`+` is a space, `%XX` a byte).
pub(super) type QueryPairs = Vec<(String, String)>;

/// The first value of query parameter `name`.
pub(super) fn first_value<'q>(pairs: &'q QueryPairs, name: &str) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Every value of query parameter `name`, in order.
pub(super) fn all_values<'q>(pairs: &'q QueryPairs, name: &str) -> Vec<&'q str> {
    pairs
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .collect()
}

/// A JSON body decoded as `T`: syntax first, then shape.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    // `IgnoredAny` accepts any well-formed JSON (within serde_json's nesting limit), so this
    // pass fails only on syntax.
    let Json(IgnoredAny) =
        Json::<IgnoredAny>::from_bytes(body).map_err(|rejection| Refusal::from_json(&rejection))?;
    Json::<T>::from_bytes(body)
        .map(|Json(value)| value)
        .map_err(|rejection| Refusal::from_json(&rejection))
}

/// The fields of a create body the server reads; the other `StpGroup` fields are assigned
/// by the server and ignored.
#[derive(Debug, Deserialize)]
struct CreateGroupBody {
    #[serde(default)]
    name: Option<String>,
}

/// The `name` of a create body: a JSON object whose `name` is a non-blank string.
pub(super) fn group_name(body: &[u8]) -> Result<String, Refusal> {
    // Decoded as a map first: serde would also accept `["a"]` as a struct.
    let fields: Map<String, Value> = json_body(body)?;
    let CreateGroupBody { name } = CreateGroupBody::deserialize(Value::Object(fields))
        .map_err(|error| Refusal::bad_param(format!("request body: {error}")))?;
    match name {
        None => Err(Refusal::missing_param("name")),
        Some(name) if name.trim().is_empty() => Err(Refusal::bad_param("name must not be empty")),
        Some(name) => Ok(name),
    }
}

/// The user ids of an add body: a non-empty JSON array of positive integers, deduplicated
/// in order.
pub(super) fn body_user_ids(body: &[u8]) -> Result<Vec<i64>, Refusal> {
    let ids: Vec<i64> = json_body(body)?;
    if ids.is_empty() {
        return Err(Refusal::bad_param("at least one user id is required"));
    }
    if let Some(id) = ids.iter().find(|&&id| id <= 0) {
        return Err(Refusal::bad_param(format!(
            "user id must be positive, got {id}"
        )));
    }
    Ok(dedup(ids))
}

/// The `user_id` query values of a DELETE: one or several comma-separated positive ids
/// (repeated `user_id` parameters are joined), deduplicated in order.
pub(super) fn query_user_ids(values: &[&str]) -> Result<Vec<i64>, Refusal> {
    if values.iter().all(|value| value.trim().is_empty()) {
        return Err(Refusal::missing_param("user_id"));
    }
    let ids = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(|part| positive_id(part.trim(), "user_id"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedup(ids))
}

/// A positive id from text (path segment or query item).
pub(super) fn positive_id(text: &str, what: &str) -> Result<i64, Refusal> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        Ok(id) => Err(Refusal::bad_param(format!(
            "{what} must be positive, got {id}"
        ))),
        Err(_) => Err(Refusal::bad_param(format!(
            "{what} must be a positive integer, got {:?}",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

fn dedup(ids: Vec<i64>) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies() {
        assert_eq!(group_name(br#"{"name":"a","id":7}"#), Ok("a".into()));
        for (body, label) in [
            (&b"{}"[..], "MISSING_REQUIRED_PARAM"),
            (br#"{"name":null}"#, "MISSING_REQUIRED_PARAM"),
            (b"[1]", "INVALID_PARAM_VALUE"),
            (br#"["a"]"#, "INVALID_PARAM_VALUE"),
            (br#"{"name":5}"#, "INVALID_PARAM_VALUE"),
            (br#"{"name":" "}"#, "INVALID_PARAM_VALUE"),
            (b"{", "INVALID_REQUEST_BODY"),
            (br#"{"name":5"#, "INVALID_REQUEST_BODY"),
            (b"", "INVALID_REQUEST_BODY"),
            (br#"{"name":"a"} x"#, "INVALID_REQUEST_BODY"),
        ] {
            assert_eq!(
                group_name(body).unwrap_err().label,
                label,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn add_bodies() {
        assert_eq!(body_user_ids(b"[3,1,3]"), Ok(vec![3, 1]));
        for bad in [
            &b"[]"[..],
            b"[0]",
            b"[1.5]",
            b"[null]",
            b"[18446744073709551615]",
            b"{}",
            br#"["1"]"#,
        ] {
            assert_eq!(
                body_user_ids(bad).unwrap_err().label,
                "INVALID_PARAM_VALUE",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Malformed JSON is a body error even where its shape is wrong too.
        assert_eq!(
            body_user_ids(br#"["a","#).unwrap_err().label,
            "INVALID_REQUEST_BODY"
        );
    }

    #[test]
    fn query_ids() {
        assert_eq!(query_user_ids(&["1, 2,1"]), Ok(vec![1, 2]));
        assert_eq!(
            query_user_ids(&[]).unwrap_err().label,
            "MISSING_REQUIRED_PARAM"
        );
        assert_eq!(
            query_user_ids(&[" "]).unwrap_err().label,
            "MISSING_REQUIRED_PARAM"
        );
        assert_eq!(
            query_user_ids(&["1,,2"]).unwrap_err().label,
            "INVALID_PARAM_VALUE"
        );
        assert_eq!(
            positive_id("0", "stp_id").unwrap_err().label,
            "INVALID_PARAM_VALUE"
        );
        let pairs: QueryPairs = vec![
            ("user_id".into(), "1".into()),
            ("x".into(), "y".into()),
            ("user_id".into(), "2".into()),
        ];
        assert_eq!(all_values(&pairs, "user_id"), ["1", "2"]);
        assert_eq!(first_value(&pairs, "user_id"), Some("1"));
        assert_eq!(first_value(&pairs, "name"), None);
    }

    #[test]
    fn deep_json_is_refused_not_overflowing() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            body_user_ids(deep.as_bytes()).unwrap_err().label,
            "INVALID_REQUEST_BODY"
        );
        assert_eq!(
            group_name(deep.as_bytes()).unwrap_err().label,
            "INVALID_REQUEST_BODY"
        );
    }
}
