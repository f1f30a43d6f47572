//! Policy vocabulary and (from the lists issue on) the pure decision engine.
//!
//! This crate decides; the hub enforces. It has no IO, reads no clock (the time of
//! a request comes in with the request) and knows nothing of tokio, so every data
//! path — lookup, verify, stream, batch, Delta Sharing, Flight, push — can call the
//! same code and tests can drive it exhaustively.
//!
//! # Layout
//! - [`vocab`]: share types (共享类型) and sensitivity levels, the words the
//!   directory and the three lists are written in.
//! - [`ids`]: the natural keys of the base libraries — citizen ID numbers
//!   (GB 11643) and unified social credit codes (GB 32100) — with their
//!   check-digit rules. Keys that fail their check digit are rejected before any
//!   lookup, so the rules live here, beside the decisions that depend on them.
//!
//! Still to come (see the lists issue): needs, responsibility and negative lists,
//! `decide(&PolicySet, &Request) -> Decision`, and Arrow masking helpers.

pub mod ids;
pub mod vocab;

pub use vocab::{Sensitivity, ShareType};
