//! The audit trace page (data office only): who looked a citizen ID or a
//! credit code up, when, for which matter and case — the same search as
//! `tongban audit trace` — and whether the log's hash chain is intact.

use super::names::Names;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tongban_audit::Record;

#[derive(Debug, Default, serde::Deserialize)]
pub struct TraceQuery {
    #[serde(default)]
    key: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    f: Frame,
    key: String,
    records: Vec<Record>,
    names: Names,
    searched: bool,
    /// `Ok(records)` intact, `Err(problem)` broken.
    chain: Result<u64, String>,
}

pub async fn page(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<TraceQuery>,
) -> Response {
    if let Err(r) = s.require_office() {
        return r;
    }
    // Keys are recorded as lookups normalise them.
    let key = q.key.trim().to_ascii_uppercase();
    let dir = state.console.audit_dir.clone();
    let secret = state.hash_key.clone();
    let k = key.clone();
    let found = tokio::task::spawn_blocking(move || {
        let records = if k.is_empty() {
            Ok(Vec::new())
        } else {
            tongban_audit::trace(&dir, secret.as_bytes(), &k)
        };
        let chain = tongban_audit::verify(&dir)
            .map(|r| r.map_err(|b| format!("{} line {}: {}", b.file.display(), b.line, b.problem)));
        (records, chain)
    });
    // Names for the records' codes, read while the log is searched.
    let names = async {
        if key.is_empty() {
            Names::default()
        } else {
            Names::load(state.store.as_ref()).await
        }
    };
    let (found, names) = tokio::join!(found, names);
    let (records, chain) = match found {
        Ok((Ok(records), Ok(chain))) => (records, chain),
        Ok((Err(e), _)) | Ok((_, Err(e))) => {
            return s.error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
        Err(e) => return s.error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let page = AuditPage {
        f: s.frame("audit", s.t.t("audit.title")),
        searched: !key.is_empty(),
        key,
        records,
        names,
        chain,
    };
    (StatusCode::OK, render(&page)).into_response()
}
