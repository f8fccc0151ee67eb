//! The Unix socket files the launcher bound for the service: removed when the
//! service ends, but only the very files that were bound (a name replaced
//! since, by a new service's socket or anything else, is left alone).

use daemon_core::fileid::{id_of, FileId};
use nix::sys::stat::lstat;
use nix::unistd::unlink;

pub struct SocketFiles(Vec<(String, FileId)>);

impl SocketFiles {
    /// Notes which file each path is now.
    pub fn note(paths: &[String]) -> SocketFiles {
        let id = |path: &String| lstat(path.as_str()).ok().map(|st| id_of(&st));
        SocketFiles(
            paths
                .iter()
                .filter_map(|path| Some((path.clone(), id(path)?)))
                .collect(),
        )
    }

    pub fn remove(&self) {
        for (path, id) in &self.0 {
            if lstat(path.as_str()).is_ok_and(|st| id_of(&st) == *id) {
                let _ = unlink(path.as_str());
            }
        }
    }
}
