//! Running as another user. The user database is read here, in the launcher
//! (or before the drop in the daemon): `getpwnam_r`, `getgrnam_r` and
//! `getgrouplist` take locks and open files, so none of them may run between
//! `fork()` and `execve()`. A switch is three checked calls in the only safe
//! order: supplementary groups, group, user (after `setuid()` the process
//! could no longer change its groups); here with glibc's wrappers, for a
//! running process; the child of `fork()` makes its own (`launch/child.rs`).

use crate::errors::{SysError, SysResult};
use nix::errno::Errno;
use nix::libc::{self, c_int, gid_t, uid_t};
use nix::unistd::{getegid, geteuid, getgid, getuid, setgid, setuid, Gid, Group, Uid, User};
use std::ffi::CString;

/// A user or group as `start()` was given it: a name or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Number(u32),
    Name(String),
}

/// Which database an unknown [`Id`] was looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No such user or group: the message is Node's own for `process.setuid()`.
    Unknown {
        kind: Kind,
        id: String,
    },
    Sys(SysError),
}

impl LookupError {
    pub fn message(&self) -> String {
        match self {
            LookupError::Unknown {
                kind: Kind::User,
                id,
            } => {
                format!("User identifier does not exist: {id}")
            }
            LookupError::Unknown {
                kind: Kind::Group,
                id,
            } => {
                format!("Group identifier does not exist: {id}")
            }
            LookupError::Sys(e) => e.message(),
        }
    }
}

/// Whom the daemon becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `None` when only a group was given: the user stays.
    pub uid: Option<uid_t>,
    pub gid: gid_t,
    /// The complete supplementary group list, `gid` included.
    pub groups: Vec<gid_t>,
    /// The user's name and home directory, for `USER`, `LOGNAME` and `HOME`.
    pub name: Option<String>,
    pub home: Option<String>,
}

fn unknown(kind: Kind, id: &Id) -> LookupError {
    let id = match id {
        Id::Number(n) => n.to_string(),
        Id::Name(name) => name.clone(),
    };
    LookupError::Unknown { kind, id }
}

/// A name, or failing that a string of digits as an id (as `chown` reads them).
fn number_in(name: &str) -> Option<u32> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// Looks `id` up by name (then, for a string of digits, by number) or by number.
fn find<T>(
    id: &Id,
    kind: Kind,
    syscall: &'static str,
    by_name: impl Fn(&str) -> nix::Result<Option<T>>,
    by_number: impl Fn(u32) -> nix::Result<Option<T>>,
) -> Result<T, LookupError> {
    let sys = |errno| LookupError::Sys(SysError::new(errno, syscall));
    let found = match id {
        Id::Number(n) => by_number(*n).map_err(sys)?,
        Id::Name(name) => match by_name(name).map_err(sys)? {
            Some(found) => Some(found),
            None => number_in(name)
                .map(&by_number)
                .transpose()
                .map_err(sys)?
                .flatten(),
        },
    };
    found.ok_or_else(|| unknown(kind, id))
}

fn find_user(id: &Id) -> Result<User, LookupError> {
    find(id, Kind::User, "getpwnam_r", User::from_name, |n| {
        User::from_uid(Uid::from_raw(n))
    })
}

fn find_group(id: &Id) -> Result<Gid, LookupError> {
    let group = find(id, Kind::Group, "getgrnam_r", Group::from_name, |n| {
        Group::from_gid(Gid::from_raw(n))
    })?;
    Ok(group.gid)
}

/// The groups `initgroups(name, gid)` would set: `gid` and every group of
/// `/etc/group` (or NSS) that lists the user.
fn group_list(name: &str, gid: gid_t) -> SysResult<Vec<gid_t>> {
    let name = CString::new(name).map_err(|_| SysError::new(Errno::EINVAL, "getgrouplist"))?;
    let mut groups: Vec<gid_t> = vec![0; 64];
    loop {
        let mut count = groups.len() as c_int;
        // SAFETY: `groups` has room for `count` ids; the call writes at most
        // that many and sets `count` to how many there are.
        let found = unsafe {
            libc::getgrouplist(
                name.as_ptr(),
                gid as _,
                groups.as_mut_ptr().cast(),
                &mut count,
            )
        };
        if found >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups);
        }
        // Too small: Linux says how many there are in `count`.
        let wanted = (count.max(0) as usize).max(groups.len() * 2);
        if wanted > 65536 {
            return Err(SysError::new(Errno::EINVAL, "getgrouplist"));
        }
        groups.resize(wanted, 0);
    }
}

/// Looks up whom to become: `user` with its primary group (or `group`) and its
/// supplementary groups; or, with only `group`, that group alone.
pub fn resolve(user: Option<&Id>, group: Option<&Id>) -> Result<Account, LookupError> {
    let gid = group.map(find_group).transpose()?;
    match user {
        Some(user) => {
            let user = find_user(user)?;
            let gid = gid.unwrap_or(user.gid).as_raw();
            Ok(Account {
                uid: Some(user.uid.as_raw()),
                gid,
                groups: group_list(&user.name, gid).map_err(LookupError::Sys)?,
                home: Some(user.dir.to_string_lossy().into_owned()),
                name: Some(user.name),
            })
        }
        None => {
            let gid = gid
                .ok_or_else(|| LookupError::Sys(SysError::new(Errno::EINVAL, "setgid")))?
                .as_raw();
            Ok(Account {
                uid: None,
                gid,
                groups: vec![gid],
                name: None,
                home: None,
            })
        }
    }
}

impl Account {
    /// Already this user and group: switching is a no-op (and an unprivileged
    /// process may start a daemon as itself).
    pub fn is_current(&self) -> bool {
        let uid_same = self
            .uid
            .is_none_or(|uid| getuid().as_raw() == uid && geteuid().as_raw() == uid);
        uid_same && getgid().as_raw() == self.gid && getegid().as_raw() == self.gid
    }
}

/// `dropPrivileges()` in a running process: supplementary groups, group,
/// user, each checked, in that order, in every thread (glibc's wrappers
/// synchronise them: Node has several threads, which must not stay root).
/// A no-op when already `account`.
pub fn drop_to(account: &Account) -> SysResult<()> {
    if account.is_current() {
        return Ok(());
    }
    let groups: Vec<Gid> = account
        .groups
        .iter()
        .map(|&gid| Gid::from_raw(gid))
        .collect();
    crate::sys::setgroups(&groups).map_err(|e| SysError::new(e, "setgroups"))?;
    setgid(Gid::from_raw(account.gid)).map_err(|e| SysError::new(e, "setgid"))?;
    if let Some(uid) = account.uid {
        setuid(Uid::from_raw(uid)).map_err(|e| SysError::new(e, "setuid"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_name_and_by_id() {
        let root = resolve(Some(&Id::Name("root".into())), None).unwrap();
        assert_eq!((root.uid, root.gid), (Some(0), 0));
        assert_eq!(root.name.as_deref(), Some("root"));
        assert!(root.groups.contains(&0));
        let by_id = resolve(Some(&Id::Number(0)), None).unwrap();
        assert_eq!(by_id, root);
        let digits = resolve(Some(&Id::Name("0".into())), Some(&Id::Name("0".into()))).unwrap();
        assert_eq!((digits.uid, digits.gid), (Some(0), 0));
    }

    #[test]
    fn group_replaces_the_primary_group_and_leads_the_list() {
        let nobody = User::from_name("nobody").unwrap().unwrap();
        let a = resolve(
            Some(&Id::Name("nobody".into())),
            Some(&Id::Number(0)), // root's group, which nobody is not a member of
        )
        .unwrap();
        assert_eq!((a.uid, a.gid), (Some(nobody.uid.as_raw()), 0));
        assert!(a.groups.contains(&0));
        assert!(!a.groups.contains(&nobody.gid.as_raw()) || nobody.gid.as_raw() == 0);
        let only_group = resolve(None, Some(&Id::Number(0))).unwrap();
        assert_eq!((only_group.uid, only_group.groups), (None, vec![0]));
    }

    #[test]
    fn unknown_names_say_so_in_nodes_words() {
        let e = resolve(Some(&Id::Name("no-such-user-daemon".into())), None).unwrap_err();
        assert_eq!(
            e.message(),
            "User identifier does not exist: no-such-user-daemon"
        );
        let e = resolve(None, Some(&Id::Number(4_000_000_000))).unwrap_err();
        assert_eq!(e.message(), "Group identifier does not exist: 4000000000");
        // The group is looked up first, but an unknown user is still unknown.
        let e = resolve(Some(&Id::Number(4_000_000_000)), Some(&Id::Number(0))).unwrap_err();
        assert!(matches!(
            e,
            LookupError::Unknown {
                kind: Kind::User,
                ..
            }
        ));
    }

    #[test]
    fn switching_to_oneself_is_a_no_op() {
        let me = Account {
            uid: Some(getuid().as_raw()),
            gid: getgid().as_raw(),
            groups: vec![],
            name: None,
            home: None,
        };
        assert!(me.is_current());
        assert_eq!(drop_to(&me), Ok(()));
    }
}
