//! The request hook between the generated client and the network.
//!
//! The build generates the client with `HooksMode::Expected`, so this file's
//! `impl ClientHooks for generated::Client` is required for the crate to compile: there is
//! no build in which requests skip it. For every request it
//! - drops progenitor's `api-version` header (Gate does not know it);
//! - signs it (KEY, Timestamp, SIGN) unless the fragment marks the operation public with
//!   `security: []`, refusing to send a private request without credentials;
//! - records the response's status and headers for error reporting, and caps how much of
//!   the body may be read.
//!
//! Retries, clock sync and pacing live one level up, in [`crate::policy`], because each
//! attempt must be built and signed afresh.

use bytes::Bytes;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::{
    ResponseBuilderExt,
    header::{HeaderName, HeaderValue},
};

/// Error mapping, read by the client directly (this module only declares it).
pub(crate) mod map_error;

use crate::{
    call::{CallContext, CallState, ResponseHead},
    credentials::Credentials,
    error::{Error, InvalidInput},
    generated::{self, operations::OPERATIONS},
    signing::SigningInput,
};

/// `KEY` request header.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("key");
/// `Timestamp` request header.
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("timestamp");
/// `SIGN` request header.
pub const SIGN_HEADER: HeaderName = HeaderName::from_static("sign");
const API_VERSION_HEADER: HeaderName = HeaderName::from_static("api-version");

/// Signs a built request in place for Gate: sets `KEY`, `Timestamp` and `SIGN` from the
/// request's method, path, query and body bytes exactly as they will be sent.
///
/// This is the hook the client applies to every private request; it is public for callers
/// who build requests by other means. `SIGN` and `KEY` are marked sensitive, so `Debug` of
/// the request does not show them.
///
/// Fails only for a streaming body, whose bytes are not known before sending (and, loudly,
/// if a header value it computed could not be sent: a bug, never a silent empty header).
pub fn sign_request(
    request: &mut reqwest::Request,
    credentials: &Credentials,
    timestamp_secs: i64,
) -> Result<(), Error> {
    let body = match request.body() {
        None => &[][..],
        Some(body) => body.as_bytes().ok_or(InvalidInput::Request(
            "a streaming body cannot be signed".to_owned(),
        ))?,
    };
    // The header's own text is what is signed: the two cannot disagree.
    let timestamp = HeaderValue::from(timestamp_secs);
    let timestamp_text = timestamp
        .to_str()
        .map_err(|_| InvalidInput::InvalidHeaderValue("Timestamp"))?;
    let signature = credentials.signing_key().sign(&SigningInput {
        method: request.method().as_str(),
        path: request.url().path(),
        query: request.url().query().unwrap_or_default(),
        body,
        timestamp: timestamp_text,
    });
    let mut sign = HeaderValue::from_bytes(&signature.hex_bytes())
        .map_err(|_| InvalidInput::InvalidHeaderValue("SIGN"))?;
    sign.set_sensitive(true);
    let headers = request.headers_mut();
    headers.insert(KEY_HEADER, credentials.key_header().clone());
    headers.insert(TIMESTAMP_HEADER, timestamp);
    headers.insert(SIGN_HEADER, sign);
    Ok(())
}

/// Whether requests of the operation the generated client calls `rust_name` are signed.
/// Unknown operations are signed: only the fragment can make one public.
pub(crate) fn requires_signature(rust_name: &str) -> bool {
    OPERATIONS
        .iter()
        .find(|op| op.rust_name == rust_name)
        .is_none_or(|op| op.signed)
}

impl ClientHooks<CallContext> for generated::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        request.headers_mut().remove(API_VERSION_HEADER);
        if !requires_signature(info.operation_id) {
            return Ok(());
        }
        let context = self.inner();
        // The client refuses a private operation without credentials before building it
        // (Error::MissingCredentials); reaching this means the operation table and the
        // generated call disagree, so refuse loudly rather than send it unsigned.
        let Some(credentials) = &context.shared.credentials else {
            return Err(progenitor_client::Error::Custom(format!(
                "{} is private but the client has no credentials",
                info.operation_id
            )));
        };
        sign_request(request, credentials, context.shared.timestamp_secs()).map_err(|error| {
            let text = error.to_string();
            context.call.record_refusal(error);
            progenitor_client::Error::InvalidRequest(text)
        })
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = self.client().execute(request).await?;
        let context = self.inner();
        context.call.record_head(ResponseHead::read(&response));
        Ok(cap_body(
            response,
            context.shared.max_body_bytes,
            &context.call,
        ))
    }
}

/// Makes sure no more than `limit` bytes of the body are ever read, keeping the rest of
/// the response (URL, version, headers, extensions) as it is.
///
/// A body whose declared length fits is left alone (hyper never reads past a declared
/// length). A larger declared length is refused without reading (the body is swapped for
/// an empty one and the attempt marked). A body of unknown length is read through
/// `http_body_util::Limited`, whose error the mapping recognises.
fn cap_body(response: reqwest::Response, limit: usize, call: &CallState) -> reqwest::Response {
    let declared = response.content_length();
    if declared.is_some_and(|length| length <= limit as u64) {
        return response;
    }
    // reqwest keeps the URL beside the http response, not in its extensions: carry it
    // over through the one public way of setting it.
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    if let Some(extensions) = http::Response::builder().url(url).extensions_mut() {
        parts.extensions.extend(std::mem::take(extensions));
    }
    let body = if declared.is_some() {
        call.mark_declared_too_large();
        reqwest::Body::from(Bytes::new())
    } else {
        reqwest::Body::wrap(http_body_util::Limited::new(body, limit))
    };
    reqwest::Response::from(http::Response::from_parts(parts, body))
}
