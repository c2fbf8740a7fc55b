//! The loopback fixtures shared by `benches/client.rs` (timed) and `examples/per_call.rs`
//! (instructions counted under callgrind): a server with fixed answers, the floor's signer
//! written from the primitives, the bare reqwest request and the typed client, so that both
//! measure exactly the same two requests.

use std::net::SocketAddr;

use axum::{Router, routing::get};
use gate_stp::{Client, Credentials, ManualClock};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

pub const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
pub const TIMESTAMP: i64 = 1_700_000_000;
pub const GROUPS: &str = r#"[{"id":100001,"name":"desk-a","creator_id":10000,"create_time":1700000000},{"id":100002,"name":"desk-b","creator_id":10000,"create_time":1700000001}]"#;
pub const USERS: &str = r#"[{"user_id":10001,"stp_id":7,"create_time":1700000000},{"user_id":10002,"stp_id":7,"create_time":1700000000}]"#;

/// A server that answers both routes with fixed bodies and checks nothing, so the
/// signed and unsigned clients see exactly the same server cost.
pub async fn fixed_server() -> SocketAddr {
    let json = |body: &'static str| ([("content-type", "application/json")], body);
    let app = Router::new()
        .route(
            "/api/v4/account/stp_groups",
            get(move || async move { json(GROUPS) }),
        )
        .route(
            "/api/v4/account/stp_groups/7/users",
            axum::routing::post(move || async move { json(USERS) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub const USER_AGENT: &str = "bench-agent/1";
pub const KEY: &str = "bench-key";

/// The floor's signing: what any correct Gate client must do for every request, written
/// as plainly as possible from the primitives (SHA-512 of the body, HMAC-SHA512 from a
/// state keyed once, lowercase hex, no allocation), independent of `gate_stp::signing`.
pub struct FloorSigner {
    keyed: Hmac<Sha512>,
    key: reqwest::header::HeaderValue,
}

impl FloorSigner {
    pub fn new() -> Self {
        Self {
            keyed: <Hmac<Sha512> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap(),
            key: reqwest::header::HeaderValue::from_static(KEY),
        }
    }

    /// Sets KEY, Timestamp and SIGN on a request without a query string.
    pub fn sign(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let timestamp = TIMESTAMP.to_string();
        let mut body_hash = [0u8; 128];
        hex::encode_to_slice(Sha512::digest(body), &mut body_hash).unwrap();
        let mut mac = self.keyed.clone();
        for part in [
            method.as_bytes(),
            b"\n",
            path.as_bytes(),
            b"\n\n",
            &body_hash,
            b"\n",
            timestamp.as_bytes(),
        ] {
            mac.update(part);
        }
        let mut sign = [0u8; 128];
        hex::encode_to_slice(mac.finalize().into_bytes(), &mut sign).unwrap();
        request
            .header("key", self.key.clone())
            .header("timestamp", timestamp)
            .header(
                "sign",
                reqwest::header::HeaderValue::from_bytes(&sign).unwrap(),
            )
    }
}

pub fn raw_request(
    raw: &reqwest::Client,
    signer: &FloorSigner,
    method: reqwest::Method,
    (base, path): (&str, &str),
    body: Option<&[u8]>,
) -> reqwest::RequestBuilder {
    let url = format!("{base}{path}");
    let mut request = raw
        .request(method.clone(), url)
        .header("accept", "application/json");
    request = signer.sign(
        request,
        method.as_str(),
        &format!("/api/v4{path}"),
        body.unwrap_or_default(),
    );
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    request
}

pub fn gate_client(base: &str) -> Client {
    Client::builder()
        .base_url(base)
        .credentials(Credentials::new(KEY, SECRET).unwrap())
        .user_agent(USER_AGENT)
        .clock(ManualClock::at_unix_secs(TIMESTAMP as u64))
        .build()
        .unwrap()
}

/// The floor's bare reqwest client: no redirects, the same User-Agent, and the typed
/// client's default per-request timeout (10 s), because a production client must have one
/// and its timer is part of any correct request, not overhead.
pub fn floor_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `sign/*`'s fixture: a built POST request with an N-byte body, and the floor of signing
/// it, SHA-512 of the same body plus HMAC-SHA512 (keyed once, cloned per call) of a message
/// as long as the signature string.
pub struct SignFixture {
    body: Vec<u8>,
    message: Vec<u8>,
    keyed: Hmac<Sha512>,
}

impl SignFixture {
    const PATH: &str = "/api/v4/account/stp_groups/7/users";

    pub fn new(size: usize) -> Self {
        let body = vec![b'7'; size];
        let timestamp = TIMESTAMP.to_string();
        let message_len = gate_stp::signing::signature_string(&gate_stp::signing::SigningInput {
            method: "POST",
            path: Self::PATH,
            query: "",
            body: &body,
            timestamp: &timestamp,
        })
        .len();
        Self {
            body,
            message: vec![b'm'; message_len],
            keyed: <Hmac<Sha512> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap(),
        }
    }

    /// The request the hook signs (built once; signing it again replaces its headers).
    pub fn request(&self, http: &reqwest::Client) -> reqwest::Request {
        http.post(format!("http://127.0.0.1{}", Self::PATH))
            .body(self.body.clone())
            .build()
            .unwrap()
    }

    /// The floor: what signing costs at the least, as bytes, before any header exists.
    pub fn primitive(&self) {
        use std::hint::black_box;
        let body_hash = Sha512::digest(black_box(&self.body));
        let mut mac = black_box(&self.keyed).clone();
        mac.update(black_box(&self.message));
        black_box((body_hash, mac.finalize().into_bytes()));
    }
}
