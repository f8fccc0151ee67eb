//! Where a daemon's output goes: log files no other user can redirect
//! (`logfile`), the standard streams (`stdio`), syslog (`syslog`) and the
//! streams routed to it (`syslog_stdio`); and a log opened to be printed
//! (`log_read`).

pub mod handover;
pub mod log_read;
pub mod logfile;
pub mod stdio;
pub mod syslog;
pub mod syslog_stdio;
