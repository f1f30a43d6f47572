//! The hub's copy of the compiled lists: one [`PolicySet`] that every request
//! reads, swapped whole when the lists or the directory change. Readers take
//! an `Arc` and never wait for a rebuild.

use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tongban_catalog::Store;
use tongban_policies::PolicySet;

/// What decisions and answers need from the lists, compiled together.
pub struct Compiled {
    pub set: PolicySet,
    /// Published resources.
    published: HashSet<String>,
    /// Resource → the shortest refresh interval promised for it (责任清单).
    sla_hours: HashMap<String, u32>,
}

#[derive(Clone)]
pub struct Policies {
    current: Arc<RwLock<Arc<Compiled>>>,
}

async fn compile(store: &dyn Store) -> tongban_catalog::Result<Compiled> {
    let input = store.policy_input().await?;
    let published = input
        .resources
        .iter()
        .filter(|r| r.published)
        .map(|r| r.code.clone())
        .collect();
    let mut sla_hours: HashMap<String, u32> = HashMap::new();
    for r in store.list_responsibilities().await? {
        let h = sla_hours
            .entry(r.resource)
            .or_insert(r.refresh_interval_hours);
        *h = (*h).min(r.refresh_interval_hours);
    }
    Ok(Compiled {
        set: PolicySet::compile(input),
        published,
        sla_hours,
    })
}

impl Policies {
    /// Compiles the lists in the store.
    pub async fn load(store: &dyn Store) -> tongban_catalog::Result<Policies> {
        Ok(Policies {
            current: Arc::new(RwLock::new(Arc::new(compile(store).await?))),
        })
    }

    /// Recompiles from the store and swaps the new set in.
    pub async fn reload(&self, store: &dyn Store) -> tongban_catalog::Result<()> {
        let compiled = Arc::new(compile(store).await?);
        *self.current.write().expect("policy lock") = compiled;
        Ok(())
    }

    fn compiled(&self) -> Arc<Compiled> {
        self.current.read().expect("policy lock").clone()
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<Compiled> {
        self.compiled()
    }

    pub fn is_published(&self, resource: &str) -> bool {
        self.compiled().is_published(resource)
    }

    /// [`Compiled::within_sla`] of the set in force now.
    pub fn within_sla(
        &self,
        resource: &str,
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<bool> {
        self.compiled().within_sla(resource, as_of, now)
    }

    /// Lists compiled from what is given, not read from a store: every
    /// resource in `input` counts as published.
    pub fn from_input(
        input: tongban_policies::PolicyInput,
        sla_hours: HashMap<String, u32>,
    ) -> Policies {
        let published = input.resources.iter().map(|r| r.code.clone()).collect();
        Policies {
            current: Arc::new(RwLock::new(Arc::new(Compiled {
                set: PolicySet::compile(input),
                published,
                sla_hours,
            }))),
        }
    }

    /// Swaps in a new set compiled from `input` (as [`Policies::from_input`]).
    pub fn replace(&self, input: tongban_policies::PolicyInput) {
        let next = Policies::from_input(input, self.compiled().sla_hours.clone());
        *self.current.write().expect("policy lock") = next.compiled();
    }
}

impl Compiled {
    pub fn is_published(&self, resource: &str) -> bool {
        self.published.contains(resource)
    }

    /// Whether data published at `as_of` is within the provider's refresh
    /// promise at `now`; `None` when no responsibility covers the resource.
    pub fn within_sla(
        &self,
        resource: &str,
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<bool> {
        let hours = *self.sla_hours.get(resource)?;
        Some(now <= as_of + Duration::hours(i64::from(hours)))
    }
}

impl std::ops::Deref for Compiled {
    type Target = PolicySet;
    fn deref(&self) -> &PolicySet {
        &self.set
    }
}
