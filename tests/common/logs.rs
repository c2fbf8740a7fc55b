//! An in-memory writer for `tracing_subscriber::fmt`, so tests can read what was logged.

use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing_subscriber::fmt::MakeWriter;

/// Everything written to it, shared by its clones.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// What was written so far, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

/// Installs, once per test binary, a global subscriber that keeps nothing (and the `log`
/// bridge with it), so that per-test captures see every event.
///
/// tracing caches, per call site, whether any subscriber wants it. With no global
/// subscriber, a call site first reached on another test's thread while no capture exists
/// can be cached as wanted by nobody, and a capture installed later on this thread misses
/// it (events lost only when tests run in parallel). A global registry wants every call
/// site, so the decision is left to each event's thread-local default.
pub fn install_global_registry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .try_init()
            .expect("no other global subscriber in this binary");
    });
}

/// Everything logged at `level` or above on the calling thread while the guard lives.
pub fn capture(level: tracing::Level) -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    install_global_registry();
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
