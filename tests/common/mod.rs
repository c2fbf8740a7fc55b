//! Test support shared by the integration tests.
//!
//! `gate_sign` is a second, independent implementation of Gate's APIv4 signature,
//! written from Gate's documentation (not from `gate_stp::signing`): it works on the
//! bytes a server received and decodes the query byte by byte.
#![allow(dead_code)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
#[cfg(feature = "mock")]
pub mod emulator;
pub mod gate;
pub mod logs;
#[cfg(all(feature = "cli", unix))]
pub mod pty;
pub mod raw;
pub mod vectors;

use std::{
    ops::Deref,
    path::{Path, PathBuf},
};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

/// A path in a directory made for one test under the temporary directory: the directory,
/// and everything the test or a child process put in it, is removed when this is dropped.
/// It reads as the path it holds (`Deref<Target = Path>`, `AsRef<Path>`); keep it bound
/// for as long as the path is used. It is not `AsRef<OsStr>`, so that `Command::arg` cannot
/// take it by value (and remove the directory before the command runs): give it
/// `path.as_os_str()`.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// `name` in this directory (not created), which keeps the directory alive.
    pub fn file(self, name: &str) -> Scratch {
        Scratch {
            path: self.path.join(name),
            _dir: self._dir,
        }
    }
}

impl Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A directory created for one test, empty and never used before (`tempfile` picks a
/// random name and creates it exclusively), removed with its contents when the returned
/// [`Scratch`] is dropped: a run of the suite leaves nothing in the temporary directory.
pub fn fresh_dir(tag: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("gate-stp-{tag}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("a temporary directory for {tag}: {e}"));
    Scratch {
        path: dir.path().to_path_buf(),
        _dir: dir,
    }
}

/// Gate's form decoding of a raw query: `+` is a space, `%XX` is a byte; anything else,
/// including a malformed escape, stays as it is.
pub fn form_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex_digit);
                let low = bytes.get(i + 2).copied().and_then(hex_digit);
                match (high, low) {
                    (Some(high), Some(low)) => {
                        out.push(high * 16 + low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// SIGN for a request as received: `HMAC-SHA512(secret, METHOD\npath\ndecoded query\nhex(sha512(body))\ntimestamp)`.
pub fn gate_sign(
    secret: &str,
    method: &str,
    path: &str,
    raw_query: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    gate_sign_query_bytes(
        secret,
        method,
        path,
        &form_decode(raw_query),
        body,
        timestamp,
    )
}

/// [`gate_sign`] with the query line given as the exact bytes to sign, so that a test can
/// also sign it the wrong way (undecoded, as some clients do).
pub fn gate_sign_query_bytes(
    secret: &str,
    method: &str,
    path: &str,
    query: &[u8],
    body: &[u8],
    timestamp: &str,
) -> String {
    let mut message = Vec::new();
    message.extend_from_slice(method.to_uppercase().as_bytes());
    message.push(b'\n');
    message.extend_from_slice(path.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(query);
    message.push(b'\n');
    message.extend_from_slice(hex::encode(Sha512::digest(body)).as_bytes());
    message.push(b'\n');
    message.extend_from_slice(timestamp.as_bytes());
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&message);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a request received by a wiremock server the way Gate does; `Err` says why not.
pub fn verify_wiremock(request: &wiremock::Request, key: &str, secret: &str) -> Result<(), String> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(str::to_owned)
                    .map_err(|_| format!("{name} not text"))
            })
            .transpose()?
            .ok_or_else(|| format!("missing header {name}"))
    };
    let sent_key = header("KEY")?;
    let timestamp = header("Timestamp")?;
    let sign = header("SIGN")?;
    if sent_key != key {
        return Err(format!("wrong key {sent_key}"));
    }
    let expected = gate_sign(
        secret,
        request.method.as_str(),
        request.url.path(),
        request.url.query().unwrap_or(""),
        &request.body,
        &timestamp,
    );
    if expected != sign {
        return Err("signature mismatch".into());
    }
    Ok(())
}

/// Checks a request received by a [`raw`] server the way Gate does; `Err` says why not.
pub fn verify_raw(request: &raw::RawRequest, key: &str, secret: &str) -> Result<(), String> {
    let header = |name: &str| {
        request
            .header(name)
            .ok_or_else(|| format!("missing header {name}"))
    };
    let sent_key = header("KEY")?;
    let timestamp = header("Timestamp")?;
    let sign = header("SIGN")?;
    if sent_key != key {
        return Err(format!("wrong key {sent_key}"));
    }
    let (path, query) = request
        .target()
        .split_once('?')
        .unwrap_or((request.target(), ""));
    if gate_sign(
        secret,
        request.method(),
        path,
        query,
        &request.body,
        timestamp,
    ) != sign
    {
        return Err("signature mismatch".into());
    }
    Ok(())
}

/// What `fresh_dir` promises: the directory and a file a test wrote in it are gone once
/// the [`Scratch`] is dropped.
#[test]
fn a_fresh_dir_and_what_is_in_it_are_removed_when_dropped() {
    let file = fresh_dir("self-test").file("inside.txt");
    std::fs::write(&file, "x").unwrap();
    let dir = file.parent().unwrap().to_path_buf();
    assert!(dir.is_dir(), "{}", dir.display());
    drop(file);
    assert!(!dir.exists(), "{} is left behind", dir.display());
}
