//! Subscriptions in the console: a department's own (the data office sees
//! all), with the cursor, what is pending, the last delivery error, and what
//! the policy releases to each right now.

use super::names::Names;
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use tongban_catalog::subscriptions::{DeliveryStatus, Subscription};
use tongban_delivery::plan;

/// A subscription with its status, for the table.
pub struct Row {
    pub sub: Subscription,
    pub latest: Option<i64>,
    pub pending: usize,
    pub last_error: Option<String>,
    /// Released items (and whether each is masked), or why nothing is.
    pub released: Result<Vec<(String, bool)>, String>,
    pub filters: Vec<String>,
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage {
    f: Frame,
    rows: Vec<Row>,
    names: Names,
}

pub async fn page(State(state): State<AppState>, s: Session) -> Response {
    let consumer = (!s.is_office()).then_some(s.who.department.as_str());
    let (subs, names) = tokio::join!(
        state.store.list_subscriptions(consumer),
        Names::load(state.store.as_ref())
    );
    let subs = match subs {
        Ok(subs) => subs,
        Err(e) => return s.error(StatusCode::SERVICE_UNAVAILABLE, &super::message(&e)),
    };
    let mut rows = Vec::new();
    for sub in subs {
        let latest = state
            .store
            .list_versions(&sub.spec.resource)
            .await
            .ok()
            .and_then(|v| v.first().map(|v| v.version));
        let deliveries = state
            .store
            .list_deliveries(sub.id, 1000)
            .await
            .unwrap_or_default();
        let pending: Vec<_> = deliveries
            .iter()
            .filter(|d| d.status == DeliveryStatus::Pending)
            .collect();
        let last_error = pending
            .iter()
            .min_by_key(|d| d.version)
            .and_then(|d| d.last_error.clone());
        let (released, filters) = match plan::plan(&state.access, &state.disputes, &sub, Utc::now())
        {
            Ok(p) => (
                Ok(p.projection
                    .iter()
                    .map(|(item, reveal)| {
                        let masked = matches!(reveal, tongban_policies::Reveal::Masked(_));
                        (item.clone(), masked)
                    })
                    .collect()),
                p.row_filters.iter().map(ToString::to_string).collect(),
            ),
            Err(r) => (Err(format!("{} ({})", r.detail, r.rule)), Vec::new()),
        };
        rows.push(Row {
            pending: pending.len(),
            sub,
            latest,
            last_error,
            released,
            filters,
        });
    }
    render(&SubscriptionsPage {
        f: s.frame("subscriptions", s.t.t("subs.title")),
        rows,
        names,
    })
}
