//! The plans this server computed, by digest: what `apply` may send.
//!
//! The agent never sends steps; it names a plan by the digest a `plan` call returned. The
//! store keeps the plan per digest, so that `apply` sends exactly what was shown.

use std::{
    collections::VecDeque,
    sync::{Mutex, PoisonError},
};

use gate_stp::desired::Plan;
use sha2::{Digest as _, Sha256};

use super::errors::ToolError;

/// Plans kept per server process. An agent planning in a loop must not grow memory
/// without limit; 32 covers any review an agent or a person does in one session (the
/// oldest plan is forgotten first, and applying it then says "plan again").
pub(crate) const MAX_STORED_PLANS: usize = 32;

/// What a `plan` call produced. Only the plan is kept: `apply` reads the live state
/// afresh for it (the library's saved-plan path, `Proposal::for_saved`), so the plan's
/// fingerprint is checked against a read made right before sending, however long the
/// agent or its user took.
#[derive(Debug, Clone)]
pub(crate) struct StoredPlan {
    pub(crate) plan: Plan,
}

/// The digest naming a plan: lowercase hex SHA-256 of its JSON document. The document
/// holds the live state's fingerprint, so the same file planned against a changed
/// account gets another digest.
pub(crate) fn digest_of(plan: &Plan) -> String {
    hex::encode(Sha256::digest(plan.to_json_string().as_bytes()))
}

/// Plans by digest, oldest first, at most `capacity`.
#[derive(Debug)]
pub(crate) struct DigestStore {
    entries: VecDeque<(String, StoredPlan)>,
    capacity: usize,
}

impl DigestStore {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// Keeps `stored` under its digest (returned) as the newest entry, forgetting the
    /// oldest beyond the capacity. Planning the same thing twice keeps one entry.
    pub(crate) fn insert(&mut self, stored: StoredPlan) -> String {
        let digest = digest_of(&stored.plan);
        self.entries.retain(|(known, _)| *known != digest);
        self.entries.push_back((digest.clone(), stored));
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
        digest
    }

    /// The plan under `digest`, left in the store (to show it before asking the user).
    pub(crate) fn get(&self, digest: &str) -> Option<&StoredPlan> {
        self.entries
            .iter()
            .find(|(known, _)| known == digest)
            .map(|(_, stored)| stored)
    }

    /// Takes the plan under `digest` out of the store: a digest is applied at most once,
    /// and of two concurrent applies of it only the first finds it.
    pub(crate) fn take(&mut self, digest: &str) -> Option<StoredPlan> {
        let index = self.entries.iter().position(|(known, _)| known == digest)?;
        self.entries.remove(index).map(|(_, stored)| stored)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// How long a plan kept on disk can be applied, when the operator does not say
/// (`gate-stp mcp --plan-ttl MINUTES`): 30 minutes, time for a person to review a plan,
/// short enough that an old digest found in a transcript is no longer good.
pub(crate) const DEFAULT_PLAN_TTL_MINUTES: u64 = 30;

/// Plan files kept per key at most; the oldest go first (expired ones always do).
pub(crate) const MAX_PLAN_FILES: usize = 256;

/// The first line of a plan file, before the plan's JSON document.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    /// `gate-stp-mcp-plan/1`.
    format: String,
    /// When the plan was made, in seconds since the Unix epoch.
    created: u64,
}

const FILE_FORMAT: &str = "gate-stp-mcp-plan/1";

/// Why the store could not keep or give a plan (the disk, not the digest).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the folder of kept plans is open to other users (mode {mode:o}); only its owner may read or write it"
    )]
    Open { path: String, mode: u32 },
}

fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Plans kept on disk, one file per digest, in a folder of the operator's (owner-only) per
/// key and base URL: any `gate-stp mcp` process of this operator with this key finds a
/// plan another one made (one-shot clients start a server per call), for a bounded time.
///
/// - A file is written under a temporary name and renamed into place, so a reader sees a
///   whole plan or none.
/// - Applying claims the file by renaming it to a name of this process: of two processes
///   applying one digest, exactly one rename succeeds, and only that one sends.
/// - A file whose content does not hash to its digest is no plan (it is removed).
#[derive(Debug)]
pub(crate) struct DiskStore {
    dir: std::path::PathBuf,
    ttl: std::time::Duration,
}

/// The folder of one key's plans under `root`: named by a hash of the base URL and the key
/// (the key itself is not written anywhere).
pub(crate) fn scope(base_url: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"gate-stp mcp plans\0");
    hash.update(base_url.as_bytes());
    hash.update(b"\0");
    hash.update(key.as_bytes());
    hex::encode(&hash.finalize()[..12])
}

pub(crate) fn now_secs() -> u64 {
    gate_stp::Clock::now(&gate_stp::SystemClock)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Creates `dir` (and its parents) owner-only where this process creates it, and refuses
/// it if others may use it.
fn owner_only_dir(dir: &std::path::Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)
            .map_err(io_error(dir))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(StoreError::Open {
                path: dir.display().to_string(),
                mode: mode & 0o777,
            });
        }
    }
    Ok(())
}

impl DiskStore {
    /// The store of `scope` under `root`, created if needed.
    pub(crate) fn open(
        root: &std::path::Path,
        scope: &str,
        ttl: std::time::Duration,
    ) -> Result<Self, StoreError> {
        owner_only_dir(root)?;
        let dir = root.join(scope);
        owner_only_dir(&dir)?;
        Ok(Self { dir, ttl })
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn path(&self, digest: &str) -> std::path::PathBuf {
        self.dir.join(format!("{digest}.json"))
    }

    /// Keeps `plan`; returns its digest. Forgets expired plans, and the oldest beyond
    /// [`MAX_PLAN_FILES`].
    pub(crate) fn insert(&self, plan: &Plan) -> Result<String, StoreError> {
        let json = plan.to_json_string();
        let digest = hex::encode(Sha256::digest(json.as_bytes()));
        let header = Header {
            format: FILE_FORMAT.to_owned(),
            created: now_secs(),
        };
        let mut text = serde_json::to_string(&header).unwrap_or_default();
        text.push('\n');
        text.push_str(&json);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let temporary = self.dir.join(format!(
            ".{digest}.{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temporary).and_then(|mut file| {
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()
        });
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(io_error(&temporary)(error));
        }
        let path = self.path(&digest);
        std::fs::rename(&temporary, &path).map_err(io_error(&path))?;
        self.prune();
        Ok(digest)
    }

    /// Reads the plan file at `path` named by `digest`: `None` when it is expired or not
    /// the plan of that digest (then it is removed).
    fn read(&self, path: &std::path::Path, digest: &str) -> Result<Option<Plan>, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(path)(error)),
        };
        let plan = text.split_once('\n').and_then(|(header, json)| {
            let header: Header = serde_json::from_str(header).ok()?;
            let fresh = header.format == FILE_FORMAT
                && now_secs().saturating_sub(header.created) <= self.ttl.as_secs();
            let genuine = hex::encode(Sha256::digest(json.as_bytes())) == digest;
            if !(fresh && genuine) {
                return None;
            }
            Plan::from_json(json, &path.display().to_string()).ok()
        });
        if plan.is_none() {
            let _ = std::fs::remove_file(path);
        }
        Ok(plan)
    }

    /// The plan under `digest`, left in place (to show it before asking the user).
    pub(crate) fn get(&self, digest: &str) -> Result<Option<Plan>, StoreError> {
        self.read(&self.path(digest), digest)
    }

    /// Takes the plan under `digest`: claims its file by renaming it (of concurrent takes,
    /// in this process or another, exactly one succeeds), reads it and removes it.
    pub(crate) fn take(&self, digest: &str) -> Result<Option<Plan>, StoreError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let claimed = self.dir.join(format!(
            ".{digest}.{}.{}.claimed",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let path = self.path(digest);
        match std::fs::rename(&path, &claimed) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path)(error)),
        }
        let plan = self.read(&claimed, digest);
        let _ = std::fs::remove_file(&claimed);
        plan
    }

    /// Removes expired plans, leftovers of interrupted writes and claims, and the oldest
    /// plans beyond [`MAX_PLAN_FILES`]. Best effort: a file another process removed first
    /// is no error.
    pub(crate) fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = gate_stp::Clock::now(&gate_stp::SystemClock);
        let mut plans = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(modified) = entry.metadata().and_then(|meta| meta.modified()) else {
                continue;
            };
            let age = now.duration_since(modified).unwrap_or_default();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A temporary or claimed file: another process may be using it now.
                if age > self.ttl.max(std::time::Duration::from_secs(3600)) {
                    let _ = std::fs::remove_file(&path);
                }
            } else if !name.ends_with(".json") {
                // Not a plan (the request-state key).
            } else if age > self.ttl {
                let _ = std::fs::remove_file(&path);
            } else {
                plans.push((modified, path));
            }
        }
        if plans.len() > MAX_PLAN_FILES {
            plans.sort();
            for (_, path) in &plans[..plans.len() - MAX_PLAN_FILES] {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Where the plans are kept: on disk for `gate-stp mcp` (any process of the operator with
/// the key applies them), in memory for the demo's in-process session.
pub(super) enum Plans {
    Memory(Mutex<DigestStore>),
    Disk(DiskStore),
}

/// The plan store's failure, for the model: the operator's to fix.
fn store_failed(error: StoreError) -> ToolError {
    let what = format!("the server cannot use its folder of kept plans ({error})");
    ToolError::new(format!(
        "{} (--plans-dir)",
        super::errors::for_the_operator(&what)
    ))
}

impl Plans {
    fn memory(&self) -> Option<std::sync::MutexGuard<'_, DigestStore>> {
        match self {
            // The store is consistent after any panic of a holder (each method is one step).
            Plans::Memory(store) => Some(store.lock().unwrap_or_else(PoisonError::into_inner)),
            Plans::Disk(_) => None,
        }
    }

    pub(super) fn insert(&self, plan: Plan) -> Result<String, ToolError> {
        match self {
            Plans::Disk(store) => store.insert(&plan).map_err(store_failed),
            Plans::Memory(_) => Ok(self
                .memory()
                .map(|mut store| store.insert(StoredPlan { plan }))
                .unwrap_or_default()),
        }
    }

    pub(super) fn get(&self, digest: &str) -> Result<Option<Plan>, ToolError> {
        match self {
            Plans::Disk(store) => store.get(digest).map_err(store_failed),
            Plans::Memory(_) => Ok(self
                .memory()
                .and_then(|store| store.get(digest).map(|stored| stored.plan.clone()))),
        }
    }

    pub(super) fn take(&self, digest: &str) -> Result<Option<Plan>, ToolError> {
        match self {
            Plans::Disk(store) => store.take(digest).map_err(store_failed),
            Plans::Memory(_) => Ok(self
                .memory()
                .and_then(|mut store| store.take(digest).map(|stored| stored.plan))),
        }
    }
}
