//! Names a reviewer could misread: two group names that look alike (Unicode TR39
//! confusable skeletons: Latin `a` and Cyrillic `а`, `desk` and `desk` with a zero-width
//! space), and names that mix writing systems. A plan warns about them; it does not refuse
//! (a desk may well be named in two scripts on purpose).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use unicode_security::{MixedScript, skeleton};

use crate::text::Quoted;

/// A warning about group names in a plan: shown in every rendering of the plan, kept in its
/// JSON document (`warnings`), never a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NameWarning {
    /// Names that differ but look alike: they have the same UTS #39 skeleton. Ascending.
    Confusable {
        /// The names, two or more, ascending.
        names: Vec<String>,
    },
    /// A name that mixes scripts (it is not single-script under UTS #39: Latin with
    /// Cyrillic, say).
    MixedScripts {
        /// The name.
        name: String,
    },
}

impl fmt::Display for NameWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameWarning::Confusable { names } => {
                f.write_str("group names that look alike: ")?;
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}{}", Quoted(name), Spelled(name))?;
                }
                Ok(())
            }
            NameWarning::MixedScripts { name } => write!(
                f,
                "group name {}{} mixes scripts",
                Quoted(name),
                Spelled(name)
            ),
        }
    }
}

/// ` (non-ASCII: U+0430, U+200B)`: the characters a reader cannot tell apart by their look,
/// by code point (at most eight, then how many more); nothing for an ASCII name.
struct Spelled<'a>(&'a str);

impl fmt::Display for Spelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let others: Vec<char> = self.0.chars().filter(|c| !c.is_ascii()).collect();
        if others.is_empty() {
            return Ok(());
        }
        f.write_str(" (non-ASCII: ")?;
        for (i, c) in others.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "U+{:04X}", *c as u32)?;
        }
        if others.len() > SHOWN {
            write!(f, " and {} more", others.len() - SHOWN)?;
        }
        f.write_str(")")
    }
}

/// The warnings for a set of names (declared and live): every group of distinct names
/// sharing a skeleton, then every name that mixes scripts, each in ascending order.
pub(crate) fn name_warnings<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<NameWarning> {
    let names: BTreeSet<&str> = names.into_iter().collect();
    let mut by_skeleton: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for &name in &names {
        by_skeleton
            .entry(skeleton(name).collect())
            .or_default()
            .push(name);
    }
    let mut alike: Vec<Vec<&str>> = by_skeleton
        .into_values()
        .filter(|names| names.len() > 1)
        .collect();
    alike.sort();
    let mut warnings: Vec<NameWarning> = alike
        .into_iter()
        .map(|names| NameWarning::Confusable {
            names: names.into_iter().map(str::to_owned).collect(),
        })
        .collect();
    warnings.extend(
        names
            .iter()
            .filter(|name| !name.is_single_script())
            .map(|name| NameWarning::MixedScripts {
                name: (*name).to_owned(),
            }),
    );
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_and_mixed_scripts_are_warned_about() {
        // Latin "desk" and "desk" with a Cyrillic е; "desk" with a zero-width space.
        let warnings = name_warnings(["desk", "d\u{435}sk", "desk\u{200b}", "arb", "desk"]);
        assert_eq!(
            warnings,
            vec![
                NameWarning::Confusable {
                    names: vec!["desk".into(), "desk\u{200b}".into(), "d\u{435}sk".into()],
                },
                NameWarning::MixedScripts {
                    name: "d\u{435}sk".into()
                },
            ]
        );
        assert_eq!(
            warnings[0].to_string(),
            "group names that look alike: \"desk\", \"desk\\u{200b}\" (non-ASCII: U+200B), \"d\u{435}sk\" (non-ASCII: U+0435)"
        );
        assert_eq!(
            warnings[1].to_string(),
            "group name \"d\u{435}sk\" (non-ASCII: U+0435) mixes scripts"
        );
    }

    #[test]
    fn distinct_single_script_names_give_no_warning() {
        for names in [
            vec!["desk-1", "desk-2", "arb"],
            vec!["取引", "デスク", "desk"],
            vec!["Déjà vu", "déjà-vu"],
            vec![],
        ] {
            assert_eq!(name_warnings(names.clone()), vec![], "{names:?}");
        }
        // The same name twice (two live groups of one name) is not a look-alike pair.
        assert_eq!(name_warnings(["desk", "desk"]), vec![]);
    }

    #[test]
    fn every_plan_rendering_carries_the_warnings_and_a_saved_plan_recomputes_them() {
        use crate::desired::{
            DesiredGroup, DesiredState, GroupInfo, LiveGroup, LiveState, Plan, render_plan,
            render_plan_markdown,
        };
        let live = LiveState {
            main_user_id: 1,
            sub_accounts: vec![],
            groups: vec![LiveGroup::new(
                GroupInfo {
                    id: 7,
                    name: "desk".into(),
                    creator_id: Some(1),
                },
                [],
            )],
        };
        let desired = DesiredState {
            main_user_id: 1,
            groups: vec![DesiredGroup::new("d\u{435}sk", vec![])],
        };
        let plan = Plan::compute(&live, &desired).unwrap();
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
        let text = render_plan(&plan, Default::default());
        assert!(
            text.contains("\nWarning: group names that look alike: \"desk\", \"d\u{435}sk\""),
            "{text}"
        );
        let markdown = render_plan_markdown(&plan);
        assert!(markdown.contains("**Warnings:**"), "{markdown}");
        assert!(markdown.contains("mixes scripts"), "{markdown}");
        // A saved plan whose warnings were deleted by hand gets them back on reading.
        let mut edited: serde_json::Value = serde_json::from_str(&plan.to_json_string()).unwrap();
        edited.as_object_mut().unwrap().remove("warnings");
        let read = Plan::from_json(&edited.to_string(), "p.json").unwrap();
        assert_eq!(read.warnings, plan.warnings);
        // Without look-alikes, no section.
        let desired = DesiredState {
            main_user_id: 1,
            groups: vec![DesiredGroup::new("desk", vec![])],
        };
        let plan = Plan::compute(&live, &desired).unwrap();
        assert!(plan.warnings.is_empty());
        assert!(!render_plan(&plan, Default::default()).contains("Warning"));
        assert!(!render_plan_markdown(&plan).contains("Warning"));
    }

    #[test]
    fn several_look_alike_sets_are_each_reported_in_order() {
        let warnings = name_warnings(["b\u{430}r", "bar", "fo\u{43e}", "foo"]);
        let sets: Vec<_> = warnings
            .iter()
            .filter_map(|w| match w {
                NameWarning::Confusable { names } => Some(names.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            sets,
            vec![
                vec!["bar".to_owned(), "b\u{430}r".to_owned()],
                vec!["foo".to_owned(), "fo\u{43e}".to_owned()],
            ]
        );
        assert_eq!(warnings.len(), 4);
        let eight = "\u{e9}".repeat(8);
        assert!(!Spelled(&eight).to_string().contains("more"));
        let many = "\u{e9}".repeat(10);
        assert_eq!(
            Spelled(&many).to_string(),
            " (non-ASCII: U+00E9, U+00E9, U+00E9, U+00E9, U+00E9, U+00E9, U+00E9, U+00E9 and 2 more)"
        );
    }
}
