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
}

pub type SysResult<T> = Result<T, SysError>;

impl SysError {
    pub fn new(errno: Errno, syscall: &'static str) -> Self {
        SysError {
            errno,
            syscall,
            path: None,
            detail: None,
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

    /// The errno's symbolic name, e.g. `"ENOENT"`.
    pub fn code(&self) -> String {
        format!("{:?}", self.errno)
    }

    /// Why it failed: the detail, else the errno's text.
    pub fn text(&self) -> String {
        match &self.detail {
            Some(detail) => detail.to_string(),
            None => describe(self.errno),
        }
    }

    /// Node's shape: `ENOENT: no such file or directory, open '/x'`.
    pub fn message(&self) -> String {
        let text = self.text();
        match &self.path {
            Some(path) => format!("{}: {}, {} '{}'", self.code(), text, self.syscall, path),
            None => format!("{}: {}, {}", self.code(), text, self.syscall),
        }
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
}
