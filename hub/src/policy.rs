//! The hub's copy of the compiled lists: one [`PolicySet`] that every request
//! reads, swapped whole when the lists or the directory change. Readers take
//! an `Arc` and never wait for a rebuild.

use std::sync::{Arc, RwLock};
use tongban_catalog::Store;
use tongban_policies::PolicySet;

#[derive(Clone)]
pub struct Policies {
    current: Arc<RwLock<Arc<PolicySet>>>,
}

impl Policies {
    /// Compiles the lists in the store.
    pub async fn load(store: &dyn Store) -> tongban_catalog::Result<Policies> {
        let set = PolicySet::compile(store.policy_input().await?);
        Ok(Policies {
            current: Arc::new(RwLock::new(Arc::new(set))),
        })
    }

    /// Recompiles from the store and swaps the new set in.
    pub async fn reload(&self, store: &dyn Store) -> tongban_catalog::Result<()> {
        let set = Arc::new(PolicySet::compile(store.policy_input().await?));
        *self.current.write().expect("policy lock") = set;
        Ok(())
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.read().expect("policy lock").clone()
    }
}
