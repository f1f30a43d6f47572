//! End-to-end tests: they start the real hub (in-process on 127.0.0.1:0, or
//! the `tongban` binary itself) and talk to it over HTTP.
//!
//! - [`audit_proofs`]: signed checkpoints of the audit log: proofs a
//!   third party's verifier accepts, a cut-off or rewritten log caught;
//! - [`catalog_api`]: the directory API against demo data, on the embedded
//!   store and on the machine's PostgreSQL;
//! - [`cli`]: the `tongban` binary: `demo`, `catalog`, `config check`, `datagen`;
//! - [`common`]: the `Hub` harness and the helpers every module shares
//!   (answers checked, Parquet read back, Flight, needs and subscriptions,
//!   a webhook endpoint, the `tongban` binary);
//! - [`console_browser`]: the console in headless Chromium (playwright-core);
//! - [`console_pages`]: the console's pages over HTTP: names beside codes;
//! - [`delivery`]: subscriptions: the API, Delta Sharing over HTTP, webhook
//!   and PostgreSQL push, negative entries and revoked needs on every channel;
//! - [`every_path`]: one negative entry stops its item on every release
//!   path (lookup, verify, locate, stream, Flight, Delta Sharing, push), and
//!   the audit log says so;
//! - [`lists_api`]: the three lists, the review workflow, `explain`;
//! - [`lookup_api`]: lookup and verification with policy, masks and row filters;
//! - [`objections`]: objections to records: marked on lookups and
//!   verifications at once, a deadline across holidays, the provider's
//!   answer, closed by a version that really changed the value;
//! - [`python_clients`]: the official Delta Sharing and pyarrow Flight
//!   clients read a subscription (a virtualenv from `tests/python/`);
//! - [`replicas`]: two `tongban serve` processes on one PostgreSQL catalog
//!   and one S3 store (s3s-fs): versions and negative entries reach the
//!   other replica within 2 s, `/ready` and `/metrics`, a replica killed
//!   under load loses nothing;
//! - [`data_use`]: the data-use record (`GET /v1/uses`): the portal sees
//!   its user's uses (or a represented company's) and nothing else, covert
//!   needs withheld until their date, paging, periods, queries recorded;
//! - [`deploy_files`]: the Kubernetes, compose, container and Grafana files
//!   in `deploy/` name real config keys, ports, probe paths and metrics;
//! - [`services`]: interface sharing: a provider's API (a real HTTP server in
//!   the test) called through the hub: policy, masks, the negative list,
//!   timeouts, the circuit breaker, limits, the cache, a disabled service,
//!   audited request and response hashes, invalid definitions;
//! - [`sync_runs`]: sync runs from a provider's PostgreSQL or MariaDB table:
//!   the quality gate, incremental merges, schema drift, a killed run, the
//!   schedule, transforms, the `tongban sync` CLI;
//! - [`tls_api`]: HTTPS and client certificates (mTLS).

mod audit_proofs;
mod catalog_api;
mod cli;
mod common;
mod console_browser;
mod console_pages;
mod data_use;
mod delivery;
mod deploy_files;
mod every_path;
mod lists_api;
mod lookup_api;
mod objections;
mod python_clients;
mod replicas;
mod services;
mod sync_runs;
mod tls_api;
