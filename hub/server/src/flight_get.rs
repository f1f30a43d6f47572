//! Arrow Flight `DoGet` of a subscription: pyarrow and ADBC clients pull a
//! version of a pull subscription as Arrow, decided and enforced exactly as
//! Delta Sharing files are (the same plan (`tongban_delivery::plan::Plan`)).
//!
//! The ticket is JSON: `{"subscription": "elderly-residents"}` for the
//! newest version, or with `"version": 3`. The caller's token goes in the
//! `authorization: Bearer …` metadata; a subscription is found among the
//! caller's own. `ListFlights` lists the caller's pull subscriptions, each
//! with the ticket of its newest version.

use super::AppState;
use super::problem::status;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tongban_catalog::subscriptions::SubscriptionStatus;
use tongban_core::auth::Identity;
use tongban_delivery::apply::{self, Part};
use tongban_delivery::plan;
use tonic::Status;

/// What a `DoGet` ticket asks for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionTicket {
    /// The caller's subscription, by name.
    pub subscription: String,
    /// The version; absent: the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

fn catalog_status(e: tongban_catalog::Error) -> Status {
    super::problem::Problem::from(e).into_status()
}

/// The permitted rows of a subscription's version, as Flight data.
pub async fn do_get(
    state: &AppState,
    who: &Identity,
    ticket: &Ticket,
) -> Result<BoxStream<'static, Result<FlightData, Status>>, Status> {
    let started = std::time::Instant::now();
    let t: SubscriptionTicket = serde_json::from_slice(&ticket.ticket).map_err(|e| {
        Status::invalid_argument(format!(
            "the ticket must be JSON {{\"subscription\": NAME, \"version\": N}}: {e}"
        ))
    })?;
    let sub = state
        .store
        .find_subscription(&who.department, &t.subscription)
        .await
        .map_err(catalog_status)?;
    if sub.spec.channel.is_push() {
        return Err(Status::failed_precondition(format!(
            "subscription '{}' is delivered by {}, not pulled",
            sub.spec.name,
            sub.spec.channel.kind()
        )));
    }
    let versions = state
        .store
        .list_versions(&sub.spec.resource)
        .await
        .map_err(catalog_status)?;
    let version = match t.version {
        None => versions.first(),
        Some(n) => versions.iter().find(|v| v.version == n),
    }
    .ok_or_else(|| {
        Status::not_found(format!(
            "no version {} of '{}'",
            t.version.map_or("yet".to_string(), |n| n.to_string()),
            sub.spec.resource
        ))
    })?
    .clone();
    let plan = match plan::plan(&state.access, &state.disputes, &sub, chrono::Utc::now()) {
        Ok(p) => p,
        Err(refused) => {
            tongban_delivery::refuse(&state.base, &sub, Some(version.version), &refused, started)
                .await
                .map_err(status)?;
            return Err(status(refused.into()));
        }
    };
    let resource = state
        .store
        .get_resource(&sub.spec.resource)
        .await
        .map_err(catalog_status)?;
    let schema = apply::released_schema(&resource.spec, &plan, Part::Snapshot)
        .map_err(|e| Status::internal(e.to_string()))?;
    let batches = apply::released(
        &state.datasets,
        &version.location,
        &plan,
        Part::Snapshot,
        state.hash_key.clone(),
    )
    .await
    .map_err(|e| Status::internal(e.to_string()))?;
    tongban_delivery::record(
        &state.access,
        &plan,
        version.version,
        tongban_audit::Outcome::Released,
        started,
    )
    .await
    .map_err(status)?;
    let _ = state.store.advance_cursor(sub.id, version.version).await;
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches.map_err(|e| FlightError::ExternalError(Box::new(e))))
        .map_err(|e| Status::internal(e.to_string()));
    Ok(flight.boxed())
}

/// The caller's pull subscriptions as flights.
pub async fn list(state: &AppState, who: &Identity) -> Result<Vec<FlightInfo>, Status> {
    let mut out = Vec::new();
    let subs = state
        .store
        .list_subscriptions(Some(&who.department))
        .await
        .map_err(catalog_status)?;
    for sub in subs {
        if sub.spec.channel.is_push() || sub.status != SubscriptionStatus::Active {
            continue;
        }
        let Ok(plan) = plan::plan(&state.access, &state.disputes, &sub, chrono::Utc::now()) else {
            continue;
        };
        let resource = state
            .store
            .get_resource(&sub.spec.resource)
            .await
            .map_err(catalog_status)?;
        let schema = apply::released_schema(&resource.spec, &plan, Part::Snapshot)
            .map_err(|e| Status::internal(e.to_string()))?;
        let ticket = serde_json::to_vec(&SubscriptionTicket {
            subscription: sub.spec.name.clone(),
            version: None,
        })
        .expect("tickets serialise");
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_descriptor(FlightDescriptor::new_path(vec![sub.spec.name.clone()]))
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)));
        out.push(info);
    }
    Ok(out)
}
