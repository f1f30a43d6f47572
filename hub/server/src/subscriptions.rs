//! Subscriptions under `/v1/subscriptions`, and Delta Sharing profiles.
//!
//! A department subscribes for itself, under one of its approved needs of
//! mode `subscribe` or `batch`; it and the data office see the
//! subscription, its delivery status (cursor, what is pending, the last
//! error) and what the policy releases to it right now. The data office may
//! cancel any subscription; a department its own.

use super::AppState;
use super::extract::{Caller, Json, Path, Query};
use super::problem::Problem;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tongban_catalog::Role;
use tongban_catalog::subscriptions::*;
use tongban_core::Code;
use tongban_core::auth::Identity;
use tongban_delivery::plan;
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, Problem>;

/// The subscription as shown after creation: webhook secrets are shown once.
fn without_secret(mut s: Subscription) -> Subscription {
    s.secret = None;
    s
}

/// The subscription if the caller may see it: its consumer or the data office.
async fn visible(state: &AppState, who: &Identity, id: i64) -> ApiResult<Subscription> {
    let sub = state.store.get_subscription(id).await?;
    if who.role != Role::DataOffice && sub.consumer != who.department {
        return Err(Problem::not_found(format!("subscription '{id}' not found")));
    }
    Ok(sub)
}

/// Checks a channel's config beyond its shape, without IO.
fn check_channel(channel: &Channel) -> ApiResult<()> {
    if let Channel::Postgres {
        url,
        table,
        password_env,
    } = channel
    {
        let config = tongban_connectors::postgres::SinkConfig {
            url: url.clone(),
            password_env: password_env.clone(),
            table: table.clone(),
            mode: tongban_connectors::postgres::SinkMode::Replace,
        };
        config.validate().map_err(|e| {
            Problem::new(Code::InvalidInput, format!("channel: {e}")).with_field("channel")
        })?;
    }
    Ok(())
}

/// Subscribe to a resource
///
/// Subscribes the calling department under one of its approved needs of mode
/// `subscribe` or `batch`. A webhook subscription's answer carries its
/// signing secret, once.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body = SubscriptionSpec,
    responses((status = 201, description = "Subscribed", body = Subscription),
              (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Json(spec): Json<SubscriptionSpec>,
) -> ApiResult<(StatusCode, axum::Json<Subscription>)> {
    check_channel(&spec.channel)?;
    let secret = matches!(spec.channel, Channel::Webhook { .. }).then(|| {
        format!(
            "whsec_{}",
            tongban_core::auth::new_token().trim_start_matches("tb_")
        )
    });
    let sub = state
        .store
        .create_subscription(&who.department, &spec, secret)
        .await?;
    tracing::info!(subscription = %sub.spec.name, consumer = %sub.consumer, channel = sub.spec.channel.kind(), "subscribed");
    Ok((StatusCode::CREATED, axum::Json(sub)))
}

/// List subscriptions
///
/// The caller's subscriptions; the data office sees everyone's.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions",
    responses((status = 200, description = "Subscriptions", body = Vec<Subscription>)),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<axum::Json<Vec<Subscription>>> {
    let consumer = (who.role != Role::DataOffice).then_some(who.department.as_str());
    let subs = state.store.list_subscriptions(consumer).await?;
    Ok(axum::Json(subs.into_iter().map(without_secret).collect()))
}

/// What the policy releases to a subscription now.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Whether a delivery now would release anything.
    pub permitted: bool,
    /// The deciding rule.
    pub rule: String,
    /// Items released, in order, with how (`clear` or the mask).
    #[schema(value_type = Vec<Object>)]
    pub released: Vec<serde_json::Value>,
    /// Items asked for and not released, with the rule and why.
    #[schema(value_type = Vec<Object>)]
    pub denied: Vec<serde_json::Value>,
    /// Rows delivered: every filter holds (needs' filters, return flow).
    #[schema(value_type = Vec<Object>)]
    pub row_filters: Vec<tongban_policies::RowFilter>,
    /// Why nothing is released, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A subscription with its delivery status.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionStatusView {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// The resource's newest dataset version.
    pub latest_version: Option<i64>,
    /// Versions published after the cursor.
    pub behind: i64,
    /// Push: deliveries waiting (for their turn or a retry).
    pub pending: i64,
    /// Push: the newest delivery attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<Delivery>,
    /// Push: why the oldest pending delivery last failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub plan: PlanView,
}

/// One subscription and its delivery status
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The subscription", body = SubscriptionStatusView)),
    security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<SubscriptionStatusView>> {
    let sub = without_secret(visible(&state, &who, id).await?);
    let versions = state.store.list_versions(&sub.spec.resource).await?;
    let latest_version = versions.first().map(|v| v.version);
    let behind = versions
        .iter()
        .filter(|v| sub.cursor.is_none_or(|c| v.version > c))
        .count() as i64;
    let deliveries = state.store.list_deliveries(sub.id, 1000).await?;
    let pending: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .collect();
    let oldest_pending = pending.iter().min_by_key(|d| d.version);
    let last_delivery = deliveries
        .iter()
        .filter(|d| d.attempts > 0)
        .max_by_key(|d| d.version)
        .cloned();
    let plan = match plan::plan(&state.access, &state.disputes, &sub, Utc::now()) {
        Ok(p) => PlanView {
            permitted: true,
            rule: p.decision.rule.to_string(),
            released: p
                .projection
                .iter()
                .map(|(item, reveal)| serde_json::json!({"item": item, "reveal": reveal}))
                .collect(),
            denied: denied(&p.decision),
            row_filters: p.row_filters.clone(),
            refused: None,
        },
        Err(r) => PlanView {
            permitted: false,
            rule: r.rule,
            released: Vec::new(),
            denied: Vec::new(),
            row_filters: Vec::new(),
            refused: Some(r.detail),
        },
    };
    Ok(axum::Json(SubscriptionStatusView {
        latest_version,
        behind,
        pending: pending.len() as i64,
        last_error: oldest_pending.and_then(|d| d.last_error.clone()),
        next_attempt_at: oldest_pending.map(|d| d.next_attempt_at),
        last_delivery,
        plan,
        subscription: sub,
    }))
}

fn denied(d: &tongban_policies::Decision) -> Vec<serde_json::Value> {
    d.items
        .iter()
        .filter(|i| i.release.is_none())
        .map(
            |i| serde_json::json!({"item": i.item, "rule": i.rule.to_string(), "reason": i.reason}),
        )
        .collect()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Most deliveries returned, newest version first (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A subscription's deliveries
///
/// Push subscriptions: every version queued for delivery, newest first, with
/// attempts, outcome, rows and bytes, and the last error.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/deliveries", tag = "subscriptions",
    params(("id" = i64, Path), DeliveryQuery),
    responses((status = 200, description = "Deliveries", body = Vec<Delivery>),
              (status = 422, description = "`limit` out of range", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<axum::Json<Vec<Delivery>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            Problem::new(Code::InvalidInput, "limit: must be between 1 and 1000")
                .with_field("limit"),
        );
    }
    let sub = visible(&state, &who, id).await?;
    Ok(axum::Json(
        state.store.list_deliveries(sub.id, limit).await?,
    ))
}

/// Cancel a subscription
///
/// Nothing more is delivered; pending deliveries are abandoned.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = i64, Path)),
    responses((status = 200, description = "Cancelled", body = Subscription),
              (status = 409, description = "Already stopped or cancelled", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Subscription>> {
    let sub = visible(&state, &who, id).await?;
    if sub.status != SubscriptionStatus::Active {
        return Err(Problem::new(
            Code::Conflict,
            format!("subscription {id} is already {}", sub.status),
        ));
    }
    let sub = state
        .store
        .set_subscription_status(
            id,
            SubscriptionStatus::Cancelled,
            Some(&format!("cancelled by {}", who.department)),
        )
        .await?;
    Ok(axum::Json(without_secret(sub)))
}

/// For whom a profile is made.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// The recipient department; only the data office may name another
    /// than the caller. Default: the caller.
    #[serde(default)]
    pub department: Option<String>,
}

/// A Delta Sharing profile file
///
/// Issues a new token for the recipient (stored hashed, shown only here) and
/// answers the profile file (`config.share`) that Delta Sharing clients
/// open: `delta_sharing.load_as_pandas("config.share#share.schema.table")`.
#[utoipa::path(post, path = "/v1/sharing/profile", tag = "subscriptions",
    request_body(content = Option<ProfileRequest>, description = "Optional; none or `{}` makes one for the caller"),
    responses((status = 200, description = "The profile file", body = Object),
              (status = 404, description = "No such department", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn profile(
    State(state): State<AppState>,
    Caller(who): Caller,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req: ProfileRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ProfileRequest::default()
    } else {
        serde_json::from_slice::<Option<ProfileRequest>>(&body)
            .map(Option::unwrap_or_default)
            .map_err(|e| Problem::new(Code::InvalidInput, format!("body: {e}")))?
    };
    let department = req.department.unwrap_or_else(|| who.department.clone());
    if department != who.department && who.role != Role::DataOffice {
        return Err(Problem::forbidden(format!(
            "{} may make a profile for itself only",
            who.department
        )));
    }
    state.store.get_department(&department).await?;
    let label = format!(
        "delta-sharing {department} {}",
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let token =
        tongban_core::auth::issue(state.store.as_ref(), &department, Role::Department, label)
            .await?;
    if let Err(e) = state.identities.reload(state.store.as_ref()).await {
        tracing::warn!(error = %e, "new sharing token saved; it works after the next reload");
    }
    let profile = tongban_delivery::sharing_profile(&state.delivery.sharing_endpoint(), &token);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"config.share\"",
            ),
        ],
        serde_json::to_string_pretty(&profile).expect("json"),
    )
        .into_response())
}
