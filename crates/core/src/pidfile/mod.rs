//! The single-instance lock and pid file: what they are (`format`), taking
//! them (`lockfile`), a supervisor's lock handed on to its generations
//! (`supervised`), and who holds them as the kernel sees it (`holder`).

pub mod format;
pub mod holder;
pub mod lockfile;
pub mod supervised;
