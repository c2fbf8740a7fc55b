//! How results are printed: aligned tables for people, JSON for programs.

use std::time::{SystemTime, UNIX_EPOCH};

use gate_stp::{
    ClockSync,
    models::{StpGroup, StpGroupUser},
};
use serde::Serialize;

/// Printer chosen by `--json`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    pub(crate) fn groups(&self, groups: &[StpGroup]) {
        if self.json {
            return print_json(&groups);
        }
        let rows = groups
            .iter()
            .map(|g| {
                vec![
                    opt(g.id),
                    g.name.clone(),
                    opt(g.creator_id),
                    opt(g.create_time),
                ]
            })
            .collect::<Vec<_>>();
        print_table(&["ID", "NAME", "CREATOR", "CREATED"], &rows);
    }

    pub(crate) fn group(&self, group: &StpGroup) {
        self.groups(std::slice::from_ref(group));
    }

    pub(crate) fn users(&self, users: &[StpGroupUser]) {
        if self.json {
            return print_json(&users);
        }
        let rows = users
            .iter()
            .map(|u| vec![opt(u.user_id), opt(u.stp_id), opt(u.create_time)])
            .collect::<Vec<_>>();
        print_table(&["USER", "GROUP", "JOINED"], &rows);
    }

    pub(crate) fn clock(&self, sync: &ClockSync) {
        let ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default()
        };
        if self.json {
            return print_json(&serde_json::json!({
                "server_time_ms": ms(sync.server_time),
                "local_time_ms": ms(sync.local_time),
                "offset_ms": sync.offset_ms,
                "round_trip_ms": sync.round_trip.as_millis() as u64,
            }));
        }
        println!("server time:  {} ms since the epoch", ms(sync.server_time));
        println!("local time:   {} ms since the epoch", ms(sync.local_time));
        let direction = if sync.offset_ms >= 0 {
            "behind"
        } else {
            "ahead of"
        };
        println!(
            "offset:       {:+} ms (this machine is {} ms {direction} Gate)",
            sync.offset_ms,
            sync.offset_ms.unsigned_abs()
        );
        println!("round trip:   {} ms", sync.round_trip.as_millis());
    }
}

fn opt(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

/// Left-aligned columns separated by two spaces; `(none)` for an empty list.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
