//! A failed system call, described the way Node's own `fs` errors describe one.

use nix::errno::Errno;
use std::borrow::Cow;

/// What failed (`syscall`), why (`errno`) and on what (`path`), so that the
/// JavaScript edge can build an `Error` with `code`, `errno`, `syscall` and `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    pub errno: Errno,
    pub syscall: &'static str,
    pub path: Option<String>,
    /// Replaces the errno's own text where it alone would mislead
    /// (e.g. EINVAL for a pid file that is a device).
    pub detail: Option<Cow<'static, str>>,
    /// What this system cannot do at all (`ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`).
    pub unavailable: Option<&'static str>,
}

/// The code of what this system cannot do, as Node's own.
pub const UNAVAILABLE: &str = "ERR_FEATURE_UNAVAILABLE_ON_PLATFORM";

pub type SysResult<T> = Result<T, SysError>;

impl SysError {
    pub fn new(errno: Errno, syscall: &'static str) -> Self {
        SysError {
            errno,
            syscall,
            path: None,
            detail: None,
            unavailable: None,
        }
    }

    /// `feature` ("verifying a pid file's holder") cannot be had on this
    /// system: `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`, naming it and the system.
    pub fn unavailable(feature: &'static str, syscall: &'static str) -> Self {
        SysError {
            unavailable: Some(feature),
            ..SysError::new(Errno::ENOTSUP, syscall)
        }
    }

    pub fn with_path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The errno's symbolic name, e.g. `"ENOENT"`, or `UNAVAILABLE`.
    pub fn code(&self) -> String {
        match self.unavailable {
            Some(_) => UNAVAILABLE.to_owned(),
            None => format!("{:?}", self.errno),
        }
    }

    /// Why it failed: the detail, else the errno's text.
    pub fn text(&self) -> String {
        match &self.detail {
            Some(detail) => detail.to_string(),
            None => describe(self.errno),
        }
    }

    /// Node's shape: `ENOENT: no such file or directory, open '/x'`; for what
    /// the system cannot do, the module's: `daemon: FEATURE is not available
    /// on macOS`, and the path.
    pub fn message(&self) -> String {
        if let Some(feature) = self.unavailable {
            let on = format!("daemon: {feature} is not available on {}", system_name());
            return match &self.path {
                Some(path) => format!("{on} ('{path}')"),
                None => on,
            };
        }
        let text = self.text();
        match &self.path {
            Some(path) => format!("{}: {}, {} '{}'", self.code(), text, self.syscall, path),
            None => format!("{}: {}, {}", self.code(), text, self.syscall),
        }
    }
}

/// This system's name as its maker writes it.
fn system_name() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macOS",
        "freebsd" => "FreeBSD",
        "linux" => "Linux",
        other => other,
    }
}

/// The errno's text in libuv's lower-case style ("no such file or directory").
fn describe(errno: Errno) -> String {
    errno.desc().to_lowercase()
}

/// Adds the path to the error of a call on that path.
pub trait WithPath<T> {
    fn at(self, syscall: &'static str, path: &str) -> SysResult<T>;
}

impl<T> WithPath<T> for nix::Result<T> {
    fn at(self, syscall: &'static str, path: &str) -> SysResult<T> {
        self.map_err(|errno| SysError::new(errno, syscall).with_path(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_nodes_shape() {
        let e = SysError::new(Errno::ENOENT, "open").with_path("/x/y.pid");
        assert_eq!(e.code(), "ENOENT");
        assert_eq!(
            e.message(),
            "ENOENT: no such file or directory, open '/x/y.pid'"
        );
    }

    #[test]
    fn message_without_path_and_with_detail() {
        let e = SysError::new(Errno::EPERM, "setsid");
        assert_eq!(e.message(), "EPERM: operation not permitted, setsid");
        let e = SysError::new(Errno::EINVAL, "open")
            .with_path("/dev/null")
            .with_detail("not a regular file");
        assert_eq!(e.message(), "EINVAL: not a regular file, open '/dev/null'");
    }

    #[test]
    fn what_the_system_cannot_do_names_the_feature_and_the_system() {
        let e = SysError::unavailable("a dance", "dance").with_path("/x");
        assert_eq!(e.code(), "ERR_FEATURE_UNAVAILABLE_ON_PLATFORM");
        let on = format!("daemon: a dance is not available on {}", system_name());
        assert_eq!(e.message(), format!("{on} ('/x')"));
    }
}
