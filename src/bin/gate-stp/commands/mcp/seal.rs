//! The `requestState` of apply's confirmation in revision 2026-07-28, sealed so that a
//! client cannot forge it.
//!
//! In that revision a server keeps no memory between requests: apply answers its first call
//! with `input_required` (the question for the user) and a `requestState` the client sends
//! back with the answer. The state names the digest it was issued for and when it expires,
//! with an HMAC-SHA256 over both under a key of the server's: `v1.DIGEST.EXPIRES.NONCE.MAC`
//! (hex). Whatever the client sends back is checked against that key before the answer
//! counts; a state of another digest, an expired one or one changed by a byte is refused.
//!
//! The key is random. `gate-stp mcp` keeps it beside its plans (`request-state.key` in the
//! key's owner-only folder, created once), so that any of the operator's server processes
//! opens a state another one sealed; the in-process demo keeps one in memory.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::store::StoreError;

/// How long a sealed state is good for: the time a user has to answer the question.
pub(crate) const STATE_LIFETIME_SECS: u64 = 600;

const VERSION: &str = "v1";

/// The file of the key, in the plans folder of one API key.
pub(crate) const KEY_FILE: &str = "request-state.key";

/// Seals and opens request states with one key.
pub(crate) struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(&rand::random::<u128>().to_le_bytes());
    key[16..].copy_from_slice(&rand::random::<u128>().to_le_bytes());
    key
}

/// Writes a fresh key at `path` (in `dir`) unless one is there already: written to a
/// temporary file and hard-linked into place, so a key is never seen half written, and of
/// two processes placing one at once the second's link fails with `AlreadyExists` and both
/// use the first's.
fn place_new_key(dir: &Path, path: &Path) -> std::io::Result<()> {
    let temporary = dir.join(format!(
        ".{KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        std::io::Write::write_all(&mut file, hex::encode(random_key()).as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        linked => linked,
    }
}

impl Sealer {
    /// A sealer with a fresh random key (states it seals open only in this process).
    pub(crate) fn random() -> Self {
        Self { key: random_key() }
    }

    /// The sealer of the key kept in `dir` (an owner-only folder), created there if it is
    /// not yet: written to a temporary file and linked into place, so that of two
    /// processes creating it at once both end up with the one that was linked first.
    pub(crate) fn in_dir(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(KEY_FILE);
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::Io { path, source }
        };
        if !path.exists() {
            place_new_key(dir, &path).map_err(io(&path))?;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let mut key = [0; 32];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
            io(&path)(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a key of 64 hex digits (delete the file: a new one is made)",
            ))
        })?;
        Ok(Self { key })
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body.as_bytes());
        mac
    }

    /// A state for `digest`, good until `now + STATE_LIFETIME_SECS`.
    pub(crate) fn seal(&self, digest: &str, now: u64) -> String {
        let body = format!(
            "{VERSION}.{digest}.{}.{:032x}",
            now.saturating_add(STATE_LIFETIME_SECS),
            rand::random::<u128>()
        );
        let mac = hex::encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{mac}")
    }

    /// Whether `state` was sealed by this key for `digest` and is still good at `now`;
    /// `Err` says why not, for the model.
    pub(crate) fn open(&self, state: &str, digest: &str, now: u64) -> Result<(), &'static str> {
        let (body, mac) = state
            .rsplit_once('.')
            .ok_or("not a request state of this server")?;
        let mut mac_bytes = [0; 32];
        hex::decode_to_slice(mac, &mut mac_bytes)
            .map_err(|_| "not a request state of this server")?;
        self.mac(body)
            .verify_slice(&mac_bytes)
            .map_err(|_| "not a request state of this server (it does not verify)")?;
        let mut parts = body.split('.');
        let (Some(VERSION), Some(sealed_for), Some(expires), Some(_nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err("not a request state of this server");
        };
        if sealed_for != digest {
            return Err("the request state is for another digest");
        }
        match expires.parse::<u64>() {
            Ok(expires) if now <= expires => Ok(()),
            _ => Err("the request state has expired"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KEY_FILE, STATE_LIFETIME_SECS, Sealer, place_new_key};

    const DIGEST: &str = "ab";

    #[test]
    fn a_state_opens_for_its_digest_until_it_expires_and_with_its_key_only() {
        let sealer = Sealer::random();
        let state = sealer.seal(DIGEST, 1000);
        assert_eq!(sealer.open(&state, DIGEST, 1000), Ok(()));
        assert_eq!(
            sealer.open(&state, DIGEST, 1000 + STATE_LIFETIME_SECS),
            Ok(())
        );
        assert_eq!(
            sealer.open(&state, DIGEST, 1001 + STATE_LIFETIME_SECS),
            Err("the request state has expired")
        );
        assert_eq!(
            sealer.open(&state, "cd", 1000),
            Err("the request state is for another digest")
        );
        assert!(Sealer::random().open(&state, DIGEST, 1000).is_err());
        assert_ne!(sealer.seal(DIGEST, 1000), state, "each state has its nonce");
    }

    #[test]
    fn a_state_changed_anywhere_does_not_open() {
        let sealer = Sealer::random();
        let state = sealer.seal(DIGEST, 1000);
        for at in 0..state.len() {
            let mut changed = state.clone().into_bytes();
            changed[at] = if changed[at] == b'1' { b'2' } else { b'1' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(sealer.open(&changed, DIGEST, 1000).is_err(), "{changed}");
        }
        // A later expiry written by hand does not verify either.
        let forged = state.replacen(".1600.", ".9999999999.", 1);
        assert!(sealer.open(&forged, DIGEST, 1000).is_err());
        for junk in ["", ".", "v1", "v1.ab.1.2.zz", "v1.ab.x.y.00"] {
            assert!(sealer.open(junk, DIGEST, 1000).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn two_sealers_of_one_folder_share_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let first = Sealer::in_dir(dir).unwrap();
        let second = Sealer::in_dir(dir).unwrap();
        assert_eq!(second.open(&first.seal(DIGEST, 5), DIGEST, 5), Ok(()));
        std::fs::write(dir.join(super::KEY_FILE), "not hex").unwrap();
        assert!(Sealer::in_dir(dir).is_err());
    }

    /// A key placed second (another process linked first) keeps the first: only
    /// `AlreadyExists` is taken as "a key is there"; any other failure is one.
    #[test]
    fn a_key_placed_second_keeps_the_first_and_other_failures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        place_new_key(dir.path(), &path).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first.len(), 64, "{first}");
        place_new_key(dir.path(), &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        // Nothing left beside the key.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("missing");
        let error = place_new_key(&missing, &missing.join(KEY_FILE)).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
    }

    /// The key never prints.
    #[test]
    fn a_sealer_prints_no_key() {
        assert_eq!(format!("{:?}", Sealer::random()), "Sealer(..)");
    }
}
