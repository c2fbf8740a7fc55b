//! The large-account benchmark: an account of G groups × M members managed as code against
//! the emulator with Gate's rate limits on, phase by phase, each phase against its floor.
//!
//! ```text
//! cargo run --release --features mock,desired-toml --example large_account -- \
//!     [--groups 200] [--members 10] [--offset 3.6]
//! ```
//!
//! The world: one main account and G × M sub-accounts. The phases, in the order an operator
//! meets them:
//!
//! 1. **apply from empty**: read the (empty) account, plan the G groups, apply the plan;
//! 2. **export**: read the whole live state (`read_live`);
//! 3. **plan**: read it again and plan the same file (nothing to do);
//! 4. **reshuffle**: a file moving 10 % of the members to the next group, read, plan and
//!    applied.
//!
//! Each phase starts `--offset` seconds into a fresh rate-limit window (its requests share
//! no window with the previous phase's). For each it prints the wall time; the **floor**:
//! per endpoint, the time until the window in which its last request may go begins, given
//! that endpoint's limit, its request count in the phase and the start offset, and the
//! largest over the endpoints (windows are counted per endpoint, so a phase cannot end
//! before its busiest endpoint's last window opens), reads first and then writes (an apply
//! plans its writes from its read); their ratio; the 429 answers counted
//! by a layer around the emulator's routes; and the process's peak memory (`VmHWM`, the
//! emulator included: it runs in this process).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant, UNIX_EPOCH},
};

use axum::{extract::Request, middleware::Next, response::Response};
use gate_stp::{
    Client, Credentials, RetryPolicy,
    desired::{self, ApplyOptions, DesiredGroup, DesiredState, Member, Progress, Proposal},
    mock::{Emulator, EmulatorConfig, RateLimitConfig, World},
};

const MAIN_USER: i64 = 100_000;
const KEY: &str = "large-account-key";
const SECRET: &str = "large-account-secret";

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Answers per (endpoint, status): the emulator's side of the story.
#[derive(Debug, Default, Clone)]
struct Answers(Arc<Mutex<BTreeMap<(String, u16), u32>>>);

impl Answers {
    fn snapshot(&self) -> BTreeMap<(String, u16), u32> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `METHOD /path` with numeric path segments replaced by `{id}`: one key per endpoint.
fn endpoint(request: &Request) -> String {
    let path: Vec<&str> = request
        .uri()
        .path()
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    format!("{} {}", request.method(), path.join("/"))
}

struct Settings {
    groups: usize,
    members: usize,
    offset: Duration,
}

fn settings() -> Result<Settings, Failure> {
    let mut settings = Settings {
        groups: 200,
        members: 10,
        offset: Duration::from_millis(3_600),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--groups" => settings.groups = value.parse()?,
            "--members" => settings.members = value.parse()?,
            "--offset" => settings.offset = Duration::try_from_secs_f64(value.parse()?)?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if settings.groups == 0 || settings.members == 0 {
        return Err("--groups and --members must be at least 1".into());
    }
    Ok(settings)
}

/// One main account with a key and `count` sub-accounts, as a world file.
fn world(count: usize) -> Result<World, Failure> {
    let mut text = format!(
        "[[accounts]]\nuser_id = {MAIN_USER}\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n\
         login_name = \"largemain\"\n"
    );
    for n in 1..=count {
        let id = MAIN_USER + n as i64;
        text.push_str(&format!(
            "[[accounts]]\nuser_id = {id}\nmain = {MAIN_USER}\nlogin_name = \"sub{id}\"\n"
        ));
    }
    Ok(World::from_toml_str(&text)?)
}

/// G groups of M consecutive sub-accounts each.
fn desired_state(settings: &Settings) -> DesiredState {
    let groups = (0..settings.groups)
        .map(|g| {
            let members = (0..settings.members)
                .map(|m| Member::Id(MAIN_USER + 1 + (g * settings.members + m) as i64))
                .collect();
            DesiredGroup::new(format!("desk-{g:04}"), members)
        })
        .collect();
    DesiredState {
        main_user_id: MAIN_USER,
        groups,
    }
}

/// Every tenth member (10 %) moves to the next group (the last group's to the first).
fn reshuffled(state: &DesiredState) -> DesiredState {
    let count = state.groups.len();
    let mut moved: Vec<Vec<Member>> = vec![Vec::new(); count];
    let mut next = state.clone();
    let mut position = 0usize;
    for (g, group) in next.groups.iter_mut().enumerate() {
        group.members.retain(|member| {
            position += 1;
            let moves = position.is_multiple_of(10);
            if moves {
                moved[(g + 1) % count].push(member.clone());
            }
            !moves
        });
    }
    for (group, arrivals) in next.groups.iter_mut().zip(moved) {
        group.members.extend(arrivals);
    }
    next
}

/// The one call into the apply API: checks a proposal (no removal limit: the reshuffle
/// removes 10 % of the members) and sends its steps.
async fn apply_plan(client: &Client, proposal: Proposal) -> Result<(), Failure> {
    // A benchmark of whole-account jobs: no limit on removals or creates.
    let options = ApplyOptions::default()
        .with_max_removals(usize::MAX)
        .with_max_creates(usize::MAX);
    let checked = proposal.check(options)?;
    checked.send(client, &mut |_: Progress<'_>| {}).await?;
    Ok(())
}

/// Peak resident memory of this process so far, in KiB (Linux; `None` elsewhere).
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The floor of a phase that reads, then writes what it planned from the read: its reads'
/// floor ([`endpoints_floor`] from `offset`), then its writes' floor from where the reads
/// ended. Within the writes, a step waits only for the steps it depends on (an add for its
/// group's create, a moved member's add for its removal), a round trip, not a window, so
/// the write endpoints are counted side by side: the scheduler's floor.
fn floor(
    counts: &BTreeMap<String, u32>,
    limit_of: impl Fn(&str) -> u32 + Copy,
    window: Duration,
    offset: Duration,
) -> Duration {
    let (reads, writes): (BTreeMap<String, u32>, BTreeMap<String, u32>) = counts
        .iter()
        .map(|(endpoint, count)| (endpoint.clone(), *count))
        .partition(|(endpoint, _)| endpoint.starts_with("GET "));
    let reading = endpoints_floor(&reads, limit_of, window, offset);
    let window_nanos = window.as_nanos().max(1);
    let writes_offset = (offset + reading).as_nanos() % window_nanos;
    let writes_offset = Duration::from_nanos(u64::try_from(writes_offset).unwrap_or(0));
    reading + endpoints_floor(&writes, limit_of, window, writes_offset)
}

/// Per endpoint, `count` requests at `limit` per `window`, started `offset` into a window,
/// can finish no earlier than the start of the window holding the last of them; the
/// largest over the endpoints.
fn endpoints_floor(
    counts: &BTreeMap<String, u32>,
    limit_of: impl Fn(&str) -> u32,
    window: Duration,
    offset: Duration,
) -> Duration {
    counts
        .iter()
        .map(|(endpoint, &count)| {
            let limit = limit_of(endpoint).max(1);
            let windows = count.div_ceil(limit);
            if windows <= 1 {
                Duration::ZERO
            } else {
                window.saturating_sub(offset) + window * (windows - 2)
            }
        })
        .max()
        .unwrap_or_default()
}

struct Bench {
    client: Client,
    emulator: Emulator,
    answers: Answers,
    limit: RateLimitConfig,
    offset: Duration,
}

impl Bench {
    /// Sleeps until `offset` into the next window by the emulator's clock.
    async fn align(&self) {
        let window_ms = self.limit.window.as_millis() as u64;
        let now_ms = self
            .emulator
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let into = now_ms % window_ms;
        let wait = Duration::from_millis(window_ms - into) + self.offset;
        tokio::time::sleep(wait).await;
    }

    /// Runs one phase from a fresh window and prints its line of the table.
    async fn phase<T, F>(&self, name: &str, run: F) -> Result<T, Failure>
    where
        F: std::future::Future<Output = Result<T, Failure>>,
    {
        self.align().await;
        let before = self.answers.snapshot();
        let started = Instant::now();
        let out = run.await?;
        let took = started.elapsed();
        let after = self.answers.snapshot();
        let mut per_endpoint: BTreeMap<String, u32> = BTreeMap::new();
        let mut refused = 0;
        for ((endpoint, status), count) in &after {
            let delta = count - before.get(&(endpoint.clone(), *status)).unwrap_or(&0);
            *per_endpoint.entry(endpoint.clone()).or_default() += delta;
            if *status == 429 {
                refused += delta;
            }
        }
        per_endpoint.retain(|_, count| *count > 0);
        let limit = self.limit;
        // The emulator's limits, as Gate documents them: 80 on the sub-account endpoint.
        let limit_of = |endpoint: &str| {
            if endpoint.ends_with("/sub_accounts") {
                limit.requests.min(80)
            } else {
                limit.requests
            }
        };
        let floor = floor(&per_endpoint, limit_of, limit.window, self.offset);
        let ratio = if floor.is_zero() {
            "-".to_owned()
        } else {
            format!("{:.3}", took.as_secs_f64() / floor.as_secs_f64())
        };
        let requests: Vec<String> = per_endpoint
            .iter()
            .map(|(endpoint, count)| format!("{endpoint} {count}"))
            .collect();
        println!(
            "| {name} | {:.2} s | {:.2} s | {ratio} | {refused} | {} MiB | {} |",
            took.as_secs_f64(),
            floor.as_secs_f64(),
            peak_memory_kib().map_or(0, |kib| kib / 1024),
            requests.join(", "),
        );
        Ok(out)
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let settings = settings()?;
    let config = EmulatorConfig::default();
    let limit = config
        .rate_limit_config()
        .ok_or("the emulator's rate limit is off")?;
    let emulator = Emulator::new(world(settings.groups * settings.members)?, config);
    let answers = Answers::default();
    let counted = answers.clone();
    let router = emulator.router().layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let counted = counted.clone();
            async move {
                let key = endpoint(&request);
                let response: Response = next.run(request).await;
                let status = response.status().as_u16();
                *counted
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry((key, status))
                    .or_default() += 1;
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    // As `gate-stp plan/apply` builds it: pacing on, idempotent writes retried.
    let client = Client::builder()
        .base_url(format!("http://{addr}/api/v4"))
        .credentials(Credentials::new(KEY, SECRET)?)
        .pace_rate_limits(true)
        .retry_policy(RetryPolicy::default().retry_idempotent_writes(true))
        .build()?;
    let bench = Bench {
        client,
        emulator,
        answers,
        limit,
        offset: settings.offset,
    };

    let desired = desired_state(&settings);
    println!(
        "{} groups x {} members, {} requests per {:?} per endpoint (80 for /sub_accounts), \
         phases start {:?} into a window\n",
        settings.groups, settings.members, limit.requests, limit.window, settings.offset
    );
    println!("| phase | wall | floor | ratio | 429 | peak memory | requests |");
    println!("|---|---|---|---|---|---|---|");
    let client = &bench.client;
    bench
        .phase("apply from empty", async {
            apply_plan(client, Proposal::for_desired(client, &desired).await?).await
        })
        .await?;
    let live = bench
        .phase("export", async {
            Ok(desired::read_live(client, None).await?)
        })
        .await?;
    let proposal = bench
        .phase("plan", async {
            Ok(Proposal::for_desired(client, &desired).await?)
        })
        .await?;
    if !proposal.plan().is_empty() {
        return Err("the plan after the apply is not empty".into());
    }
    let shuffled = reshuffled(&desired);
    bench
        .phase("reshuffle", async {
            apply_plan(client, Proposal::for_desired(client, &shuffled).await?).await
        })
        .await?;
    // Outside the timing: the reshuffle reached the file.
    let after = Proposal::for_desired(client, &shuffled).await?;
    if !after.plan().is_empty() {
        return Err("the plan after the reshuffle is not empty".into());
    }
    let memberships: usize = live.groups.iter().map(|g| g.members.len()).sum();
    println!(
        "\nexported {} groups, {memberships} memberships",
        live.groups.len()
    );
    Ok(())
}
