//! What the kernel tells of another process without `/proc` where there is
//! none: its resident memory, and whether it has a given file open.

use crate::fileid::FileId;
use nix::errno::Errno;
use nix::unistd::Pid;

/// The resident memory of process `pid`, in bytes: `/proc/PID/statm` on
/// Linux, `proc_pidinfo()` on macOS, the `kern.proc.pid` sysctl on FreeBSD.
pub fn resident_bytes(pid: Pid) -> nix::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
        let pages: u64 = statm
            .split(' ')
            .nth(1)
            .and_then(|field| field.parse().ok())
            .ok_or(Errno::EIO)?;
        Ok(pages * page_size())
    }
    #[cfg(target_os = "macos")]
    {
        use nix::libc;
        // SAFETY: a plain C struct, zero is a valid value; filled by the kernel.
        let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
        let info_ptr: *mut libc::proc_taskinfo = &mut info;
        // SAFETY: the kernel writes at most `size` bytes into `info`.
        let got = unsafe {
            libc::proc_pidinfo(
                pid.as_raw(),
                libc::PROC_PIDTASKINFO,
                0,
                info_ptr.cast(),
                size,
            )
        };
        if got != size {
            return Err(if got <= 0 { Errno::last() } else { Errno::EIO });
        }
        Ok(info.pti_resident_size)
    }
    #[cfg(target_os = "freebsd")]
    {
        use nix::libc;
        let mut name = [
            libc::CTL_KERN,
            libc::KERN_PROC,
            libc::KERN_PROC_PID,
            pid.as_raw(),
        ];
        // SAFETY: a plain C struct, zero is a valid value; filled by the kernel.
        let mut info: libc::kinfo_proc = unsafe { std::mem::zeroed() };
        let mut size = std::mem::size_of::<libc::kinfo_proc>();
        let info_ptr: *mut libc::kinfo_proc = &mut info;
        // SAFETY: the kernel writes at most `size` bytes into `info`.
        let done = unsafe {
            libc::sysctl(
                name.as_mut_ptr(),
                4,
                info_ptr.cast(),
                &mut size,
                std::ptr::null(),
                0,
            )
        };
        Errno::result(done)?;
        if size == 0 {
            return Err(Errno::ESRCH);
        }
        Ok(info.ki_rssize as u64 * page_size())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
    {
        let _ = pid;
        Err(Errno::ENOSYS)
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as u64)
}

/// Whether `has_open` can tell on this system.
pub const CAN_LIST_OPEN_FILES: bool = cfg!(any(target_os = "linux", target_os = "macos"));

/// Whether process `pid` has the file `file` (device, inode) open: its
/// `/proc/PID/fd` on Linux, `proc_pidinfo()` on macOS (`EPERM` for another
/// user's process, unless root); `ENOSYS` elsewhere.
pub fn has_open(pid: Pid, file: FileId) -> nix::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        let to_errno = |e: std::io::Error| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(to_errno)?;
        Ok(entries.flatten().any(|entry| {
            nix::sys::stat::stat(&entry.path()).is_ok_and(|st| crate::fileid::id_of(&st) == file)
        }))
    }
    #[cfg(target_os = "macos")]
    {
        macos::has_open(pid, file)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = (pid, file);
        Err(Errno::ENOSYS)
    }
}

/// libproc's descriptor listing; `vnode_fdinfo` is sys/proc_info.h's, which
/// the libc crate leaves out.
#[cfg(target_os = "macos")]
mod macos {
    use super::*;
    use nix::libc::{self, c_int, c_void};
    use std::mem::size_of;

    const PROC_PIDFDVNODEINFO: c_int = 1;

    #[repr(C)]
    struct ProcFileInfo {
        fi_openflags: u32,
        fi_status: u32,
        fi_offset: libc::off_t,
        fi_type: i32,
        fi_guardflags: u32,
    }

    #[repr(C)]
    struct VnodeFdInfo {
        pfi: ProcFileInfo,
        pvi: libc::vnode_info,
    }

    pub fn has_open(pid: Pid, (dev, ino): FileId) -> nix::Result<bool> {
        let pid = pid.as_raw();
        // SAFETY: a null buffer asks for the size the list needs.
        let needed =
            unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
        if needed <= 0 {
            return Err(Errno::last());
        }
        // Room for descriptors opened meanwhile.
        let room = needed as usize / size_of::<libc::proc_fdinfo>() + 32;
        let mut fds: Vec<libc::proc_fdinfo> = Vec::with_capacity(room);
        let bytes = (room * size_of::<libc::proc_fdinfo>()) as c_int;
        // SAFETY: the kernel writes at most `bytes` bytes into the vector's buffer.
        let got = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDLISTFDS,
                0,
                fds.as_mut_ptr().cast(),
                bytes,
            )
        };
        if got <= 0 {
            return Err(Errno::last());
        }
        // SAFETY: the kernel filled `got` bytes of whole entries.
        unsafe { fds.set_len(got as usize / size_of::<libc::proc_fdinfo>()) };
        for fd in fds
            .iter()
            .filter(|fd| fd.proc_fdtype == libc::PROX_FDTYPE_VNODE as u32)
        {
            // SAFETY: plain C structs, zero is a valid value; filled by the kernel.
            let mut info: VnodeFdInfo = unsafe { std::mem::zeroed() };
            let size = size_of::<VnodeFdInfo>() as c_int;
            let info_ptr: *mut VnodeFdInfo = &mut info;
            // SAFETY: the kernel writes at most `size` bytes into `info`.
            let got = unsafe {
                libc::proc_pidfdinfo(
                    pid,
                    fd.proc_fd,
                    PROC_PIDFDVNODEINFO,
                    info_ptr.cast::<c_void>(),
                    size,
                )
            };
            // A descriptor closed meanwhile is skipped.
            let stat = &info.pvi.vi_stat;
            // `dev` is macOS's signed st_dev widened: its low 32 bits are the device.
            if got == size && dev as u32 == stat.vst_dev && stat.vst_ino == ino {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_memory_and_has_its_files_open() {
        let me = Pid::this();
        let rss = resident_bytes(me).unwrap();
        assert!(rss > 1024 * 1024 && rss < 1 << 40, "{rss}");
        let path = std::env::temp_dir().join(format!("daemon-proc-info-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let id = crate::fileid::id_of(&nix::sys::stat::fstat(&file).unwrap());
        assert_eq!(has_open(me, id), Ok(true));
        drop(file);
        assert_eq!(has_open(me, id), Ok(false));
        std::fs::remove_file(&path).unwrap();
        let gone = Pid::from_raw(i32::MAX);
        assert!(has_open(gone, id).is_err());
        assert!(resident_bytes(gone).is_err());
    }
}
