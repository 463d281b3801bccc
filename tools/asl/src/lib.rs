//! A local executor for Amazon States Language state machines written with JSONPath.
//!
//! It runs a definition step by step on a virtual clock (Waits and retry back-off advance the
//! clock instead of sleeping) and hands Task states to a [`TaskRunner`], so the same definition
//! that production runs can be replayed offline with real handlers or with mocks.

pub mod choice;
pub mod definition;
pub mod diagram;
pub mod error;
pub mod executor;
pub mod intrinsics;
pub mod jsonata;
pub mod mocks;
pub mod paths;
pub mod payload;

pub use definition::Definition;
pub use error::{Refused, StatesError};
pub use executor::{ExecutionSettings, Executor, HistoryEvent, Outcome, Status, TaskCall, TaskRunner, TraceEvent};
