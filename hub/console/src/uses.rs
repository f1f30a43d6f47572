//! The data-use record page (数据使用记录, data office only): one
//! subject's uses as the portal shows them to the citizen or company —
//! time, department, matter, mode, items, outcome — newest first, from the
//! audit log's subject index (`tongban_core::uses`). Uses under a covert
//! need are withheld until its date here too; the query is recorded.

use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tongban_core::uses::{self, Asker, Use};

#[derive(Debug, Default, serde::Deserialize)]
pub struct UsesQuery {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    before: Option<u64>,
}

#[derive(Template)]
#[template(path = "uses.html")]
struct UsesPage {
    f: Frame,
    subject: String,
    searched: bool,
    uses: Vec<Use>,
    next: Option<u64>,
    /// Why the subject could not be searched.
    problem: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<UsesQuery>,
) -> Response {
    if let Err(r) = s.require_office() {
        return r;
    }
    let subject = q.subject.trim().to_string();
    let mut page = UsesPage {
        f: s.frame("uses", s.t.t("uses.title")),
        searched: !subject.is_empty(),
        subject,
        uses: Vec::new(),
        next: None,
        problem: None,
    };
    if page.searched {
        let asker = Asker {
            department: &s.who.department,
            role: s.who.role,
            user: None,
        };
        let query = uses::Query {
            subject: &page.subject,
            from: None,
            to: None,
            before: q.before,
            limit: 50,
        };
        match uses::uses(&state.hub, &asker, &query).await {
            Ok(found) => {
                page.uses = found.uses;
                page.next = found.next;
            }
            Err(e) if e.code() == tongban_core::Code::InvalidInput => {
                page.problem = Some(e.to_string());
            }
            Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }
    (StatusCode::OK, render(&page)).into_response()
}
