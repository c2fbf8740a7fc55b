//! The library's error `Display` escapes control characters in server-controlled text:
//! services write errors into logs, and a log line must not carry a raw escape sequence.

use gate_stp::{Client, Credentials, Error, RetryPolicy};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

async fn error_for(template: ResponseTemplate) -> Error {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/account/stp_groups"))
        .respond_with(template)
        .mount(&server)
        .await;
    let client = Client::builder()
        .base_url(format!("{}/api/v4", server.uri()))
        .credentials(Credentials::new("key", "secret").unwrap())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    client.list_groups().await.unwrap_err()
}

/// Independent of the escaping function: no `char::is_control`, no bidi control.
fn assert_log_safe(error: &Error) -> String {
    let text = error.to_string();
    assert!(
        !text
            .chars()
            .any(|c| c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "{text:?}"
    );
    text
}

#[tokio::test]
async fn label_message_and_detail_are_escaped() {
    let error = error_for(ResponseTemplate::new(400).set_body_json(json!({
        "label": "NEW\u{1b}[2J",
        "message": "line\r\nforged log line\u{7}\u{202e}"
    })))
    .await;
    assert!(matches!(error, Error::Api(_)), "{error:?}");
    assert_eq!(
        assert_log_safe(&error),
        r"NEW\x1b[2J: line\x0d\x0aforged log line\x07\u{202e} (HTTP 400)"
    );
    // The fields keep the exact text: only their display is escaped.
    let Error::Api(api) = &error else {
        unreachable!()
    };
    assert_eq!(
        api.message.as_deref(),
        Some("line\r\nforged log line\u{7}\u{202e}")
    );

    let error = error_for(ResponseTemplate::new(403).set_body_json(json!({
        "label": "FORBIDDEN",
        "detail": "\u{9b}31mred"
    })))
    .await;
    assert_eq!(
        assert_log_safe(&error),
        r"FORBIDDEN: \u{9b}31mred (HTTP 403)"
    );
}

#[tokio::test]
async fn rate_limit_message_is_escaped() {
    let error = error_for(ResponseTemplate::new(429).set_body_json(json!({
        "label": "TOO_MANY_REQUESTS",
        "message": "slow\u{1b}[1Adown"
    })))
    .await;
    assert!(matches!(error, Error::RateLimited(_)), "{error:?}");
    assert!(assert_log_safe(&error).contains(r"slow\x1b[1Adown"));
}

#[tokio::test]
async fn redirect_location_and_body_snippet_are_escaped() {
    let error = error_for(
        ResponseTemplate::new(301).insert_header("location", "https://elsewhere.example/\tx"),
    )
    .await;
    assert!(
        assert_log_safe(&error).contains(r"redirect to https://elsewhere.example/\x09x not"),
        "{error}"
    );

    let error = error_for(
        ResponseTemplate::new(502)
            .set_body_raw(b"<html>\x1b]0;t\x07\xff</html>".to_vec(), "text/html"),
    )
    .await;
    assert!(matches!(error, Error::UnexpectedResponse(_)), "{error:?}");
    let text = assert_log_safe(&error);
    assert!(
        text.contains(r#"body starts "<html>\x1b]0;t\x07"#),
        "{text}"
    );
}
