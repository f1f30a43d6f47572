//! The hub value: what every release path, transport and worker shares,
//! built once from the configuration and the catalog store. Cheap to clone
//! (one `Arc`): axum clones its state for every request.

use crate::access::Access;
use crate::auth::Identities;
use crate::policy::Policies;
use crate::{Config, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tongban_catalog::Store;
use tongban_datasets::DatasetStore;
use tongban_lookup::Indexes;

/// The hub: catalog store, identities, the access pipeline, lookup
/// indexes, dataset versions.
#[derive(Clone)]
pub struct Hub(Arc<Parts>);

/// The parts of a [`Hub`].
pub struct Parts {
    /// The catalog: directory, lists, jobs, subscriptions, versions.
    pub store: Arc<dyn Store>,
    /// Tokens and certificates → departments (stage 1 of the pipeline).
    pub identities: Identities,
    /// The access pipeline: the compiled lists, quotas and the audit log,
    /// reachable only through its stages.
    pub access: Access,
    /// In-memory lookup indexes over the newest dataset versions.
    pub indexes: Indexes,
    pub datasets: DatasetStore,
    /// Key of the `hash` mask and of key hashes in the audit log.
    pub hash_key: Arc<str>,
    /// Where the embedded catalog, versions, audit log and shared files live.
    pub data_dir: PathBuf,
    /// The disputed items of open objections, which answers mark.
    pub disputes: crate::objections::Disputes,
}

impl std::ops::Deref for Hub {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Hub {
    /// Recompiles the lists after a write (API, console). A failure leaves
    /// the previous set in force and is logged; the periodic refresh
    /// retries.
    pub async fn lists_changed(&self) {
        if let Err(e) = self.access.policies().reload(self.store.as_ref()).await {
            tracing::error!(error = %e, "could not recompile the lists; the previous policy set stays in force");
        }
    }

    /// Loads identities and lists from `store`, and opens the dataset
    /// store and the audit log under the configured data directory.
    pub async fn open(config: &Config, store: Arc<dyn Store>) -> Result<Hub> {
        let identities = Identities::load(store.as_ref()).await?;
        let policies = Policies::load(store.as_ref()).await?;
        let indexes = Indexes::new(config.secondary_keys.clone().into_iter().collect());
        let datasets = DatasetStore::open(config.object_store.as_ref(), &config.data_dir)?;
        let hash_key: Arc<str> = config.mask_hash_key()?.into();
        let audit = tongban_audit::Audit::open_with(
            &config.data_dir.join("audit"),
            hash_key.as_bytes(),
            Some(&config.replica()),
            config.audit_hash,
        )
        .map_err(crate::Error::AuditLog)?;
        let disputes = crate::objections::Disputes::default();
        disputes.reload(store.as_ref()).await?;
        Ok(Hub(Arc::new(Parts {
            store,
            identities,
            access: Access::new(policies, Default::default(), audit),
            indexes,
            datasets,
            hash_key,
            data_dir: config.data_dir.clone(),
            disputes,
        })))
    }
}
