//! The plans this server computed, by digest: what `apply` may send.
//!
//! The agent never sends steps; it names a plan by the digest a `plan` call returned. The
//! store keeps the plan per digest, so that `apply` sends exactly what was shown.

use std::collections::VecDeque;

use gate_stp::desired::Plan;
use sha2::{Digest as _, Sha256};

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
