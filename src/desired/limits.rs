//! The bounds of what a desired-state document or a saved plan may hold, checked before
//! anything else is done with it: a file above its size is not read further, a document
//! above its counts is not planned, so nothing is read from Gate and nothing is sent.
//!
//! Gate documents none of these (no maximum of groups per account, nor of a name's
//! length: `../GATE-API.md`); they are ours, chosen generous for any real account and
//! small enough that a plan stays a document a person can review and a process can hold.

use std::{io::Read as _, path::Path};

/// The largest desired-state document read, in bytes: 4 MiB.
///
/// A document of [`MAX_GROUPS`] groups with names of a few dozen characters and a handful of
/// members each is under 1 MiB; four leave room for long login names and comments, and
/// keep the memory of a plan bounded (BENCHMARKS.md gives the figure per group).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The largest saved plan read (`gate-stp apply PLAN.json`), in bytes: 32 MiB.
///
/// Larger than [`MAX_DOCUMENT_BYTES`]: a plan also lists the live groups the file does not
/// manage, with their members, and every step.
pub const MAX_PLAN_BYTES: usize = 32 * 1024 * 1024;

/// The most groups a desired-state document may declare: 10,000.
///
/// A plan of this many groups is already hours of requests at Gate's rate limits and far
/// more than any person reviews; a document above it is a generator's or an agent's
/// mistake.
pub const MAX_GROUPS: usize = 10_000;

/// The longest group name (and member login name) a document may hold, in characters: 256.
///
/// Ours, not Gate's (Gate documents no limit; the emulator refuses a multi-megabyte name
/// only when it is sent). Long enough for any name a person types; a message quoting a
/// longer name cuts it (the reason after it always shows).
pub const MAX_NAME_CHARS: usize = 256;

/// Reads at most `max` bytes of the file at `path` as UTF-8 text: a file larger than that
/// (by its metadata, or by what reading finds when the metadata is wrong, as for a pipe)
/// is refused with [`Oversized`] after reading at most `max + 1` bytes.
pub(crate) fn read_bounded(path: &Path, max: usize) -> Result<String, ReadBoundedError> {
    let file = std::fs::File::open(path).map_err(ReadBoundedError::Io)?;
    if let Ok(metadata) = file.metadata()
        && metadata.is_file()
        && metadata.len() > max as u64
    {
        return Err(ReadBoundedError::Oversized(Oversized {
            bytes: Some(metadata.len()),
            max,
        }));
    }
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadBoundedError::Io)?;
    if bytes.len() > max {
        return Err(ReadBoundedError::Oversized(Oversized { bytes: None, max }));
    }
    String::from_utf8(bytes).map_err(|error| {
        ReadBoundedError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    })
}

/// Why [`read_bounded`] refused a file.
#[derive(Debug)]
pub(crate) enum ReadBoundedError {
    /// Opening or reading failed, or the text is not UTF-8.
    Io(std::io::Error),
    /// The file is larger than allowed.
    Oversized(Oversized),
}

/// A document larger than its limit: its size when known, and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    /// The size, in bytes, when known before reading (a regular file); `None` when reading
    /// found it (a pipe).
    pub bytes: Option<u64>,
    /// The limit, in bytes.
    pub max: usize,
}

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(bytes) = self.bytes {
            write!(f, "{bytes} bytes, ")?;
        }
        const MIB: usize = 1024 * 1024;
        if self.max >= MIB && self.max.is_multiple_of(MIB) {
            write!(f, "more than the limit of {} MiB", self.max / MIB)
        } else {
            write!(f, "more than the limit of {} bytes", self.max)
        }
    }
}

/// Refuses text longer than `max` bytes (a document handed over as a string, not a file).
pub(crate) fn check_text(text: &str, max: usize) -> Result<(), Oversized> {
    if text.len() > max {
        return Err(Oversized {
            bytes: Some(text.len() as u64),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_up_to_its_limit_and_refused_past_it() {
        let dir = std::env::temp_dir().join(format!("gate-stp-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("doc.json");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), "0123456789");
        let Err(ReadBoundedError::Oversized(oversized)) = read_bounded(&path, 9) else {
            panic!("not refused")
        };
        assert_eq!(
            oversized,
            Oversized {
                bytes: Some(10),
                max: 9
            }
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_bounded(&path, 9),
            Err(ReadBoundedError::Io(_))
        ));
        assert!(matches!(
            read_bounded(&dir.join("missing"), 9),
            Err(ReadBoundedError::Io(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_stream_without_a_size_is_cut_after_one_byte_past_the_limit() {
        // /dev/zero has no length in its metadata and never ends: only the cut stops it.
        let Err(ReadBoundedError::Oversized(oversized)) =
            read_bounded(Path::new("/dev/zero"), 1024)
        else {
            panic!("not refused")
        };
        assert_eq!(
            oversized,
            Oversized {
                bytes: None,
                max: 1024
            }
        );
        assert_eq!(oversized.to_string(), "more than the limit of 1024 bytes");
        let file = Oversized {
            bytes: Some(5 << 20),
            max: MAX_DOCUMENT_BYTES,
        };
        assert_eq!(
            file.to_string(),
            "5242880 bytes, more than the limit of 4 MiB"
        );
    }

    #[test]
    fn a_saved_plan_above_its_limit_is_refused_before_it_is_parsed() {
        let big = " ".repeat(MAX_PLAN_BYTES + 1);
        let error = crate::desired::Plan::from_json(&big, "plan.json").unwrap_err();
        assert!(
            matches!(error, crate::desired::PlanFileError::TooLarge { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "plan.json: the saved plan is {} bytes, more than the limit of 32 MiB; nothing was read further",
                MAX_PLAN_BYTES + 1
            )
        );
        // At the limit it is parsed (and refused as not a plan).
        let edge = " ".repeat(MAX_PLAN_BYTES);
        let error = crate::desired::Plan::from_json(&edge, "plan.json").unwrap_err();
        assert!(
            matches!(error, crate::desired::PlanFileError::Syntax { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_limit_is_written_in_mib_only_when_it_is_a_whole_number_of_them() {
        let limit = |max| Oversized { bytes: None, max }.to_string();
        assert_eq!(limit(2 << 20), "more than the limit of 2 MiB");
        assert_eq!(limit((1 << 20) + 1), "more than the limit of 1048577 bytes");
        assert_eq!(limit(0), "more than the limit of 0 bytes");
    }

    #[test]
    fn text_is_checked_by_its_bytes() {
        assert_eq!(check_text("abc", 3), Ok(()));
        assert_eq!(
            check_text("abcd", 3),
            Err(Oversized {
                bytes: Some(4),
                max: 3
            })
        );
    }
}
