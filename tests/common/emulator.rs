//! Starting the emulator, reading its refusals, and a raw signed sender that writes a
//! request byte for byte (signed by the independent signer of `tests/common`).

use std::time::SystemTime;

use gate_stp::{
    Error, Label,
    mock::{Emulator, EmulatorConfig, RunningEmulator, World, demo},
};

/// An emulator of the demo world with `config`.
pub async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(World::demo(), config)
        .await
        .expect("the emulator starts")
}

/// The Gate label of an error, as text.
pub fn label(error: &Error) -> Option<&str> {
    error.label().map(Label::as_str)
}

/// The HTTP status (0 without one) and the Gate label (empty without one) of an error.
pub fn status_and_label(error: &Error) -> (u16, String) {
    (
        error.status().map_or(0, |status| status.as_u16()),
        label(error).unwrap_or_default().to_owned(),
    )
}

/// Asserts a refusal by Gate with this status and label.
pub fn assert_refused(error: &Error, status: u16, expected_label: &str) {
    assert_eq!(
        status_and_label(error),
        (status, expected_label.to_owned()),
        "{error:?}"
    );
}

/// A connection that ended without an answer: a transport error with no HTTP status.
pub fn assert_lost_answer(error: &Error) {
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(error.status(), None, "{error:?}");
}

/// Sends `head` (request line and headers, without the final blank line) and `body` as
/// written, signed for the demo main account over `signed_body` with `secret`, on a fresh
/// connection; returns the status and the JSON body of the answer (`Null` if not JSON).
pub async fn raw_signed(
    emulator: &RunningEmulator,
    method: &str,
    target: &str,
    extra_headers: &str,
    wire_body: &[u8],
    signed_body: &[u8],
    secret: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let timestamp = gate_stp::Clock::now(&gate_stp::SystemClock)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sign = crate::common::gate_sign(secret, method, path, query, signed_body, &timestamp);
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\n\
         KEY: {}\r\nTimestamp: {timestamp}\r\nSIGN: {sign}\r\n{extra_headers}\r\n",
        demo::MAIN_KEY
    )
    .into_bytes();
    request.extend_from_slice(wire_body);
    let mut stream = tokio::net::TcpStream::connect(emulator.local_addr())
        .await
        .unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or_default())
}
