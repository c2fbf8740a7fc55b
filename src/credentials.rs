//! API key and secret.

use std::fmt;

use reqwest::header::HeaderValue;
use zeroize::Zeroizing;

use crate::{
    error::{ConfigError, Error},
    signing::SigningKey,
};

/// Environment variable read by [`Credentials::from_env`] for the API key.
pub const KEY_ENV: &str = "GATE_API_KEY";
/// Environment variable read by [`Credentials::from_env`] for the API secret.
pub const SECRET_ENV: &str = "GATE_API_SECRET";

/// A Gate API key and its secret.
///
/// The secret is kept only as a ready-keyed [`SigningKey`]: wiped when dropped, never
/// printed. `Debug` shows only the first characters of the key, so credentials can sit in
/// logged structs.
///
/// ```
/// let credentials = gate_stp::Credentials::new("my-key-123456", "my-secret")?;
/// assert_eq!(format!("{credentials:?}"), r#"Credentials { key: "my-k…", secret: "<redacted>" }"#);
/// # Ok::<(), gate_stp::Error>(())
/// ```
#[derive(Clone)]
pub struct Credentials {
    /// The key as text (for `key()` and logs) and as the header sent; both from the same
    /// checked `&str`, so neither needs a fallback.
    key_text: Box<str>,
    key: HeaderValue,
    signing_key: SigningKey,
}

impl Credentials {
    /// Number of leading key characters that `Debug` and tracing may show.
    pub const KEY_PREFIX_LEN: usize = 4;

    /// Credentials from a key and a secret.
    ///
    /// Fails when either is empty or when the key cannot travel in an HTTP header
    /// (control characters, non-visible ASCII).
    pub fn new(key: impl AsRef<str>, secret: impl Into<String>) -> Result<Self, Error> {
        let key = key.as_ref();
        // Zeroized however this function returns.
        let secret = Zeroizing::new(secret.into());
        if key.trim().is_empty() {
            return Err(ConfigError::EmptyKey.into());
        }
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret.into());
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidKey.into());
        }
        let key_text = Box::from(key);
        let mut key = HeaderValue::from_str(key).map_err(|_| ConfigError::InvalidKey)?;
        // Keeps the key out of `Debug` of requests and header maps.
        key.set_sensitive(true);
        Ok(Self {
            key_text,
            key,
            signing_key: SigningKey::new(secret.as_bytes()),
        })
    }

    /// Credentials from the `GATE_API_KEY` and `GATE_API_SECRET` environment variables.
    pub fn from_env() -> Result<Self, Error> {
        let key = std::env::var(KEY_ENV).map_err(|_| ConfigError::MissingEnv(KEY_ENV))?;
        let secret = std::env::var(SECRET_ENV).map_err(|_| ConfigError::MissingEnv(SECRET_ENV))?;
        Self::new(key, secret)
    }

    /// The API key.
    pub fn key(&self) -> &str {
        &self.key_text
    }

    /// The first [`Self::KEY_PREFIX_LEN`] characters of the key, for logs.
    pub fn key_prefix(&self) -> &str {
        let key = self.key();
        key.get(..Self::KEY_PREFIX_LEN).unwrap_or(key)
    }

    pub(crate) fn key_header(&self) -> &HeaderValue {
        &self.key
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &format_args!("\"{}…\"", self.key_prefix()))
            .field("secret", &"<redacted>")
            .finish()
    }
}
