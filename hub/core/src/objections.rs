//! Objections and corrections (异议核实与纠错) on the hub's side: who may
//! raise one and on what, the disputed marks every answer carries, the
//! provider's answers, and the check that a correction really changed the
//! value. The lifecycle and its storage: `tongban_catalog::objections`.
//!
//! - [`raise`]: a department with a need for the resource (or the data
//!   office), or the portal for its user's own record, objects to items of
//!   one record. The hub finds the record in the newest loaded version,
//!   keeps keyed hashes of the items' values (never the values), opens the
//!   objection with its deadline, marks the items and records the step in
//!   the audit log;
//! - [`Disputes`]: the marks — resource → key → items — held in memory and
//!   reloaded whenever objections change (here, and on other replicas by
//!   the lists' change feed), so that a lookup pays one map probe;
//! - [`answer`]: the provider says the fix is coming (`correcting`) or
//!   rejects with a reason;
//! - [`check_corrections`]: after a new version loads, each `correcting`
//!   objection on it is checked: values changed → `corrected` (the mark
//!   goes), unchanged → noted, still open.

use crate::Hub;
use crate::uses::Asker;
use arrow::array::Array;
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tongban_audit::{Event, Outcome};
use tongban_catalog::Role;
use tongban_catalog::lists::NeedQuery;
use tongban_catalog::objections::{
    ANSWER_DAYS, ObjectionQuery, ObjectionRecord, ObjectionSpec, ObjectionStatus, Raise, Step,
};
use tongban_policies::NeedStatus;

/// The disputed records of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceMarks {
    /// The resource's key item (its records' keys are its values).
    pub key_item: String,
    /// Key → disputed items.
    pub records: HashMap<String, Vec<String>>,
}

type Marks = HashMap<String, ResourceMarks>;

/// The disputed items of open objections: resource → key → items.
#[derive(Clone, Default)]
pub struct Disputes(Arc<RwLock<Arc<Marks>>>);

impl Disputes {
    /// The marks as they are now (one pointer copy).
    pub fn current(&self) -> Arc<Marks> {
        self.0.read().expect("disputes lock").clone()
    }

    /// The disputed items of one record, if any.
    pub fn items(&self, resource: &str, key: &str) -> Option<Vec<String>> {
        let marks = self.current();
        marks.get(resource)?.records.get(key).cloned()
    }

    /// Reads the open objections from the catalog.
    pub async fn reload(&self, store: &dyn tongban_catalog::Store) -> tongban_catalog::Result<()> {
        let open = store
            .list_objections(&ObjectionQuery {
                marking: true,
                ..Default::default()
            })
            .await?;
        let mut marks: Marks = HashMap::new();
        for o in open {
            if !marks.contains_key(&o.resource) {
                // Objections are raised only on resources with one key item.
                let key_item = match store.get_resource(&o.resource).await {
                    Ok(r) => r.spec.key_items.first().cloned().unwrap_or_default(),
                    Err(_) => String::new(),
                };
                marks.insert(
                    o.resource.clone(),
                    ResourceMarks {
                        key_item,
                        records: HashMap::new(),
                    },
                );
            }
            let items = marks
                .get_mut(&o.resource)
                .expect("inserted above")
                .records
                .entry(o.key)
                .or_default();
            for i in o.items {
                if !items.contains(&i) {
                    items.push(i);
                }
            }
        }
        *self.0.write().expect("disputes lock") = Arc::new(marks);
        Ok(())
    }
}

/// Why an objection step is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Forbidden(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Access(#[from] crate::Error),
}

impl From<tongban_catalog::Error> for Error {
    fn from(e: tongban_catalog::Error) -> Error {
        Error::Access(crate::Error::Catalog(e))
    }
}

impl Error {
    pub fn code(&self) -> crate::Code {
        match self {
            Error::Forbidden(_) => crate::Code::Forbidden,
            Error::Invalid { .. } => crate::Code::InvalidInput,
            Error::NotFound(_) => crate::Code::NotFound,
            Error::Access(e) => e.code(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            Error::Access(e) => e.field(),
            _ => None,
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The items' values of a row, as text (what the hashes are made from).
fn values(
    index: &tongban_lookup::Index,
    row: u32,
    items: &[String],
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let Ok(batch) = index.take_columns(&[row], items.iter().map(String::as_str)) else {
        return out;
    };
    for item in items {
        let value = batch.column_by_name(item).and_then(|c| {
            if c.is_null(0) {
                None
            } else {
                arrow::util::display::array_value_to_string(c, 0).ok()
            }
        });
        out.insert(item.clone(), value);
    }
    out
}

/// A keyed hash of a value: a correction is told from its absence without
/// keeping the value in the catalog.
fn value_hash(hub: &Hub, value: Option<&str>) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(hub.hash_key.as_bytes())
        .expect("any key length");
    mac.update(b"tongban objection value v1\0");
    match value {
        Some(v) => {
            mac.update(b"1");
            mac.update(v.as_bytes());
        }
        None => mac.update(b"0"),
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Raises an objection on a record; see the module's docs for who may.
pub async fn raise(
    hub: &Hub,
    asker: &Asker<'_>,
    spec: &ObjectionSpec,
) -> Result<ObjectionRecord, Error> {
    if spec.evidence.trim().is_empty() {
        return Err(invalid(
            "evidence",
            "say why the record is wrong (the evidence)",
        ));
    }
    if spec.items.is_empty() {
        return Err(invalid("items", "name at least one item believed wrong"));
    }
    if let Some(extra) = spec.claimed.keys().find(|k| !spec.items.contains(k)) {
        return Err(invalid(
            "claimed",
            format!("'{extra}' is not among the items objected to"),
        ));
    }
    let resource = hub
        .store
        .get_resource(&spec.resource)
        .await
        .map_err(|e| match e {
            tongban_catalog::Error::NotFound { .. } => {
                Error::NotFound(format!("no resource '{}'", spec.resource))
            }
            e => e.into(),
        })?;
    if let Some(unknown) = spec
        .items
        .iter()
        .find(|i| !resource.spec.items.iter().any(|d| &d.name == *i))
    {
        return Err(invalid(
            "items",
            format!("'{unknown}' is not an item of {}", spec.resource),
        ));
    }
    let [key_item] = resource.spec.key_items.as_slice() else {
        return Err(invalid(
            "resource",
            format!(
                "{} has no single key item: its records cannot be named",
                spec.resource
            ),
        ));
    };
    let key = tongban_lookup::keys::normalise(key_item, spec.key.clone())
        .map_err(|e| invalid("key", e))?;
    match asker.role {
        Role::DataOffice => {}
        Role::Portal => {
            let subject = crate::uses::normalise_subject(&key).map_err(|_| {
                invalid("key", "the portal objects for its user: the key must be a citizen ID or a credit code")
            })?;
            crate::uses::may_read(hub, asker, &subject)
                .await
                .map_err(|e| match e {
                    crate::uses::Error::Forbidden(m) => Error::Forbidden(m),
                    crate::uses::Error::Invalid { field, message } => invalid(field, message),
                    crate::uses::Error::Access(e) => Error::Access(e),
                })?;
        }
        Role::Department => {
            let needs = hub
                .store
                .list_needs(&NeedQuery {
                    party: Some(asker.department.to_string()),
                    resource: Some(spec.resource.clone()),
                    status: Some(NeedStatus::Approved),
                    ..Default::default()
                })
                .await?;
            if !needs.iter().any(|n| n.consumer == asker.department) {
                return Err(Error::Forbidden(format!(
                    "{} has no approved need for {}: objections come from its consumers, the portal or the data office",
                    asker.department, spec.resource
                )));
            }
        }
    }
    // A resource the hub holds data of: the record must be there, and its
    // values' hashes are kept for the correction check. An interface
    // resource (the provider's own API answers): no copy to check against.
    let (version, value_hashes) = match hub.indexes.get(&spec.resource) {
        Some(index) => {
            let row = index.row(&key).ok_or_else(|| {
                Error::NotFound(format!(
                    "no record with key {key} in {} (version {})",
                    spec.resource, index.version
                ))
            })?;
            let hashes = values(&index, row, &spec.items)
                .iter()
                .map(|(item, v)| (item.clone(), value_hash(hub, v.as_deref())))
                .collect();
            (index.version, hashes)
        }
        None if resource.latest_version.is_none() => (0, BTreeMap::new()),
        None => {
            return Err(Error::Access(crate::Error::Loading {
                resource: spec.resource.clone(),
            }));
        }
    };
    let mut spec = spec.clone();
    spec.key = key.clone();
    spec.evidence = spec.evidence.trim().to_string();
    let raised = hub
        .store
        .raise_objection(&Raise {
            spec: &spec,
            raised_by: asker.department,
            raised_for: asker.user.map(|u| hub.access.audit().key_hash(u.trim())),
            provider: &resource.spec.provider,
            version,
            value_hashes,
            now: Utc::now(),
            days: ANSWER_DAYS,
        })
        .await?;
    hub.disputes.reload(hub.store.as_ref()).await?;
    record(hub, asker.department, &raised, "raised").await?;
    Ok(raised)
}

/// Records an objection's step in the audit log: who, on which record
/// (its key hash), which items.
async fn record(hub: &Hub, actor: &str, o: &ObjectionRecord, action: &str) -> Result<(), Error> {
    let audit = hub.access.audit();
    audit
        .record(Event {
            time: Utc::now(),
            consumer: actor.to_string(),
            resource: o.resource.clone(),
            mode: "objection".into(),
            matter: "异议核实与纠错".into(),
            case: format!("objection:{}", o.id),
            items: Vec::new(),
            denied: Vec::new(),
            keys: vec![audit.key_hash(&o.key)],
            rule: format!("objection:{}:{action}:{}", o.id, o.items.join("+")),
            outcome: Outcome::Released,
            latency_us: 0,
            call: None,
        })
        .await
        .map_err(crate::Error::AuditUnavailable)?;
    Ok(())
}

/// Whether `asker` may see objection `o`.
pub fn may_see(asker: &Asker<'_>, o: &ObjectionRecord) -> bool {
    asker.role == Role::DataOffice
        || o.raised_by == asker.department
        || o.provider == asker.department
}

/// The provider's answer: the fix is coming, or the value stands.
pub async fn answer(
    hub: &Hub,
    asker: &Asker<'_>,
    id: i64,
    step: Step,
) -> Result<ObjectionRecord, Error> {
    let o = hub.store.get_objection(id).await.map_err(|e| match e {
        tongban_catalog::Error::NotFound { .. } => Error::NotFound(format!("no objection {id}")),
        e => e.into(),
    })?;
    if !may_see(asker, &o) {
        // Not a party: not disclosed.
        return Err(Error::NotFound(format!("no objection {id}")));
    }
    let action = match &step {
        Step::Correcting { .. } => "correcting",
        Step::Reject { .. } => "rejected",
        _ => {
            return Err(Error::Forbidden(
                "only the hub records what a version changed".into(),
            ));
        }
    };
    let o = hub
        .store
        .objection_step(id, asker.department, &step, Utc::now())
        .await?;
    hub.disputes.reload(hub.store.as_ref()).await?;
    record(hub, asker.department, &o, action).await?;
    if o.status == ObjectionStatus::Correcting {
        if o.version == 0 {
            // An interface resource: the hub holds no copy to check, the
            // provider's word closes it.
            let o = hub
                .store
                .objection_step(
                    id,
                    "hub",
                    &Step::Corrected {
                        version: 0,
                        note: "an interface resource: the hub holds no copy to check; closed on the provider's word".into(),
                    },
                    Utc::now(),
                )
                .await?;
            hub.disputes.reload(hub.store.as_ref()).await?;
            record(hub, "hub", &o, "corrected").await?;
            return Ok(o);
        }
        // The fix may be in a version already loaded.
        check_corrections(hub).await?;
        return Ok(hub.store.get_objection(id).await?);
    }
    Ok(o)
}

/// The note of an `unchanged` step for `version` (also how a version
/// already checked is told).
fn checked(o: &ObjectionRecord, version: i64) -> bool {
    let prefix = format!("version {version} ");
    o.history
        .iter()
        .any(|e| e.action == "unchanged" && e.note.starts_with(&prefix))
}

/// Checks every `correcting` objection against the newest loaded version
/// of its resource; returns how many it closed.
pub async fn check_corrections(hub: &Hub) -> Result<usize, Error> {
    let pending = hub
        .store
        .list_objections(&ObjectionQuery {
            status: Some(ObjectionStatus::Correcting),
            ..Default::default()
        })
        .await?;
    let mut closed = 0;
    for o in pending {
        let Some(index) = hub.indexes.get(&o.resource) else {
            continue;
        };
        if index.version <= o.version {
            continue;
        }
        let o = hub.store.get_objection(o.id).await?;
        if checked(&o, index.version) {
            continue;
        }
        let step = match index.row(&o.key) {
            None => Step::Corrected {
                version: index.version,
                note: format!("version {} no longer holds the record", index.version),
            },
            Some(row) => {
                let now: Vec<String> = values(&index, row, &o.items)
                    .iter()
                    .filter(|(item, v)| {
                        o.value_hashes.get(*item).map(String::as_str)
                            != Some(value_hash(hub, v.as_deref()).as_str())
                    })
                    .map(|(item, _)| item.clone())
                    .collect();
                if now.is_empty() {
                    Step::Unchanged {
                        version: index.version,
                    }
                } else {
                    Step::Corrected {
                        version: index.version,
                        note: format!("version {} changed {}", index.version, now.join(", ")),
                    }
                }
            }
        };
        let corrected = matches!(step, Step::Corrected { .. });
        match hub
            .store
            .objection_step(o.id, "hub", &step, Utc::now())
            .await
        {
            Ok(o) => {
                if corrected {
                    closed += 1;
                    record(hub, "hub", &o, "corrected").await?;
                }
            }
            // Another replica checked first.
            Err(tongban_catalog::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if closed > 0 {
        hub.disputes.reload(hub.store.as_ref()).await?;
    }
    Ok(closed)
}
