//! The store conformance suite: every test runs against the embedded SQLite
//! store and against the real PostgreSQL on the machine (`TONGBAN_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`), each in a fresh schema.
//! A PostgreSQL that cannot be reached fails the tests: they never skip.

mod changes;
mod lists;
mod objections;
mod store;
mod subscriptions;
mod sync;
