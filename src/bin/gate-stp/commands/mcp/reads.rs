//! The tools that read: `account`, `list_groups`, `list_members` and `export`, each
//! answer paged (`paging`) and its text escaped.

use gate_stp::desired::{self, DesiredState, StpAdmin};

use super::{
    Answer, StpServer,
    errors::ToolError,
    paging::{self, Page},
    tools::{
        self, AccountOut, ExportArgs, ExportOut, GroupOut, GroupsOut, ListGroupsArgs,
        ListMembersArgs, MemberOut, MembersOut, SubAccountOut,
    },
};
use crate::output::plural;

impl StpServer {
    pub(super) async fn account(&self) -> Result<Answer, ToolError> {
        let client = &self.inner.client;
        let main_user_id = client.key_user_id().await.map_err(ToolError::client)?;
        let subs = client.sub_accounts().await.map_err(ToolError::client)?;
        let mut text = if subs.is_empty() {
            format!("Main account {main_user_id}; no sub-accounts.")
        } else {
            format!(
                "Main account {main_user_id}; {}:",
                plural(subs.len(), "sub-account")
            )
        };
        for sub in &subs {
            text.push_str(&format!(
                "\n- {} {}",
                sub.user_id,
                login(sub.login_name.as_deref())
            ));
        }
        let out = AccountOut {
            main_user_id,
            sub_accounts: subs
                .into_iter()
                .map(|sub| SubAccountOut {
                    user_id: sub.user_id,
                    login_name: sub.login_name,
                })
                .collect(),
        };
        Answer::new(text, &out)
    }

    pub(super) async fn list_groups(&self, args: ListGroupsArgs) -> Result<Answer, ToolError> {
        let page = page_of(&args);
        let name = args.name;
        let mut request = self.inner.client.list_groups();
        if let Some(name) = &name {
            request = request.name(name.clone());
        }
        let groups = request.await.map_err(ToolError::client)?.into_inner();
        let total = groups.len();
        let groups: Vec<GroupOut> = groups
            .into_iter()
            .map(|group| GroupOut {
                id: group.id,
                name: group.name,
                creator_id: group.creator_id,
                created_at: group.create_time.map(crate::output::iso8601),
            })
            .collect();
        let (groups, next_cursor) = one_page(tools::LIST_GROUPS, groups, page)?;
        let mut text = match (&name, total) {
            (None, 0) => "No STP groups.".to_owned(),
            (Some(name), 0) => format!("No STP group matches {}.", desired::quoted(name)),
            (_, total) => format!("{}:", counted(page, groups.len(), total, "STP group")),
        };
        for group in &groups {
            text.push_str(&format!(
                "\n- id {} name {} creator {} created {}",
                optional(group.id),
                desired::quoted(&group.name),
                optional(group.creator_id),
                group.created_at.as_deref().unwrap_or("-"),
            ));
        }
        text.push_str(&paging::more_line(
            tools::LIST_GROUPS,
            total,
            next_cursor.as_deref(),
        ));
        Answer::new(
            text,
            &GroupsOut {
                total,
                groups,
                next_cursor,
            },
        )
    }

    pub(super) async fn list_members(&self, args: &ListMembersArgs) -> Result<Answer, ToolError> {
        let (stp_id, page) = (args.stp_id, page_of(args));
        let client = &self.inner.client;
        let users = client
            .list_users(stp_id)
            .await
            .map_err(ToolError::client)?
            .into_inner();
        // Login names are a courtesy: members are listed even if this read fails.
        let subs = client.sub_accounts().await.unwrap_or_default();
        let login_of = |user_id: Option<i64>| {
            subs.iter()
                .find(|sub| Some(sub.user_id) == user_id)
                .and_then(|sub| sub.login_name.clone())
        };
        let total = users.len();
        let members: Vec<MemberOut> = users
            .into_iter()
            .map(|user| MemberOut {
                user_id: user.user_id,
                login_name: login_of(user.user_id),
                joined_at: user.create_time.map(crate::output::iso8601),
            })
            .collect();
        let (members, next_cursor) = one_page(tools::LIST_MEMBERS, members, page)?;
        let mut text = if total == 0 {
            format!("Group {stp_id} has no members.")
        } else {
            format!(
                "Group {stp_id}: {}:",
                counted(page, members.len(), total, "member")
            )
        };
        for member in &members {
            text.push_str(&format!(
                "\n- {} {}",
                optional(member.user_id),
                login(member.login_name.as_deref())
            ));
        }
        text.push_str(&paging::more_line(
            tools::LIST_MEMBERS,
            total,
            next_cursor.as_deref(),
        ));
        Answer::new(
            text,
            &MembersOut {
                stp_id,
                total,
                members,
                next_cursor,
            },
        )
    }

    pub(super) async fn export(&self, args: &ExportArgs) -> Result<Answer, ToolError> {
        let page = page_of(args);
        let live = desired::read_live(&self.inner.client, None)
            .await
            .map_err(ToolError::read)?;
        let mut state = DesiredState::from_live(&live);
        let total = state.groups.len();
        let (groups, next_cursor) =
            one_page(tools::EXPORT, std::mem::take(&mut state.groups), page)?;
        state.groups = groups;
        let document = state.to_toml_string();
        let what = counted(page, state.groups.len(), total, "STP group");
        let mut text = format!(
            "The {what} of main account {} as a desired-state document (TOML): edit it and pass it to plan.\n{document}",
            state.main_user_id
        );
        text.push_str(&paging::more_line(
            tools::EXPORT,
            total,
            next_cursor.as_deref(),
        ));
        Answer::new(
            text,
            &ExportOut {
                document,
                groups: state.groups.len(),
                total,
                next_cursor,
            },
        )
    }
}

/// The page of the arguments (checked already by `arguments`).
fn page_of(args: &impl tools::Paged) -> Page {
    args.page().unwrap_or(Page {
        offset: 0,
        limit: paging::DEFAULT_LIMIT,
    })
}

/// The page of `items` the agent asked for (a cursor past the end refused), and the
/// cursor of the rest.
fn one_page<T: serde::Serialize>(
    tool: &str,
    items: Vec<T>,
    page: Page,
) -> Result<(Vec<T>, Option<String>), ToolError> {
    paging::within(tool, page, items.len()).map_err(ToolError::new)?;
    Ok(paging::cut(items, page))
}

/// `7 STP groups` when the page shows them all, `11–20 of 35 STP groups` when it does not.
fn counted(page: Page, shown: usize, total: usize, noun: &str) -> String {
    if shown == total {
        plural(total, noun)
    } else {
        format!(
            "{} of {}",
            shown_range(page.offset, shown),
            plural(total, noun)
        )
    }
}

/// `11–20` for a page of ten from offset 10 (1-based, as people count).
fn shown_range(offset: usize, len: usize) -> String {
    match len {
        0 | 1 => format!("number {}", offset + 1),
        _ => format!("{}–{}", offset + 1, offset + len),
    }
}

/// An id, or `-` where Gate gave none.
fn optional(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// A login name as the model reads it: quoted and escaped, or said to be unknown (a user
/// the key's sub-accounts do not list).
fn login(name: Option<&str>) -> String {
    name.map_or_else(|| "(login name unknown)".to_owned(), desired::quoted)
}

#[cfg(test)]
mod tests {
    use super::{Page, counted, login, optional, shown_range};

    #[test]
    fn names_ids_and_ranges_read_as_people_write_them() {
        assert_eq!(login(Some("desk_A1")), "\"desk_A1\"");
        assert_eq!(login(Some("a\u{1b}[2J")), "\"a\\x1b[2J\"");
        assert_eq!(login(None), "(login name unknown)");
        assert_eq!(optional(Some(7)), "7");
        assert_eq!(optional(None), "-");
        assert_eq!(shown_range(10, 10), "11–20");
        assert_eq!(shown_range(4, 1), "number 5");
        let page = Page {
            offset: 10,
            limit: 10,
        };
        assert_eq!(counted(page, 10, 35, "member"), "11–20 of 35 members");
        assert_eq!(counted(page, 1, 1, "member"), "1 member");
    }
}
