//! The [`Store`] trait: everything the hub asks of the directory.

use crate::Result;
use crate::lists::*;
use crate::model::*;
use crate::subscriptions::*;
use crate::sync::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tongban_policies::PolicyInput;
use tongban_policies::calendar::Calendar;

/// The directory's persistence. Every method validates its input first and
/// writes in one transaction: on error nothing has changed.
///
/// [`crate::SqlStore`] implements it for the embedded SQLite catalog and for
/// PostgreSQL from the same migrations; the conformance suite in
/// `catalog/tests/it` runs against both.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a department; its parent, if any, must exist at a higher level.
    async fn create_department(&self, department: &Department) -> Result<Department>;
    async fn get_department(&self, code: &str) -> Result<Department>;
    /// All departments, by code.
    async fn list_departments(&self) -> Result<Vec<Department>>;

    /// Adds a resource (status `draft` unless the spec says otherwise).
    async fn create_resource(&self, spec: &ResourceSpec) -> Result<Resource>;
    /// Replaces a resource's description and items; bumps its version.
    async fn update_resource(&self, code: &str, spec: &ResourceSpec) -> Result<Resource>;
    /// Moves a resource along draft → published → retired.
    async fn set_resource_status(&self, code: &str, status: Status) -> Result<Resource>;
    async fn get_resource(&self, code: &str) -> Result<Resource>;
    /// Resources matching the query, by code, one page at a time.
    async fn list_resources(&self, query: &ResourceQuery) -> Result<Page<Resource>>;

    /// The whole directory, in import form.
    async fn export(&self) -> Result<Directory>;
    /// Creates or updates every record, all or nothing; an error names the
    /// record's place in the file.
    async fn import(
        &self,
        departments: &[Located<Department>],
        resources: &[Located<ResourceSpec>],
    ) -> Result<ImportReport>;

    /// Makes a dataset version visible. Call it only after its files are complete.
    async fn record_version(&self, version: &NewDatasetVersion) -> Result<DatasetVersion>;
    /// A resource's versions, newest first.
    async fn list_versions(&self, resource: &str) -> Result<Vec<DatasetVersion>>;

    // ---- sync jobs -------------------------------------------------------------

    /// Adds a job for an existing resource.
    async fn create_sync_job(&self, spec: &SyncJobSpec) -> Result<SyncJob>;
    async fn get_sync_job(&self, name: &str) -> Result<SyncJob>;
    /// All jobs, by name.
    async fn list_sync_jobs(&self) -> Result<Vec<SyncJob>>;
    /// Records that a run of the job starts. Runs of the job still marked
    /// running are marked interrupted first: one process runs a job at a
    /// time, so they belong to a process that died.
    async fn start_sync_run(&self, job: &str) -> Result<SyncRun>;
    /// Records how a run ended. A successful run's dataset version, the
    /// run's record and the job's new watermark are written in one
    /// transaction: a crash leaves all or none of them.
    async fn finish_sync_run(&self, run: i64, finish: &RunFinish) -> Result<SyncRun>;
    /// Takes job `job`'s run lock ([`crate::sync::JobLock`]); none when
    /// another hub holds it.
    async fn lock_sync_job(&self, job: &str) -> Result<Option<crate::sync::JobLock>>;
    /// Runs, newest first, of one job or of all.
    async fn list_sync_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<SyncRun>>;

    // ---- subscriptions and the push outbox --------------------------------------

    /// Subscribes `consumer` under one of its needs: approved, in force, of
    /// mode `subscribe` or `batch`, for the resource, covering the items.
    /// Stored with the need's items when the spec names none.
    async fn create_subscription(
        &self,
        consumer: &str,
        spec: &SubscriptionSpec,
        secret: Option<String>,
    ) -> Result<Subscription>;
    async fn get_subscription(&self, id: i64) -> Result<Subscription>;
    /// A consumer's subscription by its name (a Delta Sharing table name).
    async fn find_subscription(&self, consumer: &str, name: &str) -> Result<Subscription>;
    /// Subscriptions of one consumer, or of all, by id.
    async fn list_subscriptions(&self, consumer: Option<&str>) -> Result<Vec<Subscription>>;
    /// Stops or cancels an active subscription; its pending deliveries are
    /// abandoned with the reason. Revoking a need stops its subscriptions.
    async fn set_subscription_status(
        &self,
        id: i64,
        status: SubscriptionStatus,
        reason: Option<&str>,
    ) -> Result<Subscription>;
    /// Moves a subscription's cursor forward to `version` (never back).
    async fn advance_cursor(&self, id: i64, version: i64) -> Result<()>;
    /// Queues a pending delivery of each version not queued yet; returns how
    /// many were queued.
    async fn enqueue_deliveries(&self, subscription: i64, versions: &[i64]) -> Result<usize>;
    /// The deliveries to attempt now: the oldest pending one of each active
    /// subscription, when due and not leased.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>>;
    /// Takes a delivery's lease for `owner` (a hub process) and counts the
    /// attempt; false when another hub holds it or it is no longer pending.
    async fn claim_delivery(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives up every lease `owner` holds (a hub that stops mid-attempt).
    async fn release_delivery_leases(&self, owner: &str) -> Result<u64>;
    /// Records an attempt; a delivered version moves the cursor in the same
    /// transaction.
    async fn finish_delivery(&self, id: i64, attempt: &Attempt) -> Result<Delivery>;
    /// A subscription's deliveries, newest version first.
    async fn list_deliveries(&self, subscription: i64, limit: i64) -> Result<Vec<Delivery>>;

    // ---- services (interface sharing) -------------------------------------------

    /// Registers a provider API with its resource, all or nothing: the
    /// resource is created or replaced, the definition checked against its
    /// items (`ServiceSpec::check`) and stored, its version bumped.
    async fn register_service(
        &self,
        registration: &crate::services::ServiceRegistration,
    ) -> Result<crate::services::ServiceRecord>;
    async fn get_service(&self, code: &str) -> Result<crate::services::ServiceRecord>;
    /// All services, by resource code.
    async fn list_services(&self) -> Result<Vec<crate::services::ServiceRecord>>;
    /// Enables or disables a service (with the notice callers see).
    async fn switch_service(
        &self,
        code: &str,
        switch: &crate::services::ServiceSwitch,
    ) -> Result<crate::services::ServiceRecord>;

    async fn put_token(&self, token: &TokenRecord) -> Result<()>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;

    // ---- the three lists -------------------------------------------------------

    /// Files a need for `consumer`; its first review stage and deadline follow
    /// from the items' share types and the resource's status.
    async fn apply_need(&self, consumer: &str, application: &NeedApplication)
    -> Result<NeedRecord>;
    /// Approves, rejects or revokes a need, if the actor's role and the need's
    /// stage allow it.
    async fn review_need(
        &self,
        id: i64,
        actor: Actor<'_>,
        action: ReviewAction,
        reason: &str,
    ) -> Result<NeedRecord>;
    /// A need with its review history.
    async fn get_need(&self, id: i64) -> Result<NeedRecord>;
    async fn list_needs(&self, query: &NeedQuery) -> Result<Vec<NeedRecord>>;
    /// Creates or replaces needs by id, all or nothing.
    async fn import_needs(&self, records: &[Located<NeedRecord>]) -> Result<ImportCounts>;

    async fn create_negative(&self, spec: &NegativeSpec) -> Result<NegativeRecord>;
    async fn delete_negative(&self, id: i64) -> Result<()>;
    async fn list_negatives(&self) -> Result<Vec<NegativeRecord>>;
    async fn import_negatives(&self, records: &[Located<NegativeRecord>]) -> Result<ImportCounts>;

    async fn create_responsibility(
        &self,
        spec: &ResponsibilitySpec,
    ) -> Result<ResponsibilityRecord>;
    async fn delete_responsibility(&self, id: i64) -> Result<()>;
    async fn list_responsibilities(&self) -> Result<Vec<ResponsibilityRecord>>;
    async fn import_responsibilities(
        &self,
        records: &[Located<ResponsibilityRecord>],
    ) -> Result<ImportCounts>;
    /// Who keeps their refresh promises at `now`, latest first.
    async fn compliance(&self, now: DateTime<Utc>) -> Result<Vec<ComplianceRow>>;

    /// Holidays and make-up working days, for review deadlines.
    async fn calendar(&self) -> Result<Calendar>;
    async fn set_calendar(&self, calendar: &Calendar) -> Result<()>;

    /// Everything the decision engine compiles: departments, resources with
    /// their items, needs and negative entries.
    async fn policy_input(&self) -> Result<PolicyInput>;

    /// The change counters (see [`crate::changes`]).
    async fn changes(&self) -> Result<crate::changes::Changes>;

    /// Stores a new objection, open, its deadline counted in working days
    /// by the calendar.
    async fn raise_objection(
        &self,
        raise: &crate::objections::Raise<'_>,
    ) -> Result<crate::objections::ObjectionRecord>;
    /// An objection with its history.
    async fn get_objection(&self, id: i64) -> Result<crate::objections::ObjectionRecord>;
    /// Objections by the query's filters, oldest first (without history).
    async fn list_objections(
        &self,
        query: &crate::objections::ObjectionQuery,
    ) -> Result<Vec<crate::objections::ObjectionRecord>>;
    /// Takes a step on an objection, if its state allows (conflict if not,
    /// forbidden if `actor` is not the provider for a provider's step).
    async fn objection_step(
        &self,
        id: i64,
        actor: &str,
        step: &crate::objections::Step,
        now: DateTime<Utc>,
    ) -> Result<crate::objections::ObjectionRecord>;

    /// Records how far a replica's audit chain has come (never backwards).
    async fn record_audit_head(&self, head: &AuditHead) -> Result<()>;
    /// Every replica's recorded audit head, by replica.
    async fn audit_heads(&self) -> Result<Vec<AuditHead>>;
    /// Keeps a signed checkpoint of a replica's audit log (one per size:
    /// the same size again is ignored).
    async fn record_audit_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()>;
    /// A replica's checkpoints (every replica's, with none), smallest first.
    async fn audit_checkpoints(&self, replica: Option<&str>) -> Result<Vec<AuditCheckpoint>>;

    /// Registers (or replaces) the key a department seals licences with.
    async fn register_seal_key(&self, key: &SealKeyRecord) -> Result<()>;
    /// Every registered seal key, by department.
    async fn seal_keys(&self) -> Result<Vec<SealKeyRecord>>;

    /// Where to `LISTEN` for change notifications: the PostgreSQL URL, or
    /// none for a store that has none (SQLite is polled).
    fn listen_url(&self) -> Option<String> {
        None
    }
}
