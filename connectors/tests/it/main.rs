//! The connectors' one integration test binary: the conformance suite, and
//! each connector's own tests against real systems (PostgreSQL and MariaDB
//! on 127.0.0.1, local files, a local HTTP server).

mod conformance;
mod file;
mod http;
mod mysql;
mod postgres;
