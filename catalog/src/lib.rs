//! The resource directory (数据资源目录) of Tongban.
//!
//! # Layout
//! - [`model`]: departments, resources and their data items, dataset versions,
//!   tokens: the records, with their input (`*Spec`) and stored shapes.
//! - [`validate`]: the directory's rules that need no IO (codes, types, share
//!   types and their legal basis); the store calls them before writing.
//! - [`store`]: the [`Store`] trait, the one interface the hub uses.
//! - [`sql`]: [`SqlStore`], the store over SQLite (the embedded default, one file
//!   in the data directory) or PostgreSQL (production), same migrations
//!   (`catalog/migrations/`).
//! - [`exchange`]: the directory and the three lists as JSON and CSV files,
//!   for export and import;
//! - [`lists`]: needs (with their review workflow and deadlines),
//!   responsibilities (with refresh compliance) and negative entries;
//!   `sql::lists` stores them.
//!
//! - [`sync`]: sync jobs (source → resource, mode, schedule, watermark) and
//!   their run history; `sql::sync` stores them.
//!
//! - [`subscriptions`]: subscriptions (a consumer's standing order for a
//!   resource under a bulk need, with its delivery channel and cursor) and
//!   the push outbox (deliveries); `sql::subscriptions` stores them.
//! - [`objections`]: objections to records (异议核实与纠错): their lifecycle,
//!   deadlines in working days, history; `sql::objections` stores them.
//! - [`changes`]: the change counters and the [`changes::ChangeFeed`] that
//!   tells a replica what changed (PostgreSQL `LISTEN/NOTIFY`, catch-up reads).
//! - [`services`]: provider APIs called through the hub (接口共享): endpoints,
//!   limits, breaker and retry settings, OpenAPI import; `sql::services`
//!   stores them.

pub mod changes;
pub mod error;
pub mod exchange;
pub mod list_exchange;
pub mod lists;
pub mod model;
pub mod objections;
pub mod services;
pub mod sql;
pub mod store;
pub mod subscriptions;
pub mod sync;
pub mod validate;

pub use error::{Error, Result};
pub use model::*;
pub use sql::SqlStore;
pub use store::Store;
