//! JSON-RPC framing over a byte stream (stdio): one message per line, and an answer for
//! every line that asks for one, including the lines rmcp would drop or answer badly.
//!
//! rmcp's own line transport (3.11) ignores a line that is not JSON (the client waits
//! forever), answers a malformed message with "Invalid request" and no `id` at all, turns a
//! `tools/call` whose `arguments` is not an object into "method not found: tools/call", and
//! answers a tool call made before `initialize` with a message about `_meta`. This
//! transport reads each line itself, screens it ([`screen`]) and answers what is malformed
//! at the protocol level on its own, as JSON-RPC 2.0 says:
//!
//! - not JSON (or not UTF-8): -32700 with `"id": null`;
//! - JSON that is not one request object (a batch, a number, no `"jsonrpc": "2.0"`, an id
//!   that is neither a string nor an integer): -32600, with the id where it can be read and
//!   `"id": null` where it cannot;
//! - a request of a protocol method whose `params` is not an object, a `tools/call`
//!   without a tool `name` or with `arguments` that are not an object, or params that do
//!   not match the method: -32602 with the request's id;
//! - a request before the session has started (no `initialize` yet and no 2026-07-28
//!   `_meta` on the request): -32600 saying to initialize first;
//! - a line longer than [`MAX_LINE_BYTES`]: -32600 with `"id": null`, the line skipped.
//!
//! Everything else goes to rmcp unchanged; what a tool does with its arguments is the
//! server's business (problems with them are tool results with `isError: true`). A
//! notification gets no answer, malformed or not.

use std::{pin::Pin, sync::Arc};

use rmcp::{
    RoleServer,
    model::{ClientJsonRpcMessage, ClientRequest, ErrorCode, JsonRpcMessage},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::Mutex,
};

/// The longest line read as a message: 16 MiB covers a desired-state document far larger
/// than any account (100,000 groups of long names); a longer line is refused, not buffered.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The `_meta` key that makes a request self-contained (revision 2026-07-28).
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The requests MCP defines (rmcp reads one of these whose params do not fit as an unknown
/// method; it is a request with invalid params).
const PROTOCOL_REQUESTS: [&str; 22] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/call",
    "tools/list",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "resources/templates/list",
    "subscriptions/listen",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
    "skills/list",
    "skills/get",
    "resources/directory/read",
];

/// What to do with one line.
#[derive(Debug)]
pub(crate) enum Screened {
    /// A message for rmcp.
    Pass(Box<ClientJsonRpcMessage>),
    /// Answer with this JSON-RPC error (a whole message) and read on.
    Answer(Value),
    /// Nothing to do (an empty line, a malformed notification).
    Skip,
}

/// A JSON-RPC error message; `id` is `null` where the request's id could not be read.
pub(crate) fn error_message(id: Option<&Value>, code: ErrorCode, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {"code": code.0, "message": gate_stp::text::escape_control(message)},
    })
}

/// A method or tool name as quoted in an error: escaped and cut.
fn shown(name: &str) -> String {
    gate_stp::desired::quoted(&gate_stp::text::truncate_chars(name, 64))
}

/// An error's detail cut to a readable length (serde quotes whole values).
fn detail(error: &impl std::fmt::Display) -> String {
    gate_stp::text::truncate_chars(&error.to_string(), 200).into_owned()
}

/// Screens one line (without its newline). `started` says whether the session has begun
/// (an `initialize`, or a request carrying its protocol revision in `_meta`, went to rmcp);
/// a request that begins it sets it.
pub(crate) fn screen(line: &[u8], started: &mut bool) -> Screened {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Screened::Skip;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            return Screened::Answer(error_message(
                None,
                ErrorCode::PARSE_ERROR,
                &format!(
                    "Parse error: the line is not JSON ({}); send one JSON-RPC message per line",
                    detail(&error)
                ),
            ));
        }
    };
    let invalid = |id: Option<&Value>, why: &str| {
        Screened::Answer(error_message(
            id,
            ErrorCode::INVALID_REQUEST,
            &format!("Invalid Request: {why}"),
        ))
    };
    let Value::Object(object) = &value else {
        let why = if value.is_array() {
            "a batch (a JSON array) is not part of MCP; send one message per line"
        } else {
            "a message is a JSON object"
        };
        return invalid(None, why);
    };
    let method = object.get("method");
    // A response of the client (to a question of the server) is never answered, whatever
    // is wrong with it; rmcp reads it or it is dropped.
    if method.is_none() && (object.contains_key("result") || object.contains_key("error")) {
        return match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
            Ok(message) => Screened::Pass(Box::new(message)),
            Err(_) => Screened::Skip,
        };
    }
    let id = match object.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id),
        Some(id @ Value::Number(number)) if number.is_i64() || number.is_u64() => Some(id),
        Some(_) => return invalid(None, "\"id\" must be a string or an integer"),
    };
    // A notification (a method and no id) gets no answer, whatever is wrong with it.
    let notification = id.is_none() && method.is_some();
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return if notification {
            Screened::Skip
        } else {
            invalid(id, "\"jsonrpc\" must be \"2.0\"")
        };
    }
    if let Some(method) = method {
        let Some(method) = method.as_str() else {
            return if notification {
                Screened::Skip
            } else {
                invalid(id, "\"method\" must be a string")
            };
        };
        if let Some(id) = id
            && let Some(answer) = screen_request(id, method, object.get("params"), started)
        {
            return answer;
        }
    }
    match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        Ok(JsonRpcMessage::Request(request)) => {
            if let ClientRequest::CustomRequest(custom) = &request.request
                && PROTOCOL_REQUESTS.contains(&custom.method.as_str())
            {
                // rmcp could not read the params as the method's: they do not fit.
                return Screened::Answer(error_message(
                    id,
                    ErrorCode::INVALID_PARAMS,
                    &format!(
                        "Invalid params: the params of {} do not match the method's schema{}",
                        shown(&custom.method),
                        params_detail(&custom.method, custom.params.as_ref())
                    ),
                ));
            }
            Screened::Pass(Box::new(JsonRpcMessage::Request(request)))
        }
        Ok(message) => Screened::Pass(Box::new(message)),
        Err(_) if notification => Screened::Skip,
        Err(error) => invalid(
            id,
            &format!(
                "not a JSON-RPC request, response or notification of MCP ({})",
                detail(&error)
            ),
        ),
    }
}

/// What is wrong with a request's params, before rmcp reads it; `None` to read on.
fn screen_request(
    id: &Value,
    method: &str,
    params: Option<&Value>,
    started: &mut bool,
) -> Option<Screened> {
    let invalid_params = |why: String| {
        Some(Screened::Answer(error_message(
            Some(id),
            ErrorCode::INVALID_PARAMS,
            &format!("Invalid params: {why}"),
        )))
    };
    let params = match params {
        None | Some(Value::Null) => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) if PROTOCOL_REQUESTS.contains(&method) => {
            return invalid_params(format!(
                "the params of {} must be a JSON object",
                shown(method)
            ));
        }
        // An unknown method is unknown whatever its params (rmcp would call the message
        // unrecognized: a custom request's params must be an object).
        Some(_) => {
            let unknown = super::errors::unknown_method(method);
            return Some(Screened::Answer(error_message(
                Some(id),
                unknown.code,
                &unknown.message,
            )));
        }
    };
    if method == "tools/call" {
        let Some(params) = params else {
            return invalid_params(
                "tools/call needs params with the tool's \"name\" (see tools/list)".to_owned(),
            );
        };
        if !params.get("name").is_some_and(Value::is_string) {
            return invalid_params(
                "tools/call needs \"name\", a string: the tool's name from tools/list".to_owned(),
            );
        }
        match params.get("arguments") {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => {
                return invalid_params(format!(
                    "the \"arguments\" of tools/call must be a JSON object of the tool's arguments, not {}",
                    super::errors::json_kind(other)
                ));
            }
        }
    }
    let inline = params
        .and_then(|params| params.get("_meta"))
        .and_then(|meta| meta.get(META_PROTOCOL_VERSION))
        .is_some();
    if method == "initialize" || inline {
        *started = true;
    } else if !*started && !matches!(method, "ping" | "server/discover") {
        return Some(Screened::Answer(error_message(
            Some(id),
            ErrorCode::INVALID_REQUEST,
            &format!(
                "Invalid Request: {} before the session started: send initialize first (revision 2025-11-25), or give \"{META_PROTOCOL_VERSION}\" and \"io.modelcontextprotocol/clientCapabilities\" in this request's params._meta (revision 2026-07-28)",
                shown(method)
            ),
        )));
    }
    None
}

/// Why `params` do not fit `method`, where rmcp's type tells: ` (detail)` or nothing.
fn params_detail(method: &str, params: Option<&Value>) -> String {
    let params = params.cloned().unwrap_or(Value::Null);
    let error = match method {
        "initialize" => {
            serde_json::from_value::<rmcp::model::InitializeRequestParams>(params).err()
        }
        "tools/call" => serde_json::from_value::<rmcp::model::CallToolRequestParams>(params).err(),
        _ => None,
    };
    error.map_or_else(String::new, |error| format!(" ({})", detail(&error)))
}

/// The line transport: reads lines from `read`, writes one message per line to `write`.
pub(crate) struct LineTransport<R, W> {
    read: BufReader<R>,
    line: Vec<u8>,
    /// Skipping the rest of a line longer than [`MAX_LINE_BYTES`].
    discarding: bool,
    started: bool,
    /// [`MAX_LINE_BYTES`], smaller in tests.
    max_line: usize,
    write: Arc<Mutex<Option<W>>>,
    /// An answer being written. Kept here, not in `receive`'s stack: rmcp polls `receive`
    /// in a `select!` and drops it whenever another branch is ready, which would drop a
    /// half-written answer with it.
    answering: Option<Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> LineTransport<R, W> {
    pub(crate) fn new(read: R, write: W) -> Self {
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            started: false,
            max_line: MAX_LINE_BYTES,
            write: Arc::new(Mutex::new(Some(write))),
            answering: None,
        }
    }
}

#[cfg(test)]
impl<R, W> LineTransport<R, W> {
    pub(crate) fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }
}

/// What one read produced.
enum Read {
    Line,
    TooLong,
    End,
}

impl<R: AsyncRead + Unpin, W> LineTransport<R, W> {
    /// Reads up to the next newline into `self.line`. Cancel-safe: the bytes read so far
    /// stay in `self.line` (rmcp polls `receive` in a `select!`).
    async fn read_line(&mut self) -> Read {
        loop {
            let buffer = match self.read.fill_buf().await {
                Ok(buffer) => buffer,
                Err(error) => {
                    tracing::error!("mcp: reading stdin: {error}");
                    return Read::End;
                }
            };
            if buffer.is_empty() {
                return Read::End;
            }
            let (taken, complete) = match buffer.iter().position(|b| *b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buffer.len(), false),
            };
            if !self.discarding {
                self.line.extend_from_slice(&buffer[..taken]);
            }
            self.read.consume(taken);
            // The newline does not count.
            let too_long = self.line.len().saturating_sub(usize::from(complete)) > self.max_line;
            if complete && std::mem::take(&mut self.discarding) {
                // The end of a line already refused.
                self.line.clear();
                continue;
            }
            if too_long {
                self.line = Vec::new();
                self.discarding = !complete;
                return Read::TooLong;
            }
            if complete {
                return Read::Line;
            }
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(
    write: Arc<Mutex<Option<W>>>,
    mut bytes: Vec<u8>,
) -> std::io::Result<()> {
    bytes.push(b'\n');
    let mut guard = write.lock().await;
    let Some(write) = guard.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the transport is closed",
        ));
    };
    write.write_all(&bytes).await?;
    write.flush().await
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        let bytes = serde_json::to_vec(&item);
        async move { write_line(write, bytes?).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if let Some(answering) = self.answering.as_mut() {
                let written = answering.await;
                self.answering = None;
                if let Err(error) = written {
                    tracing::error!("mcp: writing stdout: {error}");
                    return None;
                }
            }
            let screened = match self.read_line().await {
                Read::End => return None,
                Read::TooLong => Screened::Answer(error_message(
                    None,
                    ErrorCode::INVALID_REQUEST,
                    &format!(
                        "Invalid Request: a message longer than {} bytes is not read",
                        self.max_line
                    ),
                )),
                Read::Line => {
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\n").unwrap_or(&line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    screen(line, &mut self.started)
                }
            };
            match screened {
                Screened::Pass(message) => return Some(*message),
                Screened::Skip => {}
                Screened::Answer(error) => {
                    tracing::debug!(%error, "mcp: answered a malformed message");
                    // Serialising a Value cannot fail.
                    let bytes = serde_json::to_vec(&error).unwrap_or_default();
                    self.answering = Some(Box::pin(write_line(self.write.clone(), bytes)));
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let mut guard = self.write.lock().await;
        if let Some(mut write) = guard.take() {
            write.shutdown().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rmcp::transport::Transport;
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::{LineTransport, Screened, screen};

    fn answer(line: &str, started: &mut bool) -> Value {
        match screen(line.as_bytes(), started) {
            Screened::Answer(answer) => answer,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn the_session_starts_with_initialize_or_a_request_carrying_its_revision() {
        let mut started = false;
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"account"}}"#;
        assert_eq!(answer(call, &mut started)["error"]["code"], json!(-32600));
        // ping and discovery are allowed before, and do not start it.
        for line in [
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{}}"#,
        ] {
            assert!(matches!(
                screen(line.as_bytes(), &mut started),
                Screened::Pass(_)
            ));
            assert!(!started, "{line}");
        }
        let inline = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        assert!(matches!(
            screen(inline.as_bytes(), &mut started),
            Screened::Pass(_)
        ));
        assert!(started);
        let mut started = false;
        let initialize = r#"{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
        assert!(matches!(
            screen(initialize.as_bytes(), &mut started),
            Screened::Pass(_)
        ));
        assert!(started);
        assert!(matches!(
            screen(call.as_bytes(), &mut started),
            Screened::Pass(_)
        ));
    }

    #[test]
    fn blank_lines_and_malformed_notifications_get_no_answer() {
        let mut started = true;
        for line in [
            "",
            "  \t",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":5}"#,
            r#"{"jsonrpc":"1.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":7}"#,
        ] {
            assert!(
                matches!(screen(line.as_bytes(), &mut started), Screened::Skip),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_response_of_the_client_is_never_answered() {
        let mut started = true;
        for line in [
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":[1],"result":{}}"#,
            r#"{"jsonrpc":"1.0","id":1,"result":5}"#,
        ] {
            assert!(
                !matches!(screen(line.as_bytes(), &mut started), Screened::Answer(_)),
                "{line}"
            );
        }
        let answer = r#"{"jsonrpc":"2.0","id":0,"result":{"action":"decline"}}"#;
        assert!(matches!(
            screen(answer.as_bytes(), &mut started),
            Screened::Pass(_)
        ));
        // A float id is no id: answered with id null.
        let float = r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#;
        match screen(float.as_bytes(), &mut started) {
            Screened::Answer(error) => {
                assert_eq!(error["id"], Value::Null);
                assert_eq!(error["error"]["code"], json!(-32600));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_and_a_bom_are_handled() {
        let mut started = true;
        let error = match screen(b"{\"a\": \"\xff\"}", &mut started) {
            Screened::Answer(answer) => answer,
            other => panic!("{other:?}"),
        };
        assert_eq!(error["error"]["code"], json!(-32700));
        assert_eq!(error["id"], Value::Null);
        let bom = "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
        assert!(matches!(
            screen(bom.as_bytes(), &mut started),
            Screened::Pass(_)
        ));
    }

    /// Lines through the transport: a line of exactly the limit is read, one byte more is
    /// refused with `"id": null` and skipped to its end, and the next line is read.
    /// Closing the transport ends the output: the client reads the end of the stream (a
    /// client waiting for more would otherwise hang on a server that has stopped).
    #[tokio::test]
    async fn closing_ends_the_output() {
        use tokio::io::AsyncReadExt;
        let (mut client, server) = tokio::io::duplex(1 << 10);
        let (read, write) = tokio::io::split(server);
        let mut transport = LineTransport::new(read, write);
        transport.close().await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_to_end(&mut rest),
        )
        .await
        .expect("the end of the output, not a wait")
        .unwrap();
        assert_eq!(read, 0);
    }

    #[tokio::test]
    async fn a_line_past_the_limit_is_refused_and_the_next_one_read() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (read, write) = tokio::io::split(server);
        let mut transport = LineTransport::new(read, write).with_max_line(64);
        let ping = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let exact = format!("{:<64}", ping(1));
        assert_eq!(exact.len(), 64);
        let long = format!("{:<65}", ping(2));
        let input = format!("{exact}\n{long}\r\n{}\n", ping(3));
        client.write_all(input.as_bytes()).await.unwrap();
        let first = transport.receive().await.unwrap();
        assert!(format!("{first:?}").contains("Number(1)"), "{first:?}");
        let third = transport.receive().await.unwrap();
        assert!(format!("{third:?}").contains("Number(3)"), "{third:?}");
        let mut lines = BufReader::new(client).lines();
        let refusal: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(refusal["id"], Value::Null);
        assert_eq!(refusal["error"]["code"], json!(-32600));
        assert!(
            refusal["error"]["message"]
                .as_str()
                .unwrap()
                .contains("longer than 64 bytes")
        );
    }
}
