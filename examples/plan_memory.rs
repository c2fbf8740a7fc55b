//! Memory of a plan as a function of its size (issue 27: bounded input).
//!
//! For documents of N groups (names of 24 characters, three members each, half of them
//! live with one member different, the other half new), measures the peak heap in use while
//! the document is parsed, the plan computed and rendered as text and JSON, and divides by
//! N. The floor is the document's own text: what holding the input costs at the least.
//!
//! ```sh
//! cargo run --release --example plan_memory
//! ```
//!
//! The counts come from a counting global allocator (bytes requested, not pages), so they
//! are the same on every run and every machine of one pointer width.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

use gate_stp::desired::{
    self, DesiredState, Format, GroupInfo, LiveGroup, LiveState, MAX_GROUPS, Plan, SubAccount,
};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded to the system allocator with the caller's layout.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the pointer came from `alloc` with this layout.
        unsafe { System.dealloc(pointer, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MAIN: i64 = 10_000;

/// The document's JSON text and the live state it is planned against.
fn inputs(groups: usize) -> (String, LiveState) {
    let mut text = format!("{{\"main_user_id\": {MAIN}, \"group\": [");
    let mut live = Vec::new();
    let mut sub_accounts = Vec::new();
    for g in 0..groups {
        let members: Vec<i64> = (0..3).map(|m| MAIN + 1 + (g * 3 + m) as i64).collect();
        for &user_id in &members {
            sub_accounts.push(SubAccount {
                user_id,
                login_name: Some(format!("bot_{user_id}")),
            });
        }
        let name = format!("desk-{g:019}");
        if g > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "{{\"name\": \"{name}\", \"members\": [{}, {}, {}]}}",
            members[0], members[1], members[2]
        ));
        if g % 2 == 0 {
            live.push(LiveGroup::new(
                GroupInfo {
                    id: 100_000 + g as i64,
                    name,
                    creator_id: Some(MAIN),
                },
                [members[0], members[1]],
            ));
        }
    }
    text.push_str("]}");
    let mut live = LiveState {
        main_user_id: MAIN,
        sub_accounts,
        groups: live,
    };
    live.normalize();
    (text, live)
}

/// Peak heap above what was in use before, while parsing, planning and rendering.
fn measure(text: &str, live: &LiveState) -> usize {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let desired = DesiredState::parse(text, Format::Json, "bench.json").expect("a valid document");
    let plan = Plan::compute(live, &desired).expect("a plan");
    let rendered = desired::render_plan(&plan, Default::default());
    let json = plan.to_json_string();
    assert!(!rendered.is_empty() && !json.is_empty());
    drop((desired, plan, rendered, json));
    PEAK.load(Ordering::Relaxed) - before
}

fn main() {
    println!(
        "| groups | document | peak heap (parse, plan, render) | per group | ratio to the document |"
    );
    println!("|---|---|---|---|---|");
    let mut per_group = Vec::new();
    for groups in [1_000, 2_000, 5_000, MAX_GROUPS] {
        let (text, live) = inputs(groups);
        let peak = measure(&text, &live);
        per_group.push(peak / groups);
        println!(
            "| {groups} | {} KiB | {} KiB | {} B | {:.1}x |",
            text.len() / 1024,
            peak / 1024,
            peak / groups,
            peak as f64 / text.len() as f64
        );
    }
    let (low, high) = (
        per_group.iter().min().copied().unwrap_or(0),
        per_group.iter().max().copied().unwrap_or(0),
    );
    println!(
        "\nper group from {low} B to {high} B across a tenfold size range ({:.2}x): linear",
        high as f64 / low.max(1) as f64
    );
}
