//! Starting, serving and stopping an emulator.

use std::{
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::Router;
use tokio::{
    net::{TcpListener, ToSocketAddrs},
    sync::oneshot,
    task::JoinHandle,
};

use super::{
    config::EmulatorConfig,
    faults::{Fault, InvalidFault},
    server,
    shared::Shared,
    world::World,
};
use crate::models::{StpGroup, StpGroupUser};

/// How long [`RunningEmulator::shutdown`] lets requests in flight finish before it aborts
/// the server.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An emulated Gate: a world of accounts, its STP groups, and the HTTP routes serving them.
///
/// Cheap to clone; clones share the same state. [`Emulator::start`] and [`Emulator::bind`]
/// are the usual entry points; [`Emulator::router`] embeds it in your own axum server and
/// [`Emulator::serve`] runs it until a future completes.
#[derive(Debug, Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    /// An emulator that is not serving yet.
    pub fn new(world: World, config: EmulatorConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(world, config)),
        }
    }

    /// Serves a new emulator on a free port of `127.0.0.1`, in a background task.
    pub async fn start(world: World, config: EmulatorConfig) -> io::Result<RunningEmulator> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), world, config).await
    }

    /// Serves a new emulator on `addr`, in a background task.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        world: World,
        config: EmulatorConfig,
    ) -> io::Result<RunningEmulator> {
        let listener = TcpListener::bind(addr).await?;
        Self::new(world, config).spawn(listener)
    }

    /// The routes (`/api/v4/...`), sharing this emulator's state, for embedding. Serve them
    /// with `into_make_service_with_connect_info::<SocketAddr>()` to have unauthenticated
    /// requests rate-limited per client address.
    pub fn router(&self) -> Router {
        server::router(Arc::clone(&self.shared))
    }

    /// Serves on `listener` until `shutdown` completes, then lets requests in flight finish.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let service = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(target: "gate_stp::mock", %addr, "Gate STP emulator listening");
        }
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// The accounts.
    pub fn world(&self) -> &World {
        &self.shared.world
    }

    /// The emulator's time: its clock plus its offset.
    pub fn now(&self) -> SystemTime {
        self.shared.now()
    }

    /// A snapshot of every group, ordered by id.
    pub fn groups(&self) -> Vec<StpGroup> {
        self.shared.registry().groups()
    }

    /// A snapshot of a group's member user ids, ascending; `None` if there is no such group.
    pub fn members(&self, stp_id: i64) -> Option<Vec<i64>> {
        self.memberships(stp_id)
            .map(|members| members.iter().filter_map(|m| m.user_id).collect())
    }

    /// A snapshot of a group's members as the API returns them, ordered by user id; `None`
    /// if there is no such group.
    pub fn memberships(&self, stp_id: i64) -> Option<Vec<StpGroupUser>> {
        self.shared.registry().members(stp_id)
    }

    /// Queues a fault: the `nth` request of its operation from now misbehaves (see
    /// [`FaultKind`](super::FaultKind)). Refused, with nothing queued, for an unknown operationId, `nth` 0
    /// or a status that is not an error.
    pub fn inject_fault(&self, fault: Fault) -> Result<(), InvalidFault> {
        self.shared.faults.inject(fault)
    }

    /// Number of injected faults that have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.pending()
    }

    fn spawn(self, listener: TcpListener) -> io::Result<RunningEmulator> {
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.clone().serve(listener, async {
            // A dropped sender also stops the server.
            let _ = stopped.await;
        }));
        Ok(RunningEmulator {
            emulator: self,
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// Builds an emulator's routes: `Emulator::new(world, config).router()`.
pub fn router(world: World, config: EmulatorConfig) -> Router {
    Emulator::new(world, config).router()
}

/// Serves a new emulator on `listener` until `shutdown` completes (for a CLI: pass
/// `tokio::signal::ctrl_c()` mapped to `()`).
pub async fn serve<F>(
    listener: TcpListener,
    world: World,
    config: EmulatorConfig,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    Emulator::new(world, config).serve(listener, shutdown).await
}

/// An emulator serving in a background task; stopped by [`shutdown`](Self::shutdown)
/// (graceful: it returns once the requests in flight are answered) or by dropping it
/// (without waiting: it stops listening at once, and each request already being read is
/// still answered by its connection's own task).
#[derive(Debug)]
pub struct RunningEmulator {
    emulator: Emulator,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningEmulator {
    /// The base URL for a client: `http://127.0.0.1:PORT/api/v4` (a wildcard listen
    /// address is replaced by loopback).
    pub fn base_url(&self) -> String {
        let mut addr = self.local_addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("http://{addr}/api/v4")
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The emulator being served (state snapshots, world, time).
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// A snapshot of every group, ordered by id.
    pub fn groups(&self) -> Vec<StpGroup> {
        self.emulator.groups()
    }

    /// A snapshot of a group's member user ids, ascending; `None` if there is no such group.
    pub fn members(&self, stp_id: i64) -> Option<Vec<i64>> {
        self.emulator.members(stp_id)
    }

    /// A snapshot of a group's members as the API returns them; `None` if there is no such
    /// group.
    pub fn memberships(&self, stp_id: i64) -> Option<Vec<StpGroupUser>> {
        self.emulator.memberships(stp_id)
    }

    /// Queues a fault (see [`Emulator::inject_fault`]).
    pub fn inject_fault(&self, fault: Fault) -> Result<(), InvalidFault> {
        self.emulator.inject_fault(fault)
    }

    /// Number of injected faults that have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.emulator.pending_faults()
    }

    /// Stops accepting connections, lets requests in flight finish (at most
    /// [`SHUTDOWN_GRACE`]), and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Err(error))) => {
                    tracing::warn!(target: "gate_stp::mock", %error, "emulator stopped with an error");
                }
                Ok(_) => {}
                Err(_) => {
                    task.abort();
                    let _ = task.await;
                }
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
