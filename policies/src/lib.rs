//! The policy vocabulary and the one decision engine every data path calls.
//!
//! This crate decides; the hub enforces. It has no IO, reads no clock (the time
//! of a request comes in with the request) and knows nothing of tokio, so every
//! data path — lookup, verify, stream, batch, Delta Sharing, Flight, push — can
//! call the same code and tests can drive it exhaustively.
//!
//! # Layout
//! - [`vocab`]: share types (共享类型) and sensitivity levels;
//! - [`ids`]: citizen ID (GB 11643) and credit code (GB 32100) check digits;
//! - [`lists`]: needs, responsibilities and negative entries as decisions see
//!   them, and the directory slice a decision needs;
//! - [`decide`]: [`PolicySet`] compiled from the lists, and
//!   [`PolicySet::decide`] — the single decision point;
//! - [`mask`]: masking methods (citizen ID, name, phone, address, hash, …);
//! - [`enforce`]: a decision applied to Arrow batches — projection, masking,
//!   row filters;
//! - [`calendar`]: working days, for review deadlines.

pub mod calendar;
pub mod decide;
pub mod enforce;
pub mod error;
pub mod ids;
pub mod lists;
pub mod mask;
pub mod vocab;

pub use decide::{Decision, ItemDecision, PolicySet, Release, Request, Rule};
pub use enforce::{FilterOp, Reveal, RowFilter};
pub use error::{Error, Result};
pub use lists::{Mode, Need, NeedStatus, NegativeEntry, PolicyInput, Responsibility};
pub use mask::Mask;
pub use vocab::{Sensitivity, ShareType};
