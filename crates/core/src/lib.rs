//! The domain of `daemon`, shared by its two programs: the Node addon (the
//! top-level package, thin napi bindings) and the supervisor executable
//! (`crates/supervisor`). It knows nothing of Node or napi.
//!
//! - `pidfile`: the single-instance lock, the pid file, who holds them.
//! - `operator`: the verified holder, pinned, for signals and waits.
//! - `launch`: from a plan to a running daemon (the fenced fork/exec child,
//!   readiness, notify, privileges), or the same steps in place.
//! - `output`: log files, standard streams, syslog.
//! - `sockets`: listening sockets, bound or passed; `socket_file`: a Unix
//!   socket's file, made and removed through the path walk.
//! - `path_walk`, `fileid`: how files are reached and told apart.
//! - `state_dir`: the state directory root trusts, and its records.
//! - `sys`: one safe wrapper per raw system call; `errors`: system errors.

pub mod errors;
pub mod fileid;
pub mod launch;
pub mod operator;
pub mod output;
pub mod path_walk;
pub mod pidfile;
/// Test directories removed when dropped, for this crate's tests and the supervisor's.
#[cfg(any(test, feature = "scratch"))]
pub mod scratch;
pub mod socket_file;
pub mod sockets;
pub mod state_dir;
pub mod sync;
pub mod sys;
