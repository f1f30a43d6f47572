//! The access pipeline: the one way data leaves the hub.
//!
//! Every release path — lookup, verify, locate, the NDJSON stream, Flight
//! `DoExchange` and `DoGet`, Delta Sharing queries and file reads, push
//! deliveries, interface calls (`tongban-services`) — goes through the same stages, in this order:
//!
//! 1. **identity**: the transport resolves the caller (token or client
//!    certificate) and names its department in the [`Ask`]; nothing here
//!    trusts anything else the caller says about itself;
//! 2. **input checks**: a matter and a case are stated ([`Access::open`]);
//!    keys pass their check digits (`tongban_lookup::keys`) before a path
//!    looks anything up;
//! 3. **one decision** from **one snapshot** of the lists, taken once for the
//!    whole request ([`Grant`]), so the decision and `within_sla` can never
//!    disagree when the lists change mid-request; a decision that releases
//!    nothing is recorded and refused ([`Error::Denied`]);
//! 4. **quota** ([`Access::take_quota`]): the need's daily quota, refused
//!    with the time to wait, and recorded;
//! 5. **enforcement**: the path applies the grant's decision — projection,
//!    masks, row filters — with the `policies` crate's evaluators, the only
//!    ones there are;
//! 6. **audit** ([`Access::release`]): a durable record before the answer
//!    leaves; if it cannot be written, nothing leaves
//!    ([`Error::AuditUnavailable`]).
//!
//! Each stage is a method a path calls in order; a path that skips one has
//! no [`Grant`] to enforce or nothing to record with. Failures are [`Error`]s
//! with a stable [`Code`]; the transports map codes to statuses.

use crate::codes::Code;
use crate::limits::{Limits, Refused};
use crate::policy::{Compiled, Policies};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;
use tongban_audit::{Audit, CallEvidence, EventRef, Outcome};
use tongban_policies::{Decision, Mode, Request};

/// Who asks what, for which matter and case: the part of a request the
/// decision and the audit record are about.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The caller's department, as its identity says.
    pub consumer: &'a str,
    pub resource: &'a str,
    pub matter: &'a str,
    pub case: &'a str,
    pub mode: Mode,
    /// When the request (or the chunk of a stream) arrived: its record's
    /// latency is measured from here.
    pub started: Instant,
}

impl Ask<'_> {
    /// The input checks every request passes before anything is decided:
    /// a matter and a case are stated. [`Access::open`] makes them; a path
    /// may make them earlier, before it spends work on the request.
    pub fn check(&self) -> Result<()> {
        for (field, value) in [("matter", self.matter), ("case", self.case)] {
            if value.trim().is_empty() {
                return Err(Error::invalid(field, format!("{field}: must not be empty")));
            }
        }
        Ok(())
    }
}

/// A decided request: the decision and the snapshot of the lists it was
/// made from. Everything the request releases is bounded by it.
#[derive(Clone)]
pub struct Grant {
    decision: Decision,
    snapshot: Arc<Compiled>,
}

impl Grant {
    /// What may be released, and the obligations: projection, masks, row
    /// filters, quota.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The decision, for a delivery plan that keeps it.
    pub fn into_decision(self) -> Decision {
        self.decision
    }

    /// Whether data published at `as_of` is within the provider's refresh
    /// promise, by the same snapshot as the decision.
    pub fn within_sla(
        &self,
        resource: &str,
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<bool> {
        self.snapshot.within_sla(resource, as_of, now)
    }
}

/// What can go wrong on a release path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Stage 1: no identity, or one the hub does not know.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A field of the request breaks a rule (empty matter, a key failing
    /// its check digit). Nothing was decided or recorded.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The decision releases nothing. Recorded.
    #[error("{detail}")]
    Denied { rule: String, detail: String },
    /// The need's daily quota is used up. Recorded.
    #[error("{detail}")]
    QuotaExceeded {
        rule: String,
        detail: String,
        /// Seconds until the keys asked for are available; none when they
        /// exceed the whole quota.
        retry_after_secs: Option<u64>,
    },
    /// The lists changed while a stream was open, and the request is no
    /// longer decided the same way: it ends. Recorded.
    #[error(
        "the lists changed while this request was open and no longer allow it as it was; open it again"
    )]
    PolicyChanged { rule: String },
    /// The audit log cannot record, so nothing was released.
    #[error("the audit log cannot record this request, so no data is released; retry shortly")]
    AuditUnavailable(#[source] tongban_audit::Error),
    /// The resource is published but its index is not loaded yet.
    #[error("the data of '{resource}' is still loading; retry in a moment")]
    Loading { resource: String },
    /// The resource has no published data to release.
    #[error("no published data for resource '{resource}'")]
    NoData { resource: String },
    /// The catalog store failed or refused (see `codes::of_catalog`).
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    /// The dataset store cannot be opened.
    #[error(transparent)]
    Dataset(#[from] tongban_datasets::Error),
    /// The audit log cannot be opened.
    #[error("audit log: {0}")]
    AuditLog(#[source] tongban_audit::Error),
    /// The configuration is not usable; each line names a field.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// A file the hub needs could not be read or written.
    #[error("{path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A certificate or key file is unusable, or TLS cannot be set up.
    #[error("{what}: {message}")]
    Tls { what: String, message: String },
    /// Enforcing a decision on the data failed (a column the decision names
    /// is missing): a fault of the hub, never of the caller.
    #[error("enforcement failed: {0}")]
    Enforcement(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code of this failure.
    pub fn code(&self) -> Code {
        match self {
            Error::Unauthorized(_) => Code::Unauthorized,
            Error::Invalid { .. } => Code::InvalidInput,
            Error::Denied { .. } => Code::Denied,
            Error::QuotaExceeded { .. } => Code::QuotaExceeded,
            Error::PolicyChanged { .. } => Code::PolicyChanged,
            Error::AuditUnavailable(_) => Code::AuditUnavailable,
            Error::Loading { .. } => Code::IndexLoading,
            Error::NoData { .. } => Code::NotFound,
            Error::Catalog(e) => crate::codes::catalog_code(e),
            Error::Enforcement(_)
            | Error::Dataset(_)
            | Error::AuditLog(_)
            | Error::Config(_)
            | Error::File { .. }
            | Error::Tls { .. } => Code::Internal,
        }
    }

    /// The input field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The rule that decided, for denials and quota refusals.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Error::Denied { rule, .. }
            | Error::QuotaExceeded { rule, .. }
            | Error::PolicyChanged { rule } => Some(rule),
            _ => None,
        }
    }

    /// Seconds to wait before retrying, when waiting helps.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::QuotaExceeded {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }

    /// Wraps an IO error with the path it concerns.
    pub fn file(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }

    /// A TLS file or setting `what` is unusable.
    pub fn tls(what: &std::path::Path, message: impl std::fmt::Display) -> Error {
        Error::Tls {
            what: what.display().to_string(),
            message: message.to_string(),
        }
    }

    /// `field` breaks a rule: `message` says which.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The pipeline's stages over the hub's lists, limits and audit log. Cheap
/// to clone: every part is shared.
#[derive(Clone)]
pub struct Access {
    policies: Policies,
    limits: Limits,
    audit: Audit,
}

impl Access {
    pub fn new(policies: Policies, limits: Limits, audit: Audit) -> Access {
        Access {
            policies,
            limits,
            audit,
        }
    }

    /// The compiled lists (for paths that only explain, never release).
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Stages 2 and 3: checks the matter and case, takes one snapshot of
    /// the lists and decides. A decision that releases nothing is recorded,
    /// with the `keys` asked for (none yet for a stream), so that a trace
    /// of a key shows refusals too, and returned as [`Error::Denied`].
    pub async fn open(&self, ask: &Ask<'_>, items: &[String], keys: &[String]) -> Result<Grant> {
        ask.check()?;
        let grant = self.decide(ask, items, Utc::now());
        if !grant.decision.permitted {
            self.record(ask, &grant.decision, keys, Outcome::Denied)
                .await?;
            return Err(denied(&grant.decision));
        }
        Ok(grant)
    }

    /// The decision alone, from one snapshot, with nothing checked or
    /// recorded: for deliveries, whose plan adds its own checks
    /// (subscription active, need in force) and records through
    /// [`Access::record`].
    pub fn decide(&self, ask: &Ask<'_>, items: &[String], now: DateTime<Utc>) -> Grant {
        let snapshot = self.policies.current();
        let decision = snapshot.decide(&Request {
            consumer: ask.consumer,
            resource: ask.resource,
            items,
            matter: ask.matter,
            mode: ask.mode,
            now,
        });
        Grant { decision, snapshot }
    }

    /// For a request that releases over time (an NDJSON stream, a Flight
    /// exchange): may the next part be released under `grant`? While the
    /// lists are those the grant was decided by, yes (`Ok(None)`, one pointer
    /// comparison). After a change the request is decided again: the same
    /// decision goes on under the new snapshot (`Ok(Some(grant))`, to use
    /// from here on); any other ends the request, recorded with `keys` as
    /// denied, so that a connection held open never outlives a negative
    /// entry or a revoked need ([`Error::PolicyChanged`]).
    pub async fn recheck(
        &self,
        ask: &Ask<'_>,
        grant: &Grant,
        items: &[String],
        keys: &[String],
    ) -> Result<Option<Grant>> {
        if Arc::ptr_eq(&self.policies.current(), &grant.snapshot) {
            return Ok(None);
        }
        let next = self.decide(ask, items, Utc::now());
        if next.decision == grant.decision {
            return Ok(Some(next));
        }
        self.record(ask, &next.decision, keys, Outcome::Denied)
            .await?;
        Err(Error::PolicyChanged {
            rule: next.decision.rule.to_string(),
        })
    }

    /// Stage 4: takes one unit per key from the need's daily quota, if it
    /// has one. A refusal is recorded.
    pub async fn take_quota(&self, ask: &Ask<'_>, grant: &Grant, keys: &[String]) -> Result<()> {
        let decision = &grant.decision;
        let Some(quota) = decision.daily_quota else {
            return Ok(());
        };
        let refused = match self
            .limits
            .take(ask.consumer, ask.resource, quota, keys.len())
        {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        self.record(ask, decision, keys, Outcome::QuotaExceeded)
            .await?;
        let (detail, retry_after_secs) = match refused {
            Refused::RetryAfter(wait) => (
                format!(
                    "the daily quota of {quota} keys for '{}' is used up; retry in {} s",
                    ask.resource,
                    wait.as_secs() + 1
                ),
                Some(wait.as_secs() + 1),
            ),
            Refused::TooMany => (
                format!(
                    "{} keys exceed the whole daily quota of {quota}",
                    keys.len()
                ),
                None,
            ),
        };
        Err(Error::QuotaExceeded {
            rule: decision.rule.to_string(),
            detail,
            retry_after_secs,
        })
    }

    /// Stage 6: records the release of `keys` under `grant`, durably; only
    /// then may the answer leave.
    pub async fn release(&self, ask: &Ask<'_>, grant: &Grant, keys: &[String]) -> Result<()> {
        self.record(ask, &grant.decision, keys, Outcome::Released)
            .await
    }

    /// Appends a record of `decision` with `outcome`. Items count as released
    /// only when the outcome says data left (`released`, or `failed` for a
    /// push that may have arrived).
    pub async fn record(
        &self,
        ask: &Ask<'_>,
        decision: &Decision,
        keys: &[String],
        outcome: Outcome,
    ) -> Result<()> {
        self.record_with(ask, decision, keys, outcome, None).await
    }

    /// Stage 6 of an interface call: [`Access::record`] with the call's
    /// evidence (endpoint, provider status, request and response hashes).
    /// Only a `released` call's items count as released.
    pub async fn record_call(
        &self,
        ask: &Ask<'_>,
        decision: &Decision,
        keys: &[String],
        outcome: Outcome,
        call: &CallEvidence,
    ) -> Result<()> {
        self.record_with(ask, decision, keys, outcome, Some(call))
            .await
    }

    async fn record_with(
        &self,
        ask: &Ask<'_>,
        decision: &Decision,
        keys: &[String],
        outcome: Outcome,
        call: Option<&CallEvidence>,
    ) -> Result<()> {
        let released = matches!(outcome, Outcome::Released | Outcome::Failed);
        let rule = decision.rule.to_string();
        let items = decision
            .items
            .iter()
            .filter(|d| released && d.release.is_some())
            .map(|d| d.item.as_str())
            .collect();
        let denied = decision
            .items
            .iter()
            .filter(|d| d.release.is_none())
            .map(|d| format!("{}:{}", d.item, d.rule))
            .collect();
        self.append(ask, items, denied, keys, &rule, outcome, call)
            .await
    }

    /// Records a refusal made before any decision (a delivery whose
    /// subscription is stopped or whose need lapsed): nothing released,
    /// `rule` names why.
    pub async fn record_refusal(&self, ask: &Ask<'_>, rule: &str) -> Result<()> {
        self.append(
            ask,
            Vec::new(),
            vec![rule.to_string()],
            &[],
            rule,
            Outcome::Denied,
            None,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn append(
        &self,
        ask: &Ask<'_>,
        items: Vec<&str>,
        denied: Vec<String>,
        keys: &[String],
        rule: &str,
        outcome: Outcome,
        call: Option<&CallEvidence>,
    ) -> Result<()> {
        let event = EventRef {
            time: Utc::now(),
            consumer: ask.consumer,
            resource: ask.resource,
            mode: ask.mode.as_str(),
            matter: ask.matter,
            case: ask.case,
            items,
            denied,
            keys: keys.iter().map(|k| self.audit.key_hash(k)).collect(),
            rule,
            outcome,
            latency_us: ask.started.elapsed().as_micros() as u64,
            call,
        };
        crate::metrics::access(&event);
        match self.audit.record_ref(&event).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "audit record failed: nothing released");
                Err(Error::AuditUnavailable(e))
            }
        }
    }
}

/// The refusal of a decision that releases nothing, naming its rule and
/// the first item's reason.
fn denied(decision: &Decision) -> Error {
    Error::Denied {
        rule: decision.rule.to_string(),
        detail: decision.items.first().map_or_else(
            || "nothing may be released".to_string(),
            |d| format!("{}: {}", d.item, d.reason),
        ),
    }
}

#[cfg(test)]
mod tests;
