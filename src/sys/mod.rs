//! Safe wrappers, one per raw system call that nix does not offer.

#[cfg(target_os = "linux")]
pub mod pidfd;
