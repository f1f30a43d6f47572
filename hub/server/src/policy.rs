//! `POST /v1/policy/explain`: the decision for a hypothetical request, with
//! the rule and reason for every item, so a department can see exactly why it
//! is (or would be) denied.

use super::AppState;
use super::extract::{Caller, Json};
use super::problem::Problem;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongban_catalog::Role;
use tongban_catalog::lists::ModeSchema;
use tongban_policies::{Decision, Mode, Request};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The consumer to decide for; defaults to the caller. Only the data office
    /// may ask on behalf of another department.
    #[serde(default)]
    pub consumer: Option<String>,
    /// Resource code, e.g. `101/000001`.
    pub resource: String,
    /// Items asked for; empty or absent asks for every item.
    #[serde(default)]
    pub items: Vec<String>,
    /// The matter (事项) code the request would serve.
    pub matter: String,
    #[schema(value_type = ModeSchema)]
    pub mode: Mode,
    /// When the request would be made; defaults to now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainResponse {
    pub consumer: String,
    pub resource: String,
    pub matter: String,
    #[schema(value_type = ModeSchema)]
    pub mode: Mode,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `permitted`, the deciding `rule`, and per item: `release` (null when
    /// denied; `clear`, `masked` with its mask, or `match_only`), `rule`
    /// (`need:12`, `unconditional`, `negative:3`, `share_type_none`,
    /// `no_need`, `unknown_item`, …) and `reason`; plus the `row_filters` and
    /// `daily_quota` that would apply.
    #[schema(value_type = Object)]
    pub decision: Decision,
}

/// Explain a policy decision
///
/// Decides a hypothetical request exactly as a lookup, verification or
/// delivery would be decided, without releasing any data.
#[utoipa::path(post, path = "/v1/policy/explain", tag = "policy",
    request_body = ExplainRequest,
    responses((status = 200, description = "The decision, item by item", body = ExplainResponse)),
    security(("token" = [])))]
pub async fn explain(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(req): Json<ExplainRequest>,
) -> Result<axum::Json<ExplainResponse>, Problem> {
    let consumer = req.consumer.unwrap_or_else(|| who.department.clone());
    if consumer != who.department && who.role != Role::DataOffice {
        return Err(Problem::forbidden(format!(
            "{} may explain decisions for itself only; the data office may ask for any department",
            who.department
        )));
    }
    let at = req.at.unwrap_or_else(Utc::now);
    let set = state.access.policies().current();
    let decision = set.decide(&Request {
        consumer: &consumer,
        resource: &req.resource,
        items: &req.items,
        matter: &req.matter,
        mode: req.mode,
        now: at,
    });
    Ok(axum::Json(ExplainResponse {
        consumer,
        resource: req.resource,
        matter: req.matter,
        mode: req.mode,
        at,
        decision,
    }))
}
