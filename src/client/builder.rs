//! [`ClientBuilder`]: everything a [`Client`] is configured with, checked once in
//! [`ClientBuilder::build`].

use std::{borrow::Cow, fmt, net::IpAddr, sync::Arc, time::Duration};

use super::{Client, ClientInner};
use crate::{
    call::Shared,
    clock::{Clock, SystemClock},
    credentials::Credentials,
    error::{ConfigError, Error},
    policy::{RetryPolicy, pacer::Pacer},
};

/// Gate's live API.
pub const LIVE_BASE_URL: &str = "https://api.gateio.ws/api/v4";
/// Gate's testnet, as currently documented (older SDKs used
/// `https://fx-api-testnet.gateio.ws/api/v4`).
pub const TESTNET_BASE_URL: &str = "https://api-testnet.gateapi.io/api/v4";
/// Environment variable read by [`ClientBuilder::from_env`] for the base URL.
pub const BASE_URL_ENV: &str = "GATE_BASE_URL";

/// Gate's rate-limit windows are 10 s long: pacing never holds a request longer.
const PACING_MAX_WAIT: Duration = Duration::from_secs(10);

/// Default limit on a response body; STP answers are a few kilobytes at most.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Configures a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use gate_stp::{Client, Credentials, RetryPolicy};
///
/// let client = Client::builder()
///     .credentials(Credentials::new("key", "secret")?)
///     .base_url("http://127.0.0.1:8080/api/v4") // e.g. the emulator; live by default
///     .timeout(Duration::from_secs(5))
///     .retry_policy(RetryPolicy::default().retry_idempotent_writes(true))
///     .build()?;
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080/api/v4");
/// # Ok::<(), gate_stp::Error>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    base_url: BaseUrl,
    credentials: Option<Credentials>,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    http: Option<reqwest::ClientBuilder>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    resync_on_expired: bool,
    pacing: bool,
    allow_insecure_http: bool,
    max_response_bytes: usize,
    default_expiry: Option<Duration>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            base_url: BaseUrl(LIVE_BASE_URL.to_owned()),
            credentials: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            user_agent: concat!("gate-stp/", env!("CARGO_PKG_VERSION")).to_owned(),
            http: None,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            resync_on_expired: true,
            pacing: false,
            allow_insecure_http: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            default_expiry: None,
        }
    }
}

impl ClientBuilder {
    /// A builder for the live API, without credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder configured from the environment: `GATE_BASE_URL` if set, and credentials
    /// from `GATE_API_KEY` / `GATE_API_SECRET` if both are set.
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = Self::new();
        if let Ok(url) = std::env::var(BASE_URL_ENV) {
            builder = builder.base_url(url);
        }
        let key_set = std::env::var_os(crate::credentials::KEY_ENV).is_some();
        let secret_set = std::env::var_os(crate::credentials::SECRET_ENV).is_some();
        if key_set || secret_set {
            builder = builder.credentials(Credentials::from_env()?);
        }
        Ok(builder)
    }

    /// The key and secret that sign private requests.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Where requests go, including `/api/v4` (default [`LIVE_BASE_URL`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = BaseUrl(url.into());
        self
    }

    /// Use Gate's testnet ([`TESTNET_BASE_URL`]).
    pub fn testnet(self) -> Self {
        self.base_url(TESTNET_BASE_URL)
    }

    /// Longest time for one attempt, from connecting to the last byte of the body
    /// (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Longest time to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `gate-stp/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Start from your own `reqwest::ClientBuilder` (proxies, TLS roots, pools...).
    ///
    /// The timeouts and user agent of this builder are applied on top, and redirects are
    /// always switched off: a redirect must never carry the key and signature to another
    /// host. Verbose connection logging is switched off too, as it would log them. A
    /// finished `reqwest::Client` is not accepted because its redirect policy
    /// cannot be checked.
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = Some(builder);
        self
    }

    /// The clock that signing timestamps come from (default the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Which failures are retried (default [`RetryPolicy::default`]; [`RetryPolicy::none`]
    /// switches retries off).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// On a REQUEST_EXPIRED answer, sync the clock with `GET /spot/time` and send the
    /// request once more with a fresh timestamp (default on). Safe for every operation:
    /// Gate refuses an expired request before executing it.
    pub fn resync_on_expired(mut self, yes: bool) -> Self {
        self.resync_on_expired = yes;
        self
    }

    /// When a response says the rate-limit window is used up, hold the next request of
    /// that operation until the window resets, instead of sending it to be refused
    /// (default off). Requests still in flight count against the window too, so
    /// concurrent calls do not overshoot it. A request whose deadline (`expires_in`/`expires_at`) comes before
    /// the reset is not held but refused at once with
    /// [`Error::ExpiresBeforeRateLimitReset`].
    pub fn pace_rate_limits(mut self, yes: bool) -> Self {
        self.pacing = yes;
        self
    }

    /// Allow a plain-http base URL on a non-loopback host (default off: credentials and
    /// signatures would cross the network in clear).
    pub fn allow_insecure_http(mut self, yes: bool) -> Self {
        self.allow_insecure_http = yes;
        self
    }

    /// Largest response body read, in bytes (default 1 MiB).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit.max(1);
        self
    }

    /// Send every private request with `x-gate-exptime` set this far in the future
    /// (by Gate's clock), so that Gate drops it if it arrives later. Per-call settings
    /// take precedence.
    pub fn default_expiry(mut self, window: Duration) -> Self {
        self.default_expiry = Some(window);
        self
    }

    /// Builds the client, checking the base URL.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = check_base_url(&self.base_url.0, self.allow_insecure_http)?;
        let pacer = self.pacing.then(|| Pacer::new(PACING_MAX_WAIT));
        let http = self
            .http
            .unwrap_or_default()
            .redirect(reqwest::redirect::Policy::none())
            // Verbose connection logging would write KEY and SIGN to the log.
            .connection_verbose(false)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                base_url,
                http,
                shared: Arc::new(Shared {
                    credentials: self.credentials,
                    clock: self.clock,
                    offset_ms: Default::default(),
                    max_body_bytes: self.max_response_bytes,
                }),
                retry: self.retry,
                resync_on_expired: self.resync_on_expired,
                pacer,
                default_expiry: self.default_expiry,
            }),
        })
    }
}

/// Parses and checks the base URL: http(s) only, no query or fragment, and plain http only
/// for loopback hosts unless explicitly allowed. Returns it without a trailing slash.
/// The base URL as given, until `build` checks it. Its `Debug` hides a user and password
/// (refused by `build`, but a builder may be logged before that).
struct BaseUrl(String);

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&without_userinfo(&self.0), f)
    }
}

/// `url` with whatever stands between `://` and the host's `@` replaced by `***`: the URL
/// in an error or a log line must not carry the password the error refuses.
fn without_userinfo(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return Cow::Borrowed(url);
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| scheme_end + at);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}***{}",
            &url[..scheme_end],
            &url[scheme_end + at..]
        )),
        None => Cow::Borrowed(url),
    }
}

fn check_base_url(url: &str, allow_insecure_http: bool) -> Result<String, ConfigError> {
    let shown = without_userinfo(url);
    let invalid = |reason: &str| ConfigError::InvalidBaseUrl {
        url: shown.clone().into_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("a base URL carries no user or password"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback && !allow_insecure_http {
                return Err(ConfigError::InsecureBaseUrl(shown.into_owned()));
            }
        }
        _ => return Err(invalid("the scheme must be https (or http for loopback)")),
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert!(check_base_url("https://api.gateio.ws/api/v4", false).is_ok());
        assert_eq!(
            check_base_url("http://127.0.0.1:9/api/v4/", false).unwrap(),
            "http://127.0.0.1:9/api/v4"
        );
        assert!(check_base_url("http://[::1]:9/api/v4", false).is_ok());
        assert!(check_base_url("http://localhost:9/api/v4", false).is_ok());
        assert!(matches!(
            check_base_url("http://example.com/api/v4", false),
            Err(ConfigError::InsecureBaseUrl(_))
        ));
        assert!(check_base_url("http://example.com/api/v4", true).is_ok());
        assert!(check_base_url("ftp://example.com", true).is_err());
        assert!(check_base_url("not a url", false).is_err());
        assert!(check_base_url("https://h/api/v4?x=1", false).is_err());
        assert!(check_base_url("https://user:pw@h/api/v4", false).is_err());
    }

    #[test]
    fn a_user_alone_or_a_password_alone_is_refused_too() {
        // Either half of the userinfo is a credential the URL must not carry.
        for url in ["https://user@h/api/v4", "https://:hunter2@h/api/v4"] {
            match check_base_url(url, false) {
                Err(ConfigError::InvalidBaseUrl { reason, .. }) => {
                    assert_eq!(reason, "a base URL carries no user or password", "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn plain_http_to_a_remote_host_only_when_allowed() {
        let remote = "http://example.com/api/v4";
        for refused in [
            Client::builder().base_url(remote),
            Client::builder()
                .base_url(remote)
                .allow_insecure_http(false),
        ] {
            match refused.build() {
                Err(Error::Config(ConfigError::InsecureBaseUrl(url))) => assert_eq!(url, remote),
                other => panic!("{other:?}"),
            }
        }
        let allowed = Client::builder()
            .base_url(remote)
            .allow_insecure_http(true)
            .build()
            .unwrap();
        assert_eq!(allowed.base_url(), remote);
    }

    #[test]
    fn a_builders_debug_shows_its_base_url_without_the_password() {
        let shown = format!("{:?}", Client::builder());
        assert!(
            shown.contains(r#"base_url: "https://api.gateio.ws/api/v4""#),
            "{shown}"
        );
        let builder = Client::builder().base_url("https://user:hunter2@h/api/v4");
        let shown = format!("{builder:?}");
        assert!(
            shown.contains(r#"base_url: "https://***@h/api/v4""#),
            "{shown}"
        );
    }

    #[test]
    fn live_by_default_testnet_when_asked() {
        let live = ClientBuilder::new().build().unwrap();
        assert_eq!(live.base_url(), "https://api.gateio.ws/api/v4");
        let testnet = Client::builder().testnet().build().unwrap();
        assert_eq!(testnet.base_url(), "https://api-testnet.gateapi.io/api/v4");
        // The constants are what the client uses, not only what the docs say.
        assert_eq!(
            (LIVE_BASE_URL, TESTNET_BASE_URL),
            (live.base_url(), testnet.base_url())
        );
    }

    #[test]
    fn a_refused_url_never_shows_its_password() {
        for url in [
            "https://user:hunter2@h/api/v4",
            "https://user:hunter2@h/api/v4?x=1",
            "http://user:hunter2@example.com/api/v4",
            "https://user:hunter2@[bad/api/v4",
        ] {
            let error = check_base_url(url, false).unwrap_err();
            let text = format!("{error} {error:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("***@"), "{text}");
            let builder = Client::builder().base_url(url);
            assert!(!format!("{builder:?}").contains("hunter2"));
        }
        assert_eq!(without_userinfo("https://h/a@b"), "https://h/a@b");
        assert_eq!(without_userinfo("not a url"), "not a url");
    }
}
