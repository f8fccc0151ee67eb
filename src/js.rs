//! The JavaScript shapes of the core's values and errors, each written once
//! here, so that the core stays free of napi (the supervisor binary shares
//! it) and no struct mirrors another for napi's sake. A core type crosses
//! into JavaScript wrapped in [`Js`] (Rust lets this crate implement napi's
//! traits only for a type of its own).

use daemon_core::errors::SysError;
use daemon_core::launch::privileges::{Account, Id};
use daemon_core::launch::ready::Verdict;
use daemon_core::launch::{ListenSource, Listener, Output, Plan, Respawn};
use daemon_core::output::{syslog, syslog_stdio};
use daemon_core::pidfile::holder::Status as PidFileStatus;
use daemon_core::sockets::Address;
use napi::bindgen_prelude::*;
use napi::sys;
use std::time::Duration;

/// Throws an `Error` with `message` and the properties `fill` sets.
fn throw_with(env: &Env, message: String, fill: impl FnOnce(&mut Object) -> Result<()>) -> Error {
    let thrown = env
        .create_error(Error::new(Status::GenericFailure, message.clone()))
        .and_then(|mut object| {
            fill(&mut object)?;
            env.throw(object)
        });
    match thrown {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(err) => err,
    }
}

/// Throws `e` as Node's fs errors look: `code`, `errno`, `syscall`, `path`;
/// what the system cannot do, with only its `code` (and `path`).
pub fn throw(env: &Env, e: SysError) -> Error {
    if e.unavailable.is_some() {
        return throw_with(env, e.message(), |object| {
            object.set_named_property("code", e.code())?;
            match &e.path {
                Some(path) => object.set_named_property("path", path.as_str()),
                None => Ok(()),
            }
        });
    }
    throw_with(env, e.message(), |object| {
        object.set_named_property("code", e.code())?;
        object.set_named_property("errno", -(e.errno as i32))?;
        object.set_named_property("syscall", e.syscall)?;
        if let Some(path) = &e.path {
            object.set_named_property("path", path.as_str())?;
        }
        Ok(())
    })
}

/// Throws an `Error` with Node's `code` (no errno: not a failed system call).
pub fn throw_coded(env: &Env, code: &str, message: String) -> Error {
    throw_with(env, message, |object| {
        object.set_named_property("code", code)
    })
}

/// Throws a `RangeError` with `ERR_OUT_OF_RANGE`, in the words of Node's own checks.
fn out_of_range(env: &Env, name: &str, expected: &str, received: impl std::fmt::Display) -> Error {
    let message = format!(
        "The value of \"{name}\" is out of range. It must be {expected}. Received {received}"
    );
    match env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE")) {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(err) => err,
    }
}

/// Checks that `fds` are distinct descriptors among `allowed` (some of 0, 1,
/// 2): any other number would be used as a descriptor that may not exist.
pub fn check_fds(env: &Env, fds: &[i32], allowed: &[i32]) -> Result<()> {
    for (i, &fd) in fds.iter().enumerate() {
        if !allowed.contains(&fd) || fds[..i].contains(&fd) {
            let names: Vec<String> = allowed.iter().map(i32::to_string).collect();
            let expected = format!("distinct descriptors among {}", names.join(", "));
            return Err(out_of_range(env, "fds", &expected, fd));
        }
    }
    Ok(())
}

/// Checks that `pid` can be a process's (1 to 2^31 - 1): any other number
/// would name a group of processes, or every one, to `kill()`.
pub fn check_pid(env: &Env, name: &str, pid: u32) -> Result<()> {
    if pid == 0 || i32::try_from(pid).is_err() {
        return Err(out_of_range(env, name, ">= 1 and <= 2147483647", pid));
    }
    Ok(())
}

/// A core value in its JavaScript shape.
pub struct Js<T>(pub T);

/// Every core value is an object in JavaScript.
impl<T> TypeName for Js<T> {
    fn type_name() -> &'static str {
        "Object"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// An argument the JavaScript side has checked already, yet is not as expected.
fn invalid(what: String) -> Error {
    Error::new(Status::InvalidArg, what)
}

/// A property that must be there.
fn required<T: FromNapiValue>(object: &Object, name: &str) -> Result<T> {
    object
        .get(name)?
        .ok_or_else(|| invalid(format!("missing property `{name}`")))
}

/// A property that may be absent, undefined or null.
fn optional<T: FromNapiValue>(object: &Object, name: &str) -> Result<Option<T>> {
    Ok(object.get::<Option<T>>(name)?.flatten())
}

/// A property holding a core value, which may be absent.
fn optional_core<T>(object: &Object, name: &str) -> Result<Option<T>>
where
    Js<T>: FromNapiValue,
{
    Ok(optional::<Js<T>>(object, name)?.map(|js| js.0))
}

/// A plain object built from named properties.
fn object_of(
    env: sys::napi_env,
    fill: impl FnOnce(&mut Object) -> Result<()>,
) -> Result<sys::napi_value> {
    let mut object = Object::new(&Env::from_raw(env))?;
    fill(&mut object)?;
    // SAFETY: `object` was just created in `env`.
    unsafe { Object::to_napi_value(env, object) }
}

/// Sets `value` unless it is `None`, as napi leaves out an absent field.
fn set_some<T: ToNapiValue>(object: &mut Object, name: &str, value: Option<T>) -> Result<()> {
    match value {
        Some(value) => object.set(name, value),
        None => Ok(()),
    }
}

/// `{ argv, env, cwd, umask, stdout?, stderr? (see `Output`), readyTimeout, account?,
/// preventCore, listeners?, respawn?, handedLock?, preloadOptions? }`;
/// `argv`, `env`, `readyTimeout`, `listeners`, `respawn`, `handedLock` and
/// `preloadOptions` matter only to `spawn`, which forks.
impl FromNapiValue for Js<Plan> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let o = Object::from_napi_value(env, value)?;
        let umask: u32 = required(&o, "umask")?;
        if umask > 0o777 {
            let env = Env::from_raw(env);
            return Err(out_of_range(
                &env,
                "umask",
                "an integer from 0 to 0o777",
                umask,
            ));
        }
        let ready_timeout: Option<u32> = optional(&o, "readyTimeout")?;
        Ok(Js(Plan {
            argv: optional(&o, "argv")?.unwrap_or_default(),
            env: optional(&o, "env")?.unwrap_or_default(),
            cwd: required(&o, "cwd")?,
            umask,
            stdout: optional_core(&o, "stdout")?,
            stderr: optional_core(&o, "stderr")?,
            ready_timeout: Duration::from_millis(ready_timeout.unwrap_or(0).into()),
            account: optional_core(&o, "account")?,
            prevent_core: optional(&o, "preventCore")?.unwrap_or(false),
            listeners: optional::<Vec<Js<Listener>>>(&o, "listeners")?
                .map_or_else(Vec::new, |all| all.into_iter().map(|js| js.0).collect()),
            respawn: optional_core(&o, "respawn")?,
            handed_lock: optional(&o, "handedLock")?,
            preload_options: optional(&o, "preloadOptions")?,
        }))
    }
}

/// `{ program, instances?, restarts, window, killTimeout?, maxMemory?,
/// logMaxSize?, logKeep?, logCompress?, pidfile?, record?, control? }`: the
/// supervisor executable, how many instances (1), restarts allowed within
/// `window` ms, the drain before SIGKILL (5000 ms), the memory ceiling in
/// bytes, log rotation (size in bytes, files kept: 5, gzip), the service's
/// pid file, the supervisor's state record and control channel.
impl FromNapiValue for Js<Respawn> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let o = Object::from_napi_value(env, value)?;
        let window: u32 = required(&o, "window")?;
        let kill_timeout: Option<u32> = optional(&o, "killTimeout")?;
        Ok(Js(Respawn {
            program: required(&o, "program")?,
            instances: optional(&o, "instances")?.unwrap_or(1).max(1),
            restarts: required(&o, "restarts")?,
            window_ms: window.into(),
            kill_timeout_ms: kill_timeout.map_or(5000, u64::from),
            max_memory: optional::<f64>(&o, "maxMemory")?.map(|bytes| bytes as u64),
            log_max_size: optional::<f64>(&o, "logMaxSize")?.map(|bytes| bytes as u64),
            log_keep: optional(&o, "logKeep")?.unwrap_or(5),
            log_compress: optional(&o, "logCompress")?.unwrap_or(false),
            pidfile: optional(&o, "pidfile")?,
            record: optional(&o, "record")?,
            control: optional(&o, "control")?,
            // The supervisor's command line names them, from the listeners.
            socket_files: Vec::new(),
        }))
    }
}

/// A listening socket for the daemon, `{ name, ... }` with a passed `fd`, or
/// an address to bind: `host` and `port`, or a Unix socket's `path` with its
/// `mode`, `uid`, `gid` (lib/sockets.js checked which).
impl FromNapiValue for Js<Listener> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let o = Object::from_napi_value(env, value)?;
        let bad = |what: &str| invalid(format!("listener {what}"));
        let (fd, path, port) = (
            optional(&o, "fd")?,
            optional::<String>(&o, "path")?,
            optional::<u32>(&o, "port")?,
        );
        let source = match (fd, path, port) {
            (Some(fd), _, _) => ListenSource::Inherited(fd),
            (None, Some(path), _) => {
                let (uid, gid) = (optional(&o, "uid")?, optional(&o, "gid")?);
                ListenSource::Bind(Address::Unix {
                    path,
                    mode: optional(&o, "mode")?,
                    owner: (uid.is_some() || gid.is_some()).then_some((uid, gid)),
                })
            }
            (None, None, Some(port)) => ListenSource::Bind(Address::Tcp {
                host: optional::<String>(&o, "host")?
                    .map(|h| h.parse().map_err(|_| bad("host")))
                    .transpose()?,
                port: u16::try_from(port).map_err(|_| bad("port"))?,
            }),
            (None, None, None) => return Err(bad("without fd, path or port")),
        };
        Ok(Js(Listener {
            name: required(&o, "name")?,
            source,
        }))
    }
}

/// `{ uid?, gid, groups, name?, home? }`, as `lookupAccount()` returns it and
/// `dropPrivileges()` and `spawn()` take it back.
impl FromNapiValue for Js<Account> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let o = Object::from_napi_value(env, value)?;
        Ok(Js(Account {
            uid: optional(&o, "uid")?,
            gid: required(&o, "gid")?,
            groups: required(&o, "groups")?,
            name: optional(&o, "name")?,
            home: optional(&o, "home")?,
        }))
    }
}

impl ToNapiValue for Js<Account> {
    unsafe fn to_napi_value(env: sys::napi_env, Js(a): Self) -> Result<sys::napi_value> {
        object_of(env, |o| {
            set_some(o, "uid", a.uid)?;
            o.set("gid", a.gid)?;
            o.set("groups", a.groups)?;
            set_some(o, "name", a.name)?;
            set_some(o, "home", a.home)
        })
    }
}

/// A user or group: a number is an id, a string a name.
impl FromNapiValue for Js<Id> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        Ok(Js(
            match Either::<u32, String>::from_napi_value(env, value)? {
                Either::A(n) => Id::Number(n),
                Either::B(name) => Id::Name(name),
            },
        ))
    }
}

/// `{ code, message?, pid?, relayed }`.
impl ToNapiValue for Js<Verdict> {
    unsafe fn to_napi_value(env: sys::napi_env, Js(v): Self) -> Result<sys::napi_value> {
        object_of(env, |o| {
            o.set("code", v.code)?;
            set_some(o, "message", v.message)?;
            set_some(o, "pid", v.pid)?;
            o.set("relayed", v.relayed)?;
            set_some(o, "step", v.failed.map(|(step, _)| step.name()))?;
            set_some(o, "errno", v.failed.map(|(_, errno)| errno))?;
            o.set("timedOut", v.timed_out)
        })
    }
}

/// Where stdout or stderr goes: `{ path }` (a log file), `{ fd }` (a
/// descriptor of this process) or `{ ignore: true }` (/dev/null).
impl FromNapiValue for Js<Output> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let o = Object::from_napi_value(env, value)?;
        let ignore: Option<bool> = optional(&o, "ignore")?;
        match (optional(&o, "path")?, optional(&o, "fd")?, ignore) {
            (Some(path), None, None) => Ok(Js(Output::File(path))),
            (None, Some(fd), None) => Ok(Js(Output::Fd(fd))),
            (None, None, Some(true)) => Ok(Js(Output::Null)),
            _ => Err(invalid("an output is one of path, fd, ignore".to_owned())),
        }
    }
}

/// Where a socket listens: `{ host, port }` (`host` an IP address) or `{ path }`.
impl ToNapiValue for Js<Address> {
    unsafe fn to_napi_value(env: sys::napi_env, Js(a): Self) -> Result<sys::napi_value> {
        object_of(env, |o| match a {
            Address::Tcp { host, port } => {
                set_some(o, "host", host.map(|ip| ip.to_string()))?;
                o.set("port", port)
            }
            Address::Unix { path, .. } => o.set("path", path),
        })
    }
}

/// `{ running, pid?, stale, verified }`.
impl ToNapiValue for Js<PidFileStatus> {
    unsafe fn to_napi_value(env: sys::napi_env, Js(s): Self) -> Result<sys::napi_value> {
        object_of(env, |o| {
            o.set("running", s.running)?;
            set_some(o, "pid", s.pid)?;
            o.set("stale", s.stale)?;
            o.set("verified", s.verified())
        })
    }
}

/// `{ ppid, start, age, cpu }`: age and CPU time in seconds (cpu null where
/// it cannot be read), start the system's own text.
impl ToNapiValue for Js<daemon_core::operator::ProcessStat> {
    unsafe fn to_napi_value(env: sys::napi_env, Js(p): Self) -> Result<sys::napi_value> {
        object_of(env, |o| {
            o.set("ppid", p.ppid)?;
            o.set("start", p.start.as_str())?;
            o.set("age", p.age.as_secs_f64())?;
            o.set("cpu", p.cpu.map(|cpu| cpu.as_secs_f64()))
        })
    }
}

/// `{ fds, facility, ident, socket? }`: the facility by its name.
impl FromNapiValue for Js<syslog_stdio::Plan> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let o = Object::from_napi_value(env, value)?;
        let facility: String = required(&o, "facility")?;
        Ok(Js(syslog_stdio::Plan {
            fds: required(&o, "fds")?,
            facility: known(syslog::facility(&facility), &facility)?,
            ident: required(&o, "ident")?,
            socket: optional(&o, "socket")?,
        }))
    }
}

/// A syslog code from a name the JavaScript side has checked already.
pub fn known(code: Option<u8>, name: &str) -> Result<u8> {
    code.ok_or_else(|| invalid(format!("unknown syslog name: {name}")))
}
