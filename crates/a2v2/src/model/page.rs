//! Keyset pagination shared by every list: `?limit=` (1–200, default 50) and `?cursor=`.
//! The cursor is the id of the last item of the previous page; ids sort by creation time.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
}

/// A validated page request: how many items, after which id.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<String>,
}

impl PageQuery {
    /// The page asked for, or why the parameters are refused.
    pub fn page(&self) -> Result<PageRequest, String> {
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| format!("`limit` must be a whole number from 1 to {MAX_LIMIT}."))?,
        };
        let after = match &self.cursor {
            None => None,
            Some(cursor) if is_cursor(cursor) => Some(cursor.clone()),
            Some(_) => {
                return Err(
                    "`cursor` is not one this server issued; use `next_cursor` from the \
                     previous page."
                        .into(),
                );
            }
        };
        Ok(PageRequest { limit, after })
    }
}

fn is_cursor(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One page of a list: `{data, has_more, next_cursor}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page from up to `limit + 1` fetched items: the extra one only says more follow.
    pub fn from_fetched(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let has_more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(0));
        let next_cursor = if has_more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Self {
            data: items,
            has_more,
            next_cursor,
        }
    }

    /// A whole list in one page.
    pub fn complete(items: Vec<T>) -> Self {
        Self {
            data: items,
            has_more: false,
            next_cursor: None,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(limit: Option<&str>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit: limit.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn limits_outside_the_range_are_bad_requests() {
        assert_eq!(query(None, None).page().unwrap().limit, 50);
        assert_eq!(query(Some("200"), None).page().unwrap().limit, 200);
        for bad in ["0", "201", "-1", "abc", "1.5", ""] {
            assert!(query(Some(bad), None).page().is_err(), "{bad}");
        }
        assert!(query(None, Some("ct_0190")).page().is_ok());
        assert!(query(None, Some("' OR 1=1")).page().is_err());
    }

    #[test]
    fn pages_know_whether_more_follow() {
        let page = Page::from_fetched(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({"data": [1, 2], "has_more": true, "next_cursor": "2"})
        );
        let page = Page::from_fetched(vec![1], 2, |n| n.to_string());
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({"data": [1], "has_more": false, "next_cursor": null})
        );
    }
}
