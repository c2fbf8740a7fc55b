//! How the generated client's errors, with what the hook recorded about the response,
//! become [`Error`]s. It lives beside the transport (which records the response head) so
//! that the dependency runs one way: the transport knows the error type, not the reverse.

use reqwest::{
    StatusCode,
    header::{CONTENT_TYPE, HeaderValue, LOCATION},
};

use crate::{
    call::CallState,
    error::{
        ApiError, BODY_SNIPPET_LEN, Error, InvalidInput, Label, RateLimited, UnexpectedResponse,
    },
    generated::types::GateError,
    response::ResponseMeta,
};

/// Maps an error of the generated client, with what the transport recorded about the
/// response, onto [`Error`].
pub(crate) async fn from_generated(
    error: progenitor_client::Error<GateError>,
    call: &CallState,
    limit: usize,
) -> Error {
    use progenitor_client::Error as G;

    let over_limit = call.declared_too_large()
        || matches!(&error, G::ResponseBodyError(e) if went_past_the_limit(e));
    if over_limit {
        let Some(head) = call.head() else {
            return Error::BodyTooLarge {
                status: StatusCode::OK,
                limit,
            };
        };
        // A 429 or a redirect says all it has to say in its status and headers: an
        // oversized body must not hide the reset time or the location.
        if head.status() == StatusCode::TOO_MANY_REQUESTS {
            return rate_limited(head.meta.clone(), None, None);
        }
        if head.status().is_redirection() {
            return redirect(head.status(), head.location.as_ref());
        }
        return Error::BodyTooLarge {
            status: head.status(),
            limit,
        };
    }
    match error {
        G::ErrorResponse(value) => {
            let meta = ResponseMeta::from_parts(value.status(), value.headers());
            let body = value.into_inner();
            gate_error(meta, body)
        }
        G::InvalidResponsePayload(bytes, reason) => {
            let Some(head) = call.head() else {
                return unexpected(StatusCode::OK, None, reason.to_string(), &bytes, None);
            };
            let meta = head.meta.clone();
            if meta.status == StatusCode::TOO_MANY_REQUESTS {
                return rate_limited(meta, None, None);
            }
            unexpected(
                meta.status,
                header_text(head.content_type.as_ref()),
                reason.to_string(),
                &bytes,
                Some(meta),
            )
        }
        G::UnexpectedResponse(response) => unexpected_response(response).await,
        G::CommunicationError(e) | G::ResponseBodyError(e) | G::InvalidUpgrade(e) => transport(e),
        G::InvalidRequest(message) | G::Custom(message) => match call.take_refusal() {
            // Signing refused the request: its own typed error, not its text re-wrapped.
            Some(refusal) => refusal,
            None => InvalidInput::Request(message).into(),
        },
    }
}

/// Whether reading a body failed because the cap ([`super::cap_body`]) stopped it.
fn went_past_the_limit(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A reqwest failure: timeouts apart from the rest, both keeping the cause.
pub(crate) fn transport(error: reqwest::Error) -> Error {
    let error = without_url_query(error);
    if error.is_timeout() {
        Error::Timeout(error)
    } else {
        Error::Transport(error)
    }
}

/// Keeps the path (useful) but drops the query: it may hold names the caller considers
/// private, and nothing in it helps with a transport failure.
fn without_url_query(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut() {
        url.set_query(None);
    }
    error
}

fn gate_error(meta: ResponseMeta, body: GateError) -> Error {
    if meta.status == StatusCode::TOO_MANY_REQUESTS {
        return rate_limited(meta, Some(Label::parse(&body.label)), body.message);
    }
    Error::Api(Box::new(ApiError {
        status: meta.status,
        label: Label::parse(&body.label),
        message: body.message,
        detail: body.detail,
        meta,
    }))
}

fn rate_limited(meta: ResponseMeta, label: Option<Label>, message: Option<String>) -> Error {
    Error::RateLimited(Box::new(RateLimited {
        meta,
        label,
        message,
    }))
}

fn redirect(status: StatusCode, location: Option<&HeaderValue>) -> Error {
    Error::Redirect {
        status,
        location: header_text(location),
    }
}

/// A header's value as text, if it is text.
fn header_text(value: Option<&HeaderValue>) -> Option<String> {
    value.and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn unexpected_response(response: reqwest::Response) -> Error {
    let status = response.status();
    let headers = response.headers();
    if status.is_redirection() {
        return redirect(status, headers.get(LOCATION));
    }
    let meta = ResponseMeta::from_parts(status, headers);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return rate_limited(meta, None, None);
    }
    let content_type = header_text(headers.get(CONTENT_TYPE));
    let snippet = read_snippet(response).await;
    unexpected(
        status,
        content_type,
        "status not documented for this operation".to_owned(),
        &snippet,
        Some(meta),
    )
}

/// Reads at most [`BODY_SNIPPET_LEN`] bytes of a body, stopping at the first error.
async fn read_snippet(mut response: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < BODY_SNIPPET_LEN {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(BODY_SNIPPET_LEN);
    out
}

fn unexpected(
    status: StatusCode,
    content_type: Option<String>,
    reason: String,
    body: &[u8],
    meta: Option<ResponseMeta>,
) -> Error {
    let end = body.len().min(BODY_SNIPPET_LEN);
    Error::UnexpectedResponse(Box::new(UnexpectedResponse {
        status,
        content_type,
        reason,
        snippet: String::from_utf8_lossy(&body[..end]).into_owned(),
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::tests::assert_no_text_twice;

    /// A real reqwest failure of each kind, from a socket that refuses or never answers.
    async fn failure(timeout: bool) -> reqwest::Error {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Without a listener the connection is refused; with one, the kernel accepts it
        // and nobody ever answers.
        let listener = timeout.then_some(listener);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let error = client
            .get(format!("http://{address}/api/v4/spot/time?secret_name=x"))
            .send()
            .await
            .unwrap_err();
        drop(listener);
        error
    }

    #[tokio::test]
    async fn a_refusal_by_the_signer_comes_back_typed_and_printed_once() {
        let call = CallState::default();
        let refusal: Error =
            InvalidInput::Request("a streaming body cannot be signed".into()).into();
        let text = refusal.to_string();
        call.record_refusal(refusal);
        let error = from_generated(
            progenitor_client::Error::InvalidRequest(text.clone()),
            &call,
            1024,
        )
        .await;
        assert_eq!(error.to_string(), text);
        assert!(matches!(
            error,
            Error::InvalidInput(InvalidInput::Request(_))
        ));
        // Without a recorded refusal, the generated client's own message is kept as is.
        let error = from_generated(
            progenitor_client::Error::InvalidRequest("bad header".into()),
            &call,
            1024,
        )
        .await;
        assert_eq!(
            error.to_string(),
            "invalid input: request could not be built: bad header"
        );
    }

    #[tokio::test]
    async fn a_timeout_keeps_its_cause_and_prints_nothing_twice() {
        let error = transport(failure(true).await);
        assert!(matches!(error, Error::Timeout(_)), "{error:?}");
        let chain = assert_no_text_twice(&error);
        assert!(chain.len() >= 2, "the cause is lost: {chain:?}");
        assert!(
            chain.iter().any(|text| text.contains("/api/v4/spot/time")),
            "the cause names the URL: {chain:?}"
        );
        assert!(
            chain.iter().all(|text| !text.contains("secret_name")),
            "the query is dropped: {chain:?}"
        );
    }

    #[tokio::test]
    async fn a_transport_error_prints_its_cause_once() {
        let error = transport(failure(false).await);
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
        let chain = assert_no_text_twice(&error);
        assert!(chain.len() >= 2, "the cause is lost: {chain:?}");
    }
}
