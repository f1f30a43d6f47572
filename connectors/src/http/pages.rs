//! Pagination: which URL comes after a page, and when a read is done; and
//! finding the records in a page's body.

use super::SourceConfig;
use crate::{Error, Read, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// How an API splits its records into pages (`"pagination": {"type": …}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Pagination {
    /// One request; its body holds every record.
    #[default]
    None,
    /// Numbered pages, `?page=1`, `?page=2`, … until a page has no records.
    Page {
        /// The page number's query parameter (default `page`).
        #[serde(default = "page_param")]
        param: String,
        /// The first page's number (default 1).
        #[serde(default = "one")]
        start: u64,
        /// A query parameter for the page size (e.g. `per_page`), sent with
        /// `size`.
        #[serde(default)]
        size_param: Option<String>,
        /// Records per page asked for.
        #[serde(default)]
        size: Option<u64>,
    },
    /// `?offset=0&limit=100`, `?offset=100&limit=100`, … until a page has no
    /// records. The offset advances by the records a page actually held, so
    /// an API that caps `limit` lower loses nothing.
    Offset {
        /// The offset's query parameter (default `offset`).
        #[serde(default = "offset_param")]
        param: String,
        /// The page size's query parameter (default `limit`).
        #[serde(default = "limit_param")]
        limit_param: String,
        /// Records per page asked for.
        limit: u64,
    },
    /// A cursor, or the next page's link, in each body, until it is null or
    /// absent.
    Cursor {
        /// A JSON pointer to the cursor in the body, e.g. `/meta/next`.
        next: String,
        /// The query parameter to send the cursor as. When absent the cursor
        /// is the next page's URL, absolute or relative to the page's, and
        /// must stay on the configured URL's origin.
        #[serde(default)]
        param: Option<String>,
    },
}

fn page_param() -> String {
    "page".into()
}
fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn one() -> u64 {
    1
}

impl Pagination {
    pub(super) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(format!("http pagination: {m}")));
        match self {
            Pagination::None => Ok(()),
            Pagination::Page {
                param,
                size_param,
                size,
                ..
            } => {
                if param.is_empty() || size_param.as_deref().is_some_and(str::is_empty) {
                    return bad("parameter names must not be empty");
                }
                if size_param.is_some() != size.is_some() {
                    return bad("give size_param and size together");
                }
                if *size == Some(0) {
                    return bad("size must be at least 1");
                }
                Ok(())
            }
            Pagination::Offset {
                param,
                limit_param,
                limit,
            } => {
                if param.is_empty() || limit_param.is_empty() || param == limit_param {
                    return bad("param and limit_param must be two different, non-empty names");
                }
                if *limit == 0 {
                    return bad("limit must be at least 1");
                }
                Ok(())
            }
            Pagination::Cursor { next, param } => {
                if next.is_empty() {
                    return bad("next must point into the body, e.g. /meta/next");
                }
                check_pointer("pagination next", next)?;
                if param.as_deref().is_some_and(str::is_empty) {
                    return bad("param must not be empty");
                }
                Ok(())
            }
        }
    }
}

/// Checks that `pointer` is an RFC 6901 JSON pointer (empty, or from `/`).
pub(super) fn check_pointer(field: &str, pointer: &str) -> Result<()> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "http source: {field} '{pointer}' is not a JSON pointer; write it like /data/items"
        )))
    }
}

/// The URLs of one read's pages, in order.
pub(super) struct Pager {
    /// The configured URL, with the watermark parameter if any.
    base: Url,
    style: Pagination,
    /// The next page's number, or offset.
    position: u64,
}

impl Pager {
    pub(super) fn new(config: &SourceConfig, read: &Read) -> Result<Pager> {
        let mut base = Url::parse(&config.url)
            .map_err(|e| Error::Config(format!("http url '{}': {e}", config.url)))?;
        if let (Some(param), Read::Since { after, .. }) = (&config.since_param, read) {
            base = with_params(&base, &[(param.as_str(), after.clone())]);
        }
        let position = match &config.pagination {
            Pagination::Page { start, .. } => *start,
            _ => 0,
        };
        Ok(Pager {
            base,
            style: config.pagination.clone(),
            position,
        })
    }

    /// The first page's URL.
    pub(super) fn first(&self) -> Url {
        self.at(self.position)
    }

    fn at(&self, position: u64) -> Url {
        match &self.style {
            Pagination::None | Pagination::Cursor { .. } => self.base.clone(),
            Pagination::Page {
                param,
                size_param,
                size,
                ..
            } => {
                let mut params = vec![(param.as_str(), position.to_string())];
                if let (Some(p), Some(n)) = (size_param, size) {
                    params.push((p.as_str(), n.to_string()));
                }
                with_params(&self.base, &params)
            }
            Pagination::Offset {
                param,
                limit_param,
                limit,
            } => with_params(
                &self.base,
                &[
                    (param.as_str(), position.to_string()),
                    (limit_param.as_str(), limit.to_string()),
                ],
            ),
        }
    }

    /// The page after `url`, which held `records` records and whose body
    /// (records taken out) is `body`; `None` when `url` was the last page.
    pub(super) fn next(&mut self, url: &Url, body: &Value, records: usize) -> Result<Option<Url>> {
        match &self.style {
            Pagination::None => Ok(None),
            Pagination::Page { .. } | Pagination::Offset { .. } if records == 0 => Ok(None),
            Pagination::Page { .. } => {
                self.position += 1;
                Ok(Some(self.at(self.position)))
            }
            Pagination::Offset { .. } => {
                self.position += records as u64;
                Ok(Some(self.at(self.position)))
            }
            Pagination::Cursor { next, param } => {
                let cursor = match body.pointer(next) {
                    None | Some(Value::Null) => return Ok(None),
                    Some(Value::String(s)) if s.is_empty() => return Ok(None),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(other) => {
                        return Err(remote(
                            url,
                            format!(
                                "the cursor at '{next}' is {}, not a string or number",
                                kind(other)
                            ),
                        ));
                    }
                };
                let Some(param) = param else {
                    let link = url.join(&cursor).map_err(|e| {
                        remote(url, format!("the next link '{cursor}' is not a URL: {e}"))
                    })?;
                    if link.origin() != self.base.origin() {
                        return Err(remote(
                            url,
                            format!(
                                "the next link {link} leaves {}; it is not followed, so the headers go nowhere else",
                                self.base.origin().ascii_serialization()
                            ),
                        ));
                    }
                    return Ok(Some(link));
                };
                Ok(Some(with_params(&self.base, &[(param.as_str(), cursor)])))
            }
        }
    }
}

/// `url` with `params` set, replacing any of the same names.
fn with_params(url: &Url, params: &[(&str, String)]) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !params.iter().any(|(n, _)| n == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(params);
    out
}

/// Takes the records out of a page's body: the array at `pointer`. A `null`
/// there is a page without records; anything else that is not an array is
/// an error, as is nothing at all (most likely a wrong pointer).
pub(super) fn take_records(body: &mut Value, pointer: &str, url: &Url) -> Result<Vec<Value>> {
    let place = if pointer.is_empty() {
        "the body".to_string()
    } else {
        format!("'{pointer}'")
    };
    match body.pointer_mut(pointer).map(Value::take) {
        Some(Value::Array(records)) => Ok(records),
        Some(Value::Null) => Ok(Vec::new()),
        Some(other) => Err(remote(
            url,
            format!("the records at {place} are {}, not an array", kind(&other)),
        )),
        None => Err(remote(
            url,
            format!("the body has nothing at {place}, where the records should be"),
        )),
    }
}

/// Every record must be a JSON object (a row).
pub(super) fn check_objects(records: &[Value], url: &Url) -> Result<()> {
    match records.iter().position(|r| !r.is_object()) {
        None => Ok(()),
        Some(i) => Err(remote(
            url,
            format!("record {i} is {}, not a JSON object", kind(&records[i])),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn remote(url: &Url, what: String) -> Error {
    Error::Remote {
        system: "http",
        message: format!("GET {url}: {what}"),
    }
}
