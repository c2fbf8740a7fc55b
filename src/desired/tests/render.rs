//! The plan as text for a terminal (with and without colour) and as a Markdown comment:
//! each section exactly when the plan needs it, names from Gate escaped.

use super::*;

#[test]
fn the_rendered_plan_is_terraform_like_and_plain_without_colour() {
    let plan = Plan::compute(&live(), &edited()).unwrap();
    let text = render_plan(&plan, RenderOptions::default());
    let expected_lines = [
        "  ~ group \"desk\" (id 100001)",
        "      - 10003",
        "      + 10002 (bot-2)",
        "  + group \"arb\" (new)",
        "      + 10000",
        "      + 10004",
        "    group \"legacy\" (id 100002): 1 member",
        "Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).",
    ];
    for line in expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains('\u{1b}'));
    let coloured = render_plan(&plan, RenderOptions { colour: true });
    assert!(coloured.contains("\u{1b}[32m+\u{1b}[0m"));
}

/// The Markdown comment of a plan, written out by hand: each section appears exactly when
/// the plan has what it describes (a diff block for changed or unchanged declared groups,
/// the unmanaged list, the resting-orders note only when members leave, "No changes" only
/// for an empty plan).
#[test]
fn the_markdown_plan_has_each_section_exactly_when_the_plan_needs_it() {
    let state = live();
    let fingerprint_span = |plan: &Plan| format!("`{}`", &plan.live_fingerprint[..12]);

    // Removals, a create and an unmanaged group: every section but "No changes".
    let plan = Plan::compute(&state, &edited()).unwrap();
    let expected = format!(
        "### STP plan: main account 10000, live state {}\n\
         \n\
         ```diff\n\
         ~ group \"desk\" (id 100001)\n\
         -     10003\n\
         +     10002 (bot-2)\n\
         + group \"arb\" (new)\n\
         +     10000\n\
         +     10004\n\
         ```\n\
         \n\
         Not in the file (unmanaged, never changed):\n\
         \n\
         - group `legacy` (id 100002): 1 member\n\
         \n\
         > Membership changes apply to new orders; resting orders keep the group they were placed with.\n\
         \n\
         **Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).**\n",
        fingerprint_span(&plan)
    );
    assert_eq!(render_plan_markdown(&plan), expected);

    // An addition alone, every live group declared: no unmanaged list, no note.
    let add_only = desired(vec![
        group(
            "desk",
            vec![
                Member::Login("bot-1".into()),
                Member::Id(10003),
                Member::Login("bot-2".into()),
            ],
        ),
        group("legacy", vec![Member::Id(10005)]),
    ]);
    let plan = Plan::compute(&state, &add_only).unwrap();
    let expected = format!(
        "### STP plan: main account 10000, live state {}\n\
         \n\
         ```diff\n\
         ~ group \"desk\" (id 100001)\n\
         +     10002 (bot-2)\n\
         \x20 group \"legacy\" (id 100002): unchanged, 1 member\n\
         ```\n\
         \n\
         **Plan: 0 groups to create, 1 member to add, 0 to remove (1 request).**\n",
        fingerprint_span(&plan)
    );
    assert_eq!(render_plan_markdown(&plan), expected);

    // Nothing declared: no diff block at all, both live groups unmanaged, "No changes".
    let plan = Plan::compute(&state, &desired(vec![])).unwrap();
    let expected = format!(
        "### STP plan: main account 10000, live state {}\n\
         \n\
         Not in the file (unmanaged, never changed):\n\
         \n\
         - group `desk` (id 100001): 2 members\n\
         - group `legacy` (id 100002): 1 member\n\
         \n\
         No changes: the live STP groups match the file.\n\
         \n\
         **Plan: 0 groups to create, 0 members to add, 0 to remove (0 requests).**\n",
        fingerprint_span(&plan)
    );
    assert_eq!(render_plan_markdown(&plan), expected);
}

/// The terminal plan written out whole for the three plans of the Markdown test above: the
/// unmanaged list, the resting-orders note and "No changes" appear exactly when the plan
/// needs them, and colour wraps only the markers and the summary.
#[test]
fn the_rendered_plan_has_each_section_exactly_when_the_plan_needs_it() {
    let state = live();
    let header = |plan: &Plan| {
        format!(
            "STP groups of main account 10000 (live state {})\n\n",
            &plan.live_fingerprint[..12]
        )
    };

    let plan = Plan::compute(&state, &edited()).unwrap();
    let body = "  ~ group \"desk\" (id 100001)\n\
                \x20     - 10003\n\
                \x20     + 10002 (bot-2)\n\
                \x20 + group \"arb\" (new)\n\
                \x20     + 10000\n\
                \x20     + 10004\n\
                \n\
                Not in the file (unmanaged, never changed):\n\
                \x20   group \"legacy\" (id 100002): 1 member\n\
                \n\
                Note: membership changes apply to new orders; resting orders keep the group they were placed with.\n\
                \n\
                Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).\n";
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan) + body
    );
    // In colour: `+` green, `-` red, `~` yellow, the summary bold; nothing else changes.
    let coloured = body
        .replace("~ group", "\u{1b}[33m~\u{1b}[0m group")
        .replace("+ ", "\u{1b}[32m+\u{1b}[0m ")
        .replace("- 10003", "\u{1b}[31m-\u{1b}[0m 10003")
        .replace(
            "Plan: 1 group to create, 3 members to add, 1 to remove (4 requests).",
            "\u{1b}[1mPlan: 1 group to create, 3 members to add, 1 to remove (4 requests).\u{1b}[0m",
        );
    assert_eq!(
        render_plan(&plan, RenderOptions { colour: true }),
        header(&plan) + &coloured
    );

    let add_only = desired(vec![
        group(
            "desk",
            vec![
                Member::Login("bot-1".into()),
                Member::Id(10003),
                Member::Login("bot-2".into()),
            ],
        ),
        group("legacy", vec![Member::Id(10005)]),
    ]);
    let plan = Plan::compute(&state, &add_only).unwrap();
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan)
            + "  ~ group \"desk\" (id 100001)\n\
               \x20     + 10002 (bot-2)\n\
               \x20   group \"legacy\" (id 100002): unchanged, 1 member\n\
               \n\
               Plan: 0 groups to create, 1 member to add, 0 to remove (1 request).\n"
    );

    let plan = Plan::compute(&state, &desired(vec![])).unwrap();
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan)
            + "Not in the file (unmanaged, never changed):\n\
               \x20   group \"desk\" (id 100001): 2 members\n\
               \x20   group \"legacy\" (id 100002): 1 member\n\
               \n\
               No changes: the live STP groups match the file.\n\
               \n\
               Plan: 0 groups to create, 0 members to add, 0 to remove (0 requests).\n"
    );

    // Nothing live, nothing declared: one blank line between the sections, as everywhere.
    let nothing = LiveState {
        main_user_id: 10_000,
        sub_accounts: Vec::new(),
        groups: Vec::new(),
    };
    let plan = Plan::compute(&nothing, &desired(vec![])).unwrap();
    assert_eq!(
        render_plan(&plan, RenderOptions::default()),
        header(&plan)
            + "No changes: the live STP groups match the file.\n\
               \n\
               Plan: 0 groups to create, 0 members to add, 0 to remove (0 requests).\n"
    );
}

#[test]
fn names_from_gate_are_escaped_in_the_rendered_plan() {
    let mut state = live();
    state
        .groups
        .push(live_group(100009, "evil\u{1b}]0;owned\u{7}\u{202e}", &[]));
    state.sub_accounts[0].login_name = Some("bot\r\nPlan: 0 to add".into());
    state.normalize();
    // 10001 (whose login name tries to forge a summary line) moves from "desk" to "arb".
    let file = desired(vec![
        group("desk", vec![Member::Id(10003)]),
        group("arb", vec![Member::Id(10001)]),
    ]);
    let plan = Plan::compute(&state, &file).unwrap();
    let text = render_plan(&plan, RenderOptions::default());
    assert!(
        !text.contains(|c| c != '\n' && crate::text::needs_escape(c)),
        "{text}"
    );
    assert!(
        text.contains("group \"evil\\x1b]0;owned\\x07\\u{202e}\" (id 100009)"),
        "{text}"
    );
    assert!(
        text.contains("10001 (bot\\x0d\\x0aPlan: 0 to add)"),
        "{text}"
    );
    let json = plan.to_json_string();
    assert!(
        !json.contains(|c| c != '\n' && crate::text::needs_escape(c)),
        "{json}"
    );
    assert_eq!(Plan::from_json(&json, "p").unwrap(), plan);
}
