//! `GET /v1/uses`: the data-use record (数据使用记录) of one subject, for
//! the portal (一网通办) acting for its authenticated user, and for the data
//! office. What it answers and who may ask: `tongban_core::uses`.

use super::AppState;
use super::extract::{Caller, Query};
use super::problem::Problem;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tongban_core::uses::{self, Asker};
use utoipa::IntoParams;

/// The header in which the portal names the user its login authenticated
/// (as X-Road's `X-Road-UserId`).
pub const USER_HEADER: &str = "x-tongban-userid";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsesParams {
    /// The subject: a citizen ID, or a company's unified social credit code.
    pub subject: String,
    /// Start of the period (a date, or an RFC 3339 time); none: from the first record.
    #[serde(default)]
    pub from: Option<String>,
    /// End of the period, inclusive (a date covers the whole day); none: until now.
    #[serde(default)]
    pub to: Option<String>,
    /// The `next` of the previous page.
    #[serde(default)]
    pub before: Option<u64>,
    /// Uses per page, 1–200 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<usize>,
}

/// A time bound from a date (the day's start, or for an end its last
/// instant, in China Standard Time) or an RFC 3339 time.
fn bound(field: &'static str, text: &str, end: bool) -> Result<DateTime<Utc>, Problem> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Problem::new(
            tongban_core::Code::InvalidQuery,
            format!("{field}: '{text}' is neither a date (2026-12-01) nor an RFC 3339 time"),
        )
        .with_field(field)
    })?;
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    let start = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(cst)
        .single()
        .expect("a fixed offset has one local time");
    let t = start.with_timezone(&Utc);
    Ok(if end {
        t - chrono::TimeDelta::nanoseconds(1)
    } else {
        t
    })
}

/// A subject's data-use record
///
/// Who used the subject's data, when, for which matter: each lookup,
/// verification, stream, interface call and delivery that named the
/// subject's key, newest first. The portal role asks for the user its
/// login authenticated (header `X-Tongban-UserId`): the user's own
/// citizen ID, or a company the user is the legal representative of; the
/// data office for any subject. Uses under a covert need are withheld
/// until the need's date. The query is itself recorded.
#[utoipa::path(get, path = "/v1/uses", tag = "audit",
    params(UsesParams,
        ("X-Tongban-UserId" = Option<String>, Header, description = "Portal only: the citizen ID of the user the portal authenticated")),
    responses((status = 200, description = "The subject's uses, newest first", body = uses::Page),
              (status = 400, description = "A period or page that cannot be read", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "A subject (or portal user) that is no citizen ID or credit code", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "A department, or a portal user asking for another subject", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Query(p): Query<UsesParams>,
) -> Result<axum::Json<uses::Page>, Problem> {
    let user = match headers.get(USER_HEADER) {
        Some(v) => Some(v.to_str().map_err(|_| {
            Problem::new(
                tongban_core::Code::InvalidInput,
                "X-Tongban-UserId: not text",
            )
            .with_field("X-Tongban-UserId")
        })?),
        None => None,
    };
    // An empty value (as HTML forms send) counts as absent.
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let from = given(&p.from)
        .map(|t| bound("from", &t, false))
        .transpose()?;
    let to = given(&p.to).map(|t| bound("to", &t, true)).transpose()?;
    let page_size = p.page_size.unwrap_or(50);
    if !(1..=uses::MAX_PAGE).contains(&page_size) {
        return Err(Problem::new(
            tongban_core::Code::InvalidQuery,
            format!("page_size: must be 1–{}", uses::MAX_PAGE),
        )
        .with_field("page_size"));
    }
    let asker = Asker {
        department: &who.department,
        role: who.role,
        user,
    };
    let query = uses::Query {
        subject: &p.subject,
        from,
        to,
        before: p.before,
        limit: page_size,
    };
    let page = uses::uses(&state.base, &asker, &query)
        .await
        .map_err(|e| match e {
            uses::Error::Access(e) => Problem::from(e),
            e => {
                let mut p = Problem::new(e.code(), e.to_string());
                p.field = e.field().map(str::to_string);
                p
            }
        })?;
    Ok(axum::Json(page))
}
