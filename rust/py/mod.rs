//! PyO3 bindings: one file per concept, each with a `register` function.

use pyo3::prelude::*;

mod accumulator;
mod data;
mod errors;
mod queue;
mod quiet_wait;
mod watchdog;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    accumulator::register(m)?;
    queue::register(m)?;
    watchdog::register(m)?;
    data::register(m)?;
    Ok(())
}
