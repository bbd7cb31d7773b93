//! Blocking waits that a Ctrl-C always interrupts: detached from the interpreter, and back
//! without running any Python code before the caller checks for signals.
//!
//! Why not `Python::detach`: when it re-attaches, PyO3 releases the Python references that
//! threads dropped while not attached (its "deferred decrefs", e.g. a writer thread's sink when
//! the thread ends), on the re-attaching thread. A release can run Python code (`__del__`,
//! weakref callbacks, a generator's `finally`). On the main thread with a Ctrl-C pending, that
//! code's eval loop runs the SIGINT handler, and the `KeyboardInterrupt` it raises inside a
//! finalizer is printed as "Exception ignored in ..." and lost: the `check_signals` after the
//! wait finds nothing pending, and the wait goes on (for ever without a timeout). The deferred
//! references are released at the next ordinary PyO3 call instead (any thread).

use pyo3::ffi;
use pyo3::Python;

/// Run `wait` detached from the interpreter; re-attach without running Python code.
///
/// `F: Copy` and `T: Copy` keep every Python object out of `wait`: a closure is `Copy` only if
/// all it captures is (references and plain values), and `Py<T>` / `PyErr` are not, so `wait`
/// can neither own, drop nor return one (see the SAFETY comment).
pub fn quiet_wait<F, T>(_py: Python<'_>, wait: F) -> T
where
    F: FnOnce() -> T + Copy + Send,
    T: Copy + Send,
{
    struct Reattach(*mut ffi::PyThreadState);
    impl Drop for Reattach {
        fn drop(&mut self) {
            // SAFETY: `self.0` is the thread state `PyEval_SaveThread` returned on this very
            // thread (the guard is not `Send`: it holds a raw pointer), and it is restored
            // exactly once, here, also when `wait` panics (the guard is dropped on unwinding).
            // pyo3-ffi's `PyEval_RestoreThread` guards against the interpreter exiting the
            // thread from inside (pthread_exit during finalization).
            unsafe { ffi::PyEval_RestoreThread(self.0) };
        }
    }
    // SAFETY: `_py` proves this thread is attached, which `PyEval_SaveThread` requires; the
    // guard re-attaches before this function returns or unwinds, so the caller's `Python<'_>`
    // token is valid again when it is next used. While detached, PyO3's thread-local "attached"
    // count still says attached, so nothing in `wait` may touch Python (a `Py` dropped there
    // would be decref'd without the GIL): `wait` owns and returns only `Copy` data, which no
    // Python object is, and the callers pass waits on the Rust queue's locks and condition
    // variables (`wait_flushed`, `wait_stopped`, `wait_room`, `close` with a zero timeout, which
    // joins a writer that has finished), none of which creates, clones or drops a Python object
    // on the calling thread.
    let _reattach = Reattach(unsafe { ffi::PyEval_SaveThread() });
    wait()
}
