//! Where a daemon's output goes: log files no other user can redirect
//! (`logfile`), the standard streams (`stdio`), syslog (`syslog`) and the
//! streams routed to it (`syslog_stdio`).

pub mod handover;
pub mod logfile;
pub mod stdio;
pub mod syslog;
pub mod syslog_stdio;
