//! The data-use record (数据使用记录): who used a citizen's or a company's
//! data, when, for which matter — as Estonia's data tracker shows each
//! citizen on the state portal.
//!
//! [`uses`] answers for one subject (a citizen ID or a credit code) from
//! the audit log's subject index ([`tongban_audit::subjects`]): the
//! entries of the subject's key hash, newest first, each record read back
//! from its line and checked to name the subject, then filtered by period,
//! and named (department, resource and matter names from the directory).
//! Uses under a need flagged covert (a legal exception) are withheld until
//! the need's `covert_until`; the answer does not say that any were.
//!
//! Who may ask ([`Asker`]): the data office, for any subject; the portal
//! (一网通办), for the subject its own login authenticated — the user
//! itself, or a company the user is the legal representative of in the
//! legal-entity base library. Every query is itself recorded (mode
//! `data_use`, the subject's key hash), so the record shows who read it.
//!
//! Scope: the records of the replica that answers (its own log). With
//! several replicas each answers from its own log; docs/lookup.md says so.

use crate::Hub;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use tongban_audit::{Event, Outcome, Record, subjects};
use tongban_catalog::lists::NeedQuery;
use tongban_catalog::{BaseLibrary, ResourceQuery, Role};

/// The most uses one page holds.
pub const MAX_PAGE: usize = 200;

/// Who asks, and for whom.
pub struct Asker<'a> {
    pub department: &'a str,
    pub role: Role,
    /// The portal's authenticated user (citizen ID), for the portal role.
    pub user: Option<&'a str>,
}

/// What to answer.
pub struct Query<'a> {
    /// Citizen ID or unified social credit code, as the caller sends it.
    pub subject: &'a str,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Uses of records before this one (the previous page's `next`).
    pub before: Option<u64>,
    pub limit: usize,
}

/// One use of the subject's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Use {
    #[schema(value_type = String, format = DateTime)]
    pub time: DateTime<Utc>,
    /// The consumer department's code and name.
    pub consumer: String,
    pub consumer_name: String,
    pub resource: String,
    pub resource_name: String,
    pub matter: String,
    /// The matter's name from the need it was served under, if named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matter_name: Option<String>,
    /// `lookup`, `verify`, `stream`, `call`, `data_use`, …
    pub mode: String,
    /// The items released (a verification: the items checked).
    pub items: Vec<String>,
    /// `released`, `denied`, `quota_exceeded`, `failed`, `provider_failed`.
    #[schema(value_type = String, example = "released")]
    pub outcome: Outcome,
    /// The audit record, for an inclusion proof (`tongban audit prove`).
    pub record: RecordRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecordRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    pub seq: u64,
}

/// One page of uses, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// The subject, normalised (upper case, check digit verified).
    pub subject: String,
    pub uses: Vec<Use>,
    /// Pass as `before` for the next page; none on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// Why a query is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Forbidden(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Access(#[from] crate::Error),
}

impl Error {
    pub fn code(&self) -> crate::Code {
        match self {
            Error::Forbidden(_) => crate::Code::Forbidden,
            Error::Invalid { .. } => crate::Code::InvalidInput,
            Error::Access(e) => e.code(),
        }
    }

    /// The input field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            Error::Access(e) => e.field(),
            Error::Forbidden(_) => None,
        }
    }
}

/// The subject as the index holds keys: a citizen ID (18 characters) or a
/// credit code, trimmed, upper-cased, check digit verified.
pub fn normalise_subject(subject: &str) -> Result<String, Error> {
    let invalid = |message: String| Error::Invalid {
        field: "subject",
        message,
    };
    let s = subject.trim().to_ascii_uppercase();
    let as_id = tongban_lookup::keys::normalise("citizen_id", s.clone());
    let as_code = tongban_lookup::keys::normalise("credit_code", s);
    as_id.or(as_code).map_err(|_| {
        invalid("must be a citizen ID (GB 11643) or a unified social credit code (GB 32100) with a valid check digit".into())
    })
}

/// Whether the asker may read `subject`'s record.
pub(crate) async fn may_read(hub: &Hub, asker: &Asker<'_>, subject: &str) -> Result<(), Error> {
    match asker.role {
        Role::DataOffice => Ok(()),
        Role::Department => Err(Error::Forbidden(format!(
            "department '{}' may not read data-use records: only the portal, for its authenticated user, and the data office may",
            asker.department
        ))),
        Role::Portal => {
            let Some(user) = asker.user else {
                return Err(Error::Invalid {
                    field: "X-Tongban-UserId",
                    message: "the portal must name the user its login authenticated (header X-Tongban-UserId)".into(),
                });
            };
            let user =
                tongban_lookup::keys::normalise("citizen_id", user.to_string()).map_err(|e| {
                    Error::Invalid {
                        field: "X-Tongban-UserId",
                        message: format!("must be the user's citizen ID: {e}"),
                    }
                })?;
            if user == subject || represents(hub, &user, subject).await? {
                Ok(())
            } else {
                Err(Error::Forbidden(
                    "the portal's user may read only their own record, or that of a company they are the legal representative of".into(),
                ))
            }
        }
    }
}

/// Whether `user` is the legal representative of the company `credit_code`
/// in a legal-entity base resource the hub holds.
async fn represents(hub: &Hub, user: &str, credit_code: &str) -> Result<bool, Error> {
    let entities = hub
        .store
        .list_resources(&ResourceQuery {
            base_library: Some(BaseLibrary::LegalEntity),
            page_size: Some(100),
            ..Default::default()
        })
        .await
        .map_err(crate::Error::from)?;
    for r in entities.items {
        if r.spec.key_items != ["credit_code"] {
            continue;
        }
        let Some(index) = hub.indexes.get(&r.spec.code) else {
            continue;
        };
        let Some(row) = index.row(credit_code) else {
            continue;
        };
        let Ok(batch) = index.take_columns(&[row], ["legal_rep_id"]) else {
            continue;
        };
        let rep = batch
            .column_by_name("legal_rep_id")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
            .map(|a| a.value(0).to_string());
        if rep.as_deref() == Some(user) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The subject's uses, newest first, one page; the query is recorded.
pub async fn uses(hub: &Hub, asker: &Asker<'_>, q: &Query<'_>) -> Result<Page, Error> {
    let started = std::time::Instant::now();
    let subject = normalise_subject(q.subject)?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from > to
    {
        return Err(Error::Invalid {
            field: "from",
            message: "the period's start is after its end".into(),
        });
    }
    may_read(hub, asker, &subject).await?;
    let limit = q.limit.clamp(1, MAX_PAGE);
    let audit = hub.access.audit().clone();
    let hash = audit.key_hash(&subject);

    // Names and covert needs, read once per query.
    let now = Utc::now();
    let departments: HashMap<String, String> = hub
        .store
        .list_departments()
        .await
        .map_err(crate::Error::from)?
        .into_iter()
        .map(|d| (d.code, d.name))
        .collect();
    let needs = hub
        .store
        .list_needs(&NeedQuery::default())
        .await
        .map_err(crate::Error::from)?;
    // (consumer, resource, matter) of needs whose uses are withheld now.
    let covert: Vec<(String, String, String)> = needs
        .iter()
        .filter(|n| n.covert_at(now))
        .map(|n| (n.consumer.clone(), n.resource.clone(), n.matter.clone()))
        .collect();
    let matter_names: HashMap<(&str, &str, &str), &str> = needs
        .iter()
        .filter_map(|n| {
            let name = n.matter_name.as_deref()?;
            Some((
                (n.consumer.as_str(), n.resource.as_str(), n.matter.as_str()),
                name,
            ))
        })
        .collect();
    let window = Window {
        hash: hash.clone(),
        from: q.from,
        to: q.to,
        before: q.before,
        limit,
        covert,
        asker: asker.department.to_string(),
    };
    let reader = audit.clone();
    let (records, next) = tokio::task::spawn_blocking(move || read_page(&reader, &window))
        .await
        .map_err(|e| crate::Error::Enforcement(format!("data-use reader: {e}")))?
        .map_err(crate::Error::AuditLog)?;
    let mut resource_names: HashMap<String, String> =
        HashMap::from([(DATA_USE_RESOURCE.to_string(), "数据使用记录".to_string())]);
    for r in &records {
        let code = &r.event.resource;
        if !resource_names.contains_key(code)
            && let Ok(res) = hub.store.get_resource(code).await
        {
            resource_names.insert(code.clone(), res.spec.name);
        }
    }
    let uses = records
        .into_iter()
        .map(|r| {
            let e = r.event;
            Use {
                consumer_name: departments
                    .get(&e.consumer)
                    .cloned()
                    .unwrap_or_else(|| e.consumer.clone()),
                resource_name: resource_names
                    .get(&e.resource)
                    .cloned()
                    .unwrap_or_else(|| e.resource.clone()),
                matter_name: matter_names
                    .get(&(e.consumer.as_str(), e.resource.as_str(), e.matter.as_str()))
                    .map(|n| n.to_string()),
                time: e.time,
                consumer: e.consumer,
                resource: e.resource,
                matter: e.matter,
                mode: e.mode,
                items: e.items,
                outcome: e.outcome,
                record: RecordRef {
                    replica: r.replica,
                    seq: r.seq,
                },
            }
        })
        .collect();

    // The query is itself a use of the subject's data.
    audit
        .record(Event {
            time: Utc::now(),
            consumer: asker.department.to_string(),
            resource: DATA_USE_RESOURCE.into(),
            mode: DATA_USE_MODE.into(),
            matter: DATA_USE_MATTER.into(),
            case: asker
                .user
                .map(|u| audit.key_hash(u.trim()))
                .unwrap_or_default(),
            items: Vec::new(),
            denied: Vec::new(),
            keys: vec![hash],
            rule: match asker.role {
                Role::Portal => "data_use:portal_user".into(),
                _ => "data_use:data_office".into(),
            },
            outcome: Outcome::Released,
            latency_us: started.elapsed().as_micros() as u64,
            call: None,
        })
        .await
        .map_err(crate::Error::AuditUnavailable)?;
    Ok(Page {
        subject,
        uses,
        next,
    })
}

/// How a data-use query is recorded: not a resource of the directory.
pub const DATA_USE_RESOURCE: &str = "audit:data_use";
pub const DATA_USE_MODE: &str = "data_use";
pub const DATA_USE_MATTER: &str = "数据使用记录查询";

/// What one page is read for, owned (it goes to a blocking thread).
struct Window {
    hash: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    before: Option<u64>,
    limit: usize,
    covert: Vec<(String, String, String)>,
    /// The asker's own data-use queries are not shown back to it.
    asker: String,
}

/// How far past the period's start the reader goes on: records are in
/// `seq` order, their times in arrival order, which differ by at most a
/// group commit's wait.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Reads records of the subject's entries, newest first, until the page
/// is full: the records and the `before` of the next page.
fn read_page(
    audit: &tongban_audit::Audit,
    w: &Window,
) -> tongban_audit::Result<(Vec<Record>, Option<u64>)> {
    let entries = audit.subject_entries(&w.hash)?;
    let mut out = Vec::new();
    for e in entries
        .iter()
        .filter(|e| w.before.is_none_or(|b| e.seq < b))
    {
        if out.len() == w.limit {
            let next = out_last(&out);
            return Ok((out, Some(next)));
        }
        let Some(r) = subjects::read_record(audit.dir(), e)? else {
            continue;
        };
        if !r.event.keys.contains(&w.hash) {
            continue; // a 64-bit collision: not this subject's
        }
        if w.to.is_some_and(|to| r.event.time > to) {
            continue;
        }
        if let Some(from) = w.from
            && r.event.time < from
        {
            if r.event.time < from - CLOCK_SLACK {
                break;
            }
            continue;
        }
        let ev = &r.event;
        if ev.mode == DATA_USE_MODE && ev.consumer == w.asker {
            continue;
        }
        if w.covert
            .iter()
            .any(|(c, res, m)| *c == ev.consumer && *res == ev.resource && *m == ev.matter)
        {
            continue;
        }
        out.push(r);
    }
    Ok((out, None))
}

fn out_last(out: &[Record]) -> u64 {
    out.last().map_or(0, |r| r.seq)
}
