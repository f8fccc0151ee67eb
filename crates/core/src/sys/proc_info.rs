//! What the kernel tells of another process, with `/proc` where there is one
//! (Linux) and without it elsewhere: its parent, age and CPU time, its
//! resident memory, and whether it has a given file open.

use crate::fileid::FileId;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::time::Duration;

/// A live process (not a zombie) as `ps` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStat {
    pub ppid: u32,
    /// When it started, in the system's own terms: the same text for the same
    /// process, another for a later one with its pid.
    pub start: String,
    /// How long it has run.
    pub age: Duration,
    /// The CPU time it has used, in user and system mode; `None` where that
    /// cannot be read (macOS: another user's process, unless root).
    pub cpu: Option<Duration>,
}

/// Process `pid`, from `/proc/PID/stat` on Linux, `proc_pidinfo()` on macOS,
/// the `kern.proc.pid` sysctl on FreeBSD; `ESRCH` for one that is gone or a
/// zombie.
pub fn process_stat(pid: Pid) -> nix::Result<ProcessStat> {
    #[cfg(target_os = "linux")]
    {
        let text = read_proc(&format!("/proc/{pid}/stat"))?;
        // After the command, which may hold spaces and parentheses.
        let rest = text
            .rfind(')')
            .and_then(|end| text.get(end + 2..))
            .ok_or(Errno::EIO)?;
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let (Some(&state), Some(ppid), Some(&start), Some(utime), Some(stime)) = (
            fields.first(),
            fields.get(1).and_then(|f| f.parse().ok()),
            fields.get(19),
            ticks(11),
            ticks(12),
        ) else {
            return Err(Errno::EIO);
        };
        if state == "Z" {
            return Err(Errno::ESRCH);
        }
        let started_ticks: u64 = start.parse().map_err(|_| Errno::EIO)?;
        let uptime: f64 = read_proc("/proc/uptime")?
            .split(' ')
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or(Errno::EIO)?;
        // USER_HZ: 100 in the kernel's ABI on every Linux architecture.
        let age = Duration::from_secs_f64((uptime - started_ticks as f64 / 100.0).max(0.0));
        let cpu = Some(Duration::from_millis((utime + stime) * 10));
        let start = start.to_owned();
        Ok(ProcessStat {
            ppid,
            start,
            age,
            cpu,
        })
    }
    #[cfg(target_os = "macos")]
    {
        use nix::libc;
        let info: libc::proc_bsdinfo = macos::pid_info(pid, libc::PROC_PIDTBSDINFO)?;
        if info.pbi_status == libc::SZOMB {
            return Err(Errno::ESRCH);
        }
        let (secs, micros) = (info.pbi_start_tvsec, info.pbi_start_tvusec);
        let task = macos::pid_info::<libc::proc_taskinfo>(pid, libc::PROC_PIDTASKINFO);
        Ok(ProcessStat {
            ppid: info.pbi_ppid,
            start: format!("{secs}.{micros:06}"),
            age: since_epoch(secs, micros),
            cpu: task
                .ok()
                .map(|t| macos::mach_time(t.pti_total_user + t.pti_total_system)),
        })
    }
    #[cfg(target_os = "freebsd")]
    {
        let info = freebsd::kinfo_proc(pid)?;
        if info.ki_stat == nix::libc::SZOMB {
            return Err(Errno::ESRCH);
        }
        let (secs, micros) = (info.ki_start.tv_sec as u64, info.ki_start.tv_usec as u64);
        Ok(ProcessStat {
            ppid: info.ki_ppid as u32,
            start: format!("{secs}.{micros:06}"),
            age: since_epoch(secs, micros),
            // Microseconds, as ps(1)'s TIME.
            cpu: Some(Duration::from_micros(info.ki_runtime)),
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
    {
        let _ = pid;
        Err(Errno::ENOSYS)
    }
}

/// The resident memory of process `pid`, in bytes: `/proc/PID/statm` on
/// Linux, `proc_pidinfo()` on macOS, the `kern.proc.pid` sysctl on FreeBSD.
pub fn resident_bytes(pid: Pid) -> nix::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        let statm = read_proc(&format!("/proc/{pid}/statm"))?;
        let pages: u64 = statm
            .split(' ')
            .nth(1)
            .and_then(|field| field.parse().ok())
            .ok_or(Errno::EIO)?;
        Ok(pages * page_size())
    }
    #[cfg(target_os = "macos")]
    {
        let info: nix::libc::proc_taskinfo = macos::pid_info(pid, nix::libc::PROC_PIDTASKINFO)?;
        Ok(info.pti_resident_size)
    }
    #[cfg(target_os = "freebsd")]
    {
        Ok(freebsd::kinfo_proc(pid)?.ki_rssize as u64 * page_size())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
    {
        let _ = pid;
        Err(Errno::ENOSYS)
    }
}

/// Whether `has_open` can tell on this system.
pub const CAN_LIST_OPEN_FILES: bool = cfg!(any(target_os = "linux", target_os = "macos"));

/// Whether process `pid` has the file `file` (device, inode) open: its
/// `/proc/PID/fd` on Linux, `proc_pidinfo()` on macOS (`EPERM` for another
/// user's process, unless root); `ENOSYS` elsewhere.
pub fn has_open(pid: Pid, file: FileId) -> nix::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(errno_of)?;
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

#[cfg(target_os = "linux")]
fn errno_of(e: std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// A /proc file; a process that is gone is `ESRCH`.
#[cfg(target_os = "linux")]
fn read_proc(path: &str) -> nix::Result<String> {
    std::fs::read_to_string(path).map_err(|e| match errno_of(e) {
        Errno::ENOENT => Errno::ESRCH,
        errno => errno,
    })
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as u64)
}

/// The time since `secs` and `micros` after the epoch (none if that is later).
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
fn since_epoch(secs: u64, micros: u64) -> Duration {
    let started = std::time::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
    std::time::SystemTime::now()
        .duration_since(started)
        .unwrap_or_default()
}

/// libproc. `vnode_fdinfo` is sys/proc_info.h's, which the libc crate
/// leaves out.
#[cfg(target_os = "macos")]
mod macos {
    use super::*;
    use nix::libc::{self, c_int, c_void};
    use std::mem::size_of;

    /// `proc_pidinfo(pid, flavor)` into a `T`, whole or `ESRCH`.
    pub fn pid_info<T>(pid: Pid, flavor: c_int) -> nix::Result<T> {
        // SAFETY: the libproc structs are plain C structs; zero is valid.
        let mut info: T = unsafe { std::mem::zeroed() };
        let size = size_of::<T>() as c_int;
        let info_ptr: *mut T = &mut info;
        // SAFETY: the kernel writes at most `size` bytes into `info`.
        let got = unsafe { libc::proc_pidinfo(pid.as_raw(), flavor, 0, info_ptr.cast(), size) };
        match got {
            _ if got == size => Ok(info),
            0 => Err(Errno::last()),
            _ => Err(Errno::ESRCH),
        }
    }

    #[repr(C)]
    struct MachTimebaseInfo {
        numer: u32,
        denom: u32,
    }

    extern "C" {
        /// libSystem's; the libc crate's is deprecated in favour of another crate.
        fn mach_timebase_info(info: *mut MachTimebaseInfo) -> libc::kern_return_t;
    }

    /// `ticks` of Mach's absolute time (the unit of `proc_taskinfo`'s times:
    /// nanoseconds on Intel, not on Apple silicon) as a duration.
    pub fn mach_time(ticks: u64) -> Duration {
        let mut base = MachTimebaseInfo { numer: 1, denom: 1 };
        // SAFETY: the kernel fills the two integers.
        let got = unsafe { mach_timebase_info(&mut base) };
        if got != 0 || base.denom == 0 {
            base = MachTimebaseInfo { numer: 1, denom: 1 };
        }
        let nanos = u128::from(ticks) * u128::from(base.numer) / u128::from(base.denom);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

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
        let vnodes = fds
            .iter()
            .filter(|fd| fd.proc_fdtype == libc::PROX_FDTYPE_VNODE as u32);
        for fd in vnodes {
            // SAFETY: plain C structs, zero is a valid value; filled by the kernel.
            let mut info: VnodeFdInfo = unsafe { std::mem::zeroed() };
            let size = size_of::<VnodeFdInfo>() as c_int;
            let info_ptr: *mut VnodeFdInfo = &mut info;
            // SAFETY: the kernel writes at most `size` bytes into `info`.
            let got = unsafe {
                let buffer = info_ptr.cast::<c_void>();
                libc::proc_pidfdinfo(pid, fd.proc_fd, PROC_PIDFDVNODEINFO, buffer, size)
            };
            // A descriptor closed meanwhile is skipped. `dev` is macOS's
            // signed st_dev widened: its low 32 bits are the device.
            let stat = &info.pvi.vi_stat;
            if got == size && dev as u32 == stat.vst_dev && stat.vst_ino == ino {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(target_os = "freebsd")]
mod freebsd {
    use super::*;
    use nix::libc;

    /// The `kern.proc.pid.PID` sysctl: `ESRCH` when there is no such process.
    pub fn kinfo_proc(pid: Pid) -> nix::Result<libc::kinfo_proc> {
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
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_its_parent_memory_age_and_open_files() {
        let me = Pid::this();
        let stat = process_stat(me).unwrap();
        assert_eq!(stat.ppid, nix::unistd::getppid().as_raw() as u32);
        assert!(stat.age < Duration::from_secs(3600), "{stat:?}");
        // Some CPU time, at most what all threads could have used since it started.
        let cpu = stat.cpu.unwrap();
        assert!(cpu <= stat.age * 64 + Duration::from_secs(1), "{stat:?}");
        assert_eq!(process_stat(me).unwrap().start, stat.start);
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
        assert_eq!(process_stat(gone), Err(Errno::ESRCH));
        assert_eq!(resident_bytes(gone), Err(Errno::ESRCH));
    }

    #[test]
    fn the_cpu_time_is_what_getrusage_says_and_grows_with_work() {
        use nix::sys::resource::{getrusage, UsageWho};
        let used = || {
            let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
            let micros = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
            };
            micros(usage.user_time()) + micros(usage.system_time())
        };
        let me = Pid::this();
        let cpu = || process_stat(me).unwrap().cpu.unwrap();
        let slack = Duration::from_millis(50);
        let before = used();
        let first = cpu();
        let after = used();
        assert!(
            first + slack >= before && first <= after + slack,
            "{before:?} <= {first:?} <= {after:?}"
        );
        // Work until it shows (it would never, were the time not read).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut spun = 0u64;
        while cpu() < first + Duration::from_millis(200) {
            assert!(std::time::Instant::now() < deadline, "no CPU time counted");
            for i in 0..100_000u64 {
                spun = std::hint::black_box(spun.wrapping_add(i));
            }
        }
    }

    #[test]
    fn a_zombie_is_gone_and_a_new_process_starts_anew() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let stat = process_stat(pid).unwrap();
        assert_eq!(stat.ppid, std::process::id());
        child.kill().unwrap();
        // Dead, not yet reaped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_stat(pid).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(process_stat(pid), Err(Errno::ESRCH));
        child.wait().unwrap();
    }
}
