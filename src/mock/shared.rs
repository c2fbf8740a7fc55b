//! What every request of one emulator shares: its accounts, settings, state, rate
//! limiter, pending faults and clock. Its own module so that the HTTP side
//! ([`server`](super::server)) and admission ([`admission`](super::admission)) both read
//! it without importing each other.

use std::{
    sync::{Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use super::{
    config::EmulatorConfig, faults::Faults, groups::Registry, ratelimit::RateLimiter, world::World,
};

/// Everything an emulator's requests share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) world: World,
    pub(super) config: EmulatorConfig,
    registry: Mutex<Registry>,
    pub(super) limiter: RateLimiter,
    pub(super) faults: Faults,
    /// Unix seconds at which the emulator was built: the `create_time` of its accounts.
    pub(super) started_secs: i64,
}

impl Shared {
    pub(super) fn new(world: World, config: EmulatorConfig) -> Self {
        let mut shared = Self {
            limiter: RateLimiter::new(config.rate_limit),
            registry: Mutex::new(Registry::default()),
            world,
            config,
            faults: Faults::default(),
            started_secs: 0,
        };
        shared.started_secs = shared.now_secs();
        shared
    }

    /// The emulator's time: its clock plus its offset.
    pub(super) fn now(&self) -> SystemTime {
        let now = self.config.clock.now();
        let offset = std::time::Duration::from_millis(self.config.clock_offset_ms.unsigned_abs());
        let moved = if self.config.clock_offset_ms >= 0 {
            now.checked_add(offset)
        } else {
            now.checked_sub(offset)
        };
        moved.unwrap_or(now)
    }

    pub(super) fn now_ms(&self) -> i64 {
        crate::clock::unix_millis(self.now())
    }

    pub(super) fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub(super) fn now_us(&self) -> i64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// The state; a poisoned lock is recovered (every change is applied whole, after all
    /// checks, so a panic cannot leave half of one behind).
    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
