//! Locks that outlive a panic.

use std::sync::{Mutex, MutexGuard};

/// Takes `mutex` even when a thread panicked while holding it: the values the
/// module keeps behind its locks are replaced or pushed whole, never left
/// half-changed, so a poisoned lock still guards consistent data.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
