//! tallyclerk's Rust core.
//!
//! Pure-Rust logic lives in the top-level modules and is tested by `cargo test` without Python.
//! The PyO3 bindings (feature `python`, turned on by maturin) live in [`py`] and stay thin:
//! they convert arguments, detach from the interpreter around blocking waits and map errors
//! (and any panic) to Python exceptions from `tallyclerk.errors`.

pub mod accumulator;
pub mod data;
pub mod queue;
pub mod watchdog;

#[cfg(feature = "python")]
mod py;
