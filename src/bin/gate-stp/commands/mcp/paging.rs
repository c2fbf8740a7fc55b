//! Bounded answers: a model reads every byte of a tool result, so no answer grows with the
//! account.
//!
//! - `list_groups`, `list_members` and `export` answer one page: at most `limit` items
//!   ([`DEFAULT_LIMIT`] when not given, at most [`MAX_LIMIT`]) and at most [`MAX_PAGE_BYTES`]
//!   of items (at least one item), with the total and a `next_cursor` for the rest. A cursor
//!   is the position of the next item, as text; pages are cut from one fresh read each time,
//!   so a change between two calls can shift items across pages (the totals say so).
//! - `plan` cuts its rendered text at [`MAX_RENDERED_BYTES`] and leaves the plan's JSON out of
//!   its structured content above [`MAX_STRUCTURED_PLAN_BYTES`]; its digest, counts and
//!   summary are always there, and `apply` needs only the digest (the plan itself is kept
//!   by the server).
//!
//! So an answer is at most about twice (text and its JSON) the page or plan bound: under
//! 1 MiB for `list_*` and `export`, under 1.5 MiB for `plan`.

use serde::Serialize;

/// Items per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// The largest `limit`.
pub(crate) const MAX_LIMIT: usize = 1000;

/// Bytes of items (as JSON) per page, whatever the limit.
pub(crate) const MAX_PAGE_BYTES: usize = 256 * 1024;

/// Bytes of a plan's rendered text in an answer.
pub(crate) const MAX_RENDERED_BYTES: usize = 64 * 1024;

/// Bytes of a plan's JSON document kept in `plan`'s structured content.
pub(crate) const MAX_STRUCTURED_PLAN_BYTES: usize = 512 * 1024;

/// Where a page starts and how many items it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

/// The page `limit` and `cursor` ask for; `Err` says which argument is wrong and what it
/// takes.
pub(crate) fn page(limit: Option<u32>, cursor: Option<&str>) -> Result<Page, String> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(limit) if (1..=MAX_LIMIT).contains(&(limit as usize)) => limit as usize,
        Some(limit) => {
            return Err(format!("`limit`: expected 1 to {MAX_LIMIT}, got {limit}"));
        }
    };
    let offset = match cursor {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|_| cursor.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                format!(
                    "`cursor`: expected the `next_cursor` of an earlier answer (digits), got {}",
                    gate_stp::desired::quoted(cursor)
                )
            })?,
    };
    Ok(Page { offset, limit })
}

/// The items of `page` out of `items`, cut at [`MAX_PAGE_BYTES`] (one item at least), and
/// the cursor of the rest, if any.
pub(crate) fn cut<T: Serialize>(items: Vec<T>, page: Page) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let mut taken = Vec::new();
    let mut bytes = 0;
    for item in items.into_iter().skip(page.offset).take(page.limit) {
        let size = serde_json::to_vec(&item).map_or(0, |json| json.len() + 1);
        if !taken.is_empty() && bytes + size > MAX_PAGE_BYTES {
            break;
        }
        bytes += size;
        taken.push(item);
    }
    let next = page.offset.saturating_add(taken.len());
    let cursor = (next < total).then(|| next.to_string());
    (taken, cursor)
}

/// Refuses a cursor past the end of `total` items (a list that shrank since the cursor
/// was handed out, or a cursor made up): the agent starts again.
pub(crate) fn within(tool: &str, page: Page, total: usize) -> Result<(), String> {
    if page.offset > 0 && page.offset >= total {
        return Err(format!(
            "`cursor` {} is past the end: there are {total} now; call {tool} without a cursor to start again",
            page.offset
        ));
    }
    Ok(())
}

/// The line that ends a cut page: how many are left and how to get them.
pub(crate) fn more_line(tool: &str, total: usize, next: Option<&str>) -> String {
    match next {
        Some(cursor) => {
            let left = total.saturating_sub(cursor.parse().unwrap_or(total));
            format!(
                "\nMore: {left} not shown; call {tool} with cursor \"{cursor}\" (and the same other arguments) for the next page."
            )
        }
        None => String::new(),
    }
}

/// `text` cut at the last line break within `max` bytes, with a line saying how many
/// lines were left out.
pub(crate) fn cut_text(text: &str, max: usize, rest: &str) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').unwrap_or(end);
    let left = text[end..].lines().filter(|line| !line.is_empty()).count();
    let lines = if left == 1 { "line" } else { "lines" };
    format!("{}\n… {left} more {lines} not shown; {rest}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE_BYTES, Page, cut, cut_text, page};

    #[test]
    fn limit_and_cursor_are_checked() {
        assert_eq!(
            page(None, None),
            Ok(Page {
                offset: 0,
                limit: DEFAULT_LIMIT
            })
        );
        assert_eq!(
            page(Some(1), Some("7")),
            Ok(Page {
                offset: 7,
                limit: 1
            })
        );
        let max = u32::try_from(MAX_LIMIT).unwrap();
        assert_eq!(page(Some(max), None).unwrap().limit, MAX_LIMIT);
        for limit in [0, max + 1] {
            let error = page(Some(limit), None).unwrap_err();
            assert!(error.starts_with("`limit`: expected 1 to 1000"), "{error}");
        }
        for cursor in ["", "-1", "+3", "x", "1.5", "99999999999999999999999"] {
            let error = page(None, Some(cursor)).unwrap_err();
            assert!(error.starts_with("`cursor`: "), "{cursor:?}: {error}");
        }
    }

    #[test]
    fn a_page_is_cut_by_count_and_by_bytes_and_says_where_the_rest_starts() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(
            cut(
                items.clone(),
                Page {
                    offset: 0,
                    limit: 4
                }
            ),
            (vec![0, 1, 2, 3], Some("4".to_owned()))
        );
        assert_eq!(
            cut(
                items.clone(),
                Page {
                    offset: 8,
                    limit: 4
                }
            ),
            (vec![8, 9], None)
        );
        assert_eq!(
            cut(
                items,
                Page {
                    offset: 20,
                    limit: 4
                }
            ),
            (vec![], None)
        );
        // Items of 100 KiB: two fit in the byte budget, whatever the limit.
        let big: Vec<String> = (0..5).map(|_| "x".repeat(100 * 1024)).collect();
        let (taken, next) = cut(
            big,
            Page {
                offset: 0,
                limit: 100,
            },
        );
        assert_eq!(taken.len(), MAX_PAGE_BYTES / (100 * 1024));
        assert_eq!(next.as_deref(), Some("2"));
        // One item larger than the budget is still answered, alone.
        let huge = vec!["y".repeat(MAX_PAGE_BYTES * 2), "z".to_owned()];
        let (taken, next) = cut(
            huge,
            Page {
                offset: 0,
                limit: 100,
            },
        );
        assert_eq!((taken.len(), next.as_deref()), (1, Some("1")));
    }

    #[test]
    fn a_cursor_past_the_end_is_refused() {
        let at = |offset| Page { offset, limit: 10 };
        assert!(super::within("t", at(0), 0).is_ok());
        assert!(super::within("t", at(4), 5).is_ok());
        let error = super::within("list_groups", at(5), 5).unwrap_err();
        assert_eq!(
            error,
            "`cursor` 5 is past the end: there are 5 now; call list_groups without a cursor to start again"
        );
        assert!(super::within("t", at(1), 0).is_err());
    }

    #[test]
    fn text_is_cut_at_a_line_with_the_count_of_the_rest() {
        let text = "a\nbb\nccc\ndddd\n";
        assert_eq!(cut_text(text, 100, "x"), text);
        assert_eq!(
            cut_text(text, 6, "see more"),
            "a\nbb\n… 2 more lines not shown; see more"
        );
        assert_eq!(cut_text("é\né", 2, "r"), "é\n… 1 more line not shown; r");
        // A limit inside a character cuts before it, never after.
        assert_eq!(cut_text("ééé", 3, "r"), "é\n… 1 more line not shown; r");
    }

    /// Items of 511 bytes of JSON, each counted with its separator (512): a page of
    /// 256 KiB holds exactly 512 of them, the last one filling it to the byte.
    #[test]
    fn a_page_is_filled_to_the_byte_and_not_past_it() {
        let item = "x".repeat(509);
        assert_eq!(serde_json::to_string(&item).unwrap().len(), 511);
        let (taken, next) = cut(
            vec![item; 600],
            Page {
                offset: 0,
                limit: MAX_LIMIT,
            },
        );
        assert_eq!(MAX_PAGE_BYTES, 512 * 512);
        assert_eq!(taken.len(), 512);
        assert_eq!(next.as_deref(), Some("512"));
    }
}
