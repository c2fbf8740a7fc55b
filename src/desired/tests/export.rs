//! The file export writes from a live state.

use super::*;

#[test]
fn export_plans_empty() {
    let state = live();
    let exported = DesiredState::from_live(&state);
    assert_eq!(exported.groups[0].id, Some(100001));
    assert_eq!(
        exported.groups[0].members,
        vec![Member::Login("bot-1".into()), Member::Id(10003)]
    );
    let reparsed =
        DesiredState::parse(&exported.to_json_string(), Format::Json, "export.json").unwrap();
    assert!(Plan::compute(&state, &reparsed).unwrap().is_empty());
}

/// Export writes a login name only where it names that one sub-account, and never for the
/// main account: a login shared by two sub-accounts would be refused as ambiguous when the
/// file is planned, and the main account is declared by its id.
#[test]
fn export_names_a_member_by_login_only_when_the_login_is_its_alone() {
    let mut state = LiveState {
        main_user_id: MAIN,
        sub_accounts: vec![
            // Gate does not list the main account among its sub-accounts; if it ever did
            // with a login name, the file must still say 10000.
            sub(MAIN, Some("main-login")),
            sub(10001, Some("bot")),
            sub(10002, Some("twin")),
            sub(10003, Some("twin")),
            sub(10004, None),
        ],
        groups: vec![
            live_group(100005, "g", &[MAIN, 10001, 10002, 10003, 10004]),
            live_group(100003, "f", &[]),
        ],
    };
    state.normalize();
    let exported = DesiredState::from_live(&state);
    let expected = desired(vec![
        DesiredGroup {
            id: Some(100003),
            ..group("f", vec![])
        },
        DesiredGroup {
            id: Some(100005),
            ..group(
                "g",
                vec![
                    Member::Id(MAIN),
                    Member::Login("bot".into()),
                    Member::Id(10002),
                    Member::Id(10003),
                    Member::Id(10004),
                ],
            )
        },
    ]);
    assert_eq!(exported, expected);
    assert!(Plan::compute(&state, &exported).unwrap().is_empty());
}
