//! Files the CLI writes (`plan --out`): whole or not at all.
//!
//! A file is written to a new temporary file in the same directory, flushed to disk, then
//! renamed over the destination, so that a kill, a full disk or a failed write mid-way
//! leaves either the old file or the new one, never a cut one that a later
//! `gate-stp apply` would read. The temporary file is removed when anything fails.

use std::{
    io::{self, Write},
    path::Path,
};

/// Writes `contents` to `path` whole: see the module's documentation. The file is created
/// readable and writable by its owner only (a plan names the account's users).
pub(crate) fn write_whole(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_whole_with(path, |file| file.write_all(contents))
}

/// [`write_whole`] with the writing done by `write` (tests make it fail half-way).
fn write_whole_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    // Dropped on any error below: the temporary file is deleted.
    let mut temporary = tempfile::Builder::new()
        .prefix(".gate-stp-")
        .suffix(".tmp")
        .tempfile_in(directory_of(path))?;
    write(temporary.as_file_mut())?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// The directory `path` is in: its parent, or `.` for a bare file name (whose parent is
/// the empty path). The temporary file must be there: a rename only replaces a file
/// atomically within one file system.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_goes_beside_the_destination() {
        assert_eq!(directory_of(Path::new("plan.json")), Path::new("."));
        assert_eq!(directory_of(Path::new("out/plan.json")), Path::new("out"));
        assert_eq!(directory_of(Path::new("/tmp/plan.json")), Path::new("/tmp"));
        assert_eq!(directory_of(Path::new("/")), Path::new("."));
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_replaced_whole_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write_whole(&path, b"first").unwrap();
        write_whole(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(entries(dir.path()), vec!["plan.json"]);
    }

    #[test]
    fn a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, "the old plan").unwrap();
        let error = write_whole_with(&path, |file| {
            file.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "disk full");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the old plan");
        assert_eq!(entries(dir.path()), vec!["plan.json"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("plan.json");
        assert!(write_whole(&path, b"x").is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_its_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write_whole(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
