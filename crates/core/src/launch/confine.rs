//! Confining a running daemon: a new root directory, no core dumps.

use crate::errors::{SysError, SysResult, WithPath};
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{chdir, chroot};

/// `chroot(dir)`, then `chdir("/")`: a working directory outside the new root
/// would be a way out of it.
pub fn change_root(dir: &str) -> SysResult<()> {
    chroot(dir).at("chroot", dir)?;
    chdir("/").at("chdir", "/")
}

/// No core file, whatever `core_pattern` says: a core limit of 0 (hard too,
/// so the process cannot raise it again), and not dumpable, because the
/// kernel ignores the limit when `core_pattern` pipes to a program. `execve()`
/// makes a process dumpable again, so the daemon calls this itself.
pub fn prevent_core_dumps() -> SysResult<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| SysError::new(e, "setrlimit"))?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_dumpable(false).map_err(|e| SysError::new(e, "prctl"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroot_to_a_missing_directory_names_it() {
        let e = change_root("/nonexistent-daemon-root").unwrap_err();
        assert_eq!(
            e.message(),
            "ENOENT: no such file or directory, chroot '/nonexistent-daemon-root'"
        );
    }
}
