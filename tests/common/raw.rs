//! Hand-written HTTP/1.1 servers on a raw `TcpListener`, for behaviours wiremock cannot
//! express: trickling, never answering, resetting mid-body, endless bodies, bad bytes.
//!
//! Each server reads one request per connection (head and `Content-Length` body), records
//! it, and hands the socket to the test's handler, which writes whatever bytes it likes.
//! Dropping the server stops it and every connection it holds.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// A request as the raw server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET /api/v4/... HTTP/1.1`
    pub request_line: String,
    /// Header names lower-cased, values as sent (lossily decoded).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn method(&self) -> &str {
        self.request_line.split(' ').next().unwrap_or_default()
    }

    /// Path and query as sent.
    pub fn target(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or_default()
    }
}

pub struct RawServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    accept: JoinHandle<()>,
}

impl RawServer {
    /// `http://127.0.0.1:<port>/api/v4`
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v4", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests read so far.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): they stop with it.
        self.accept.abort();
    }
}

/// Starts a server on a free loopback port; `handler` gets each connection after its
/// request has been read.
pub async fn serve<F, Fut>(handler: F) -> RawServer
where
    F: Fn(TcpStream, RawRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let accept = tokio::spawn({
        let connections = Arc::clone(&connections);
        let requests = Arc::clone(&requests);
        async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let handler = Arc::clone(&handler);
                let requests = Arc::clone(&requests);
                tasks.spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    requests.lock().unwrap().push(request.clone());
                    handler(stream, request).await;
                });
            }
        }
    });
    RawServer {
        addr,
        connections,
        requests,
        accept,
    }
}

/// A loopback port held for a test and never listened on: a connection to it is refused
/// (the kernel answers with a reset), and it cannot be handed to anything else while held.
///
/// The socket is bound without `listen()` and without `SO_REUSEADDR` (tokio's
/// `TcpSocket` sets none; its `TcpListener::bind` would set it), so no other socket can
/// bind the port, nor can the kernel give it out for a bind to port 0, until this is
/// dropped. Binding a listener and dropping it, as before, released the port to a
/// concurrently started emulator, which then answered the "dead" address.
pub struct DeadPort {
    socket: tokio::net::TcpSocket,
}

impl DeadPort {
    /// Holds a free loopback port.
    pub fn hold() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        Self { socket }
    }

    /// One port held until the test binary exits, for settings written into config files
    /// that outlive a test's own variables.
    pub fn for_the_run() -> &'static Self {
        static HELD: std::sync::OnceLock<DeadPort> = std::sync::OnceLock::new();
        HELD.get_or_init(Self::hold)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// `http://127.0.0.1:<port>/api/v4`
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v4", self.addr())
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(RawRequest {
        request_line,
        headers,
        body,
    })
}

/// An answer read off the wire by [`exchange`].
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers, header names lower-cased.
    pub head: String,
    /// The body as JSON (`Null` if it is not JSON).
    pub body: serde_json::Value,
}

impl Answer {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim())
        })
    }
}

/// One HTTP/1.1 exchange on a fresh, blocking connection to `addr` (`127.0.0.1:port`):
/// `head` is the request line and headers without the closing blank line; no body. No
/// client of ours is involved, so what the server answers is seen as it was written.
pub fn exchange(addr: SocketAddr, head: &str) -> Answer {
    exchange_on(std::net::TcpStream::connect(addr).unwrap(), head)
}

/// A blocking connection to `addr` made from the loopback address `source` (any of
/// 127.0.0.0/8 is this machine), so a server sees a second client address.
pub async fn connect_from(source: [u8; 4], addr: SocketAddr) -> std::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let stream = socket.connect(addr).await.unwrap().into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// [`exchange`] on a connection already made.
pub fn exchange_on(mut stream: std::net::TcpStream, head: &str) -> Answer {
    use std::io::{Read, Write};
    stream
        .write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let head = head
        .lines()
        .map(|line| match line.split_once(':') {
            Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Answer {
        status: head[9..12].parse().unwrap(),
        head,
        body: serde_json::from_str(body).unwrap_or_default(),
    }
}

/// The head of a GET of `target` (path and query), signed with `key` and `secret` at
/// `timestamp` (Unix seconds) by the independent signer of `tests/common`.
pub fn signed_get(target: &str, key: &str, secret: &str, timestamp: u64) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let timestamp = timestamp.to_string();
    let sign = super::gate_sign(secret, "GET", path, query, b"", &timestamp);
    format!(
        "GET {target} HTTP/1.1\r\nHost: gate\r\nKEY: {key}\r\nTimestamp: {timestamp}\r\nSIGN: {sign}\r\n"
    )
}

/// The head of a GET of `target` with no credentials at all.
pub fn anonymous_get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: gate\r\n")
}

/// [`exchange`] from the loopback address `source`, on the caller's runtime.
pub async fn exchange_from(source: [u8; 4], addr: SocketAddr, head: &str) -> u16 {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap()
}

/// An HTTP/1.1 answer with `status_line` (`503 Service Unavailable`), `headers` (each
/// ending in CRLF) and `body`, closing the connection: the next attempt then opens a new
/// one, rather than racing the server's close on a pooled one.
pub fn http_answer(status_line: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\n\
        Content-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// The path and arrival time (tokio's clock) of each request an [`answering_after`] server
/// read.
pub type Arrivals = Arc<Mutex<Vec<(String, tokio::time::Instant)>>>;

/// A raw server on the test's runtime that answers every request with `answer` after
/// `delay` of tokio time, and notes each request's path and arrival time. On a paused
/// clock the delay passes in no real time, yet the client's clock sees all of it (the
/// server must be on the test's runtime: tokio advances a paused clock whenever that
/// runtime is idle, which a server on another thread would make it).
pub async fn answering_after(delay: std::time::Duration, answer: String) -> (RawServer, Arrivals) {
    use tokio::io::AsyncWriteExt;
    let arrivals = Arrivals::default();
    let noted = Arc::clone(&arrivals);
    let server = serve(move |mut stream, request| {
        let answer = answer.clone();
        noted
            .lock()
            .unwrap()
            .push((request.target().to_owned(), tokio::time::Instant::now()));
        async move {
            tokio::time::sleep(delay).await;
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    })
    .await;
    (server, arrivals)
}
