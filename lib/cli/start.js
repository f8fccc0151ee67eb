'use strict';
// `daemon start`, `restart` and `run`: from the flags (over the recorded
// start, for a restart) to the plan, the record, and the launch, or the run
// in place.

const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { launchDaemon } = require('../launcher/launcher.js');
const { preloadCommand, isEsm } = require('../launcher/command.js');
const { ready } = require('../daemon/readiness.js');
const { status, stop } = require('../operator/control.js');
const { lookupAccount } = require('../shared/identity.js');
const { startOptions } = require('../launcher/start-options.js');
const { ENV } = require('../shared/env.js');
const { INHERIT } = require('../shared/options.js');
const { FLAGS, START_FLAGS, UsageError, mergeFlags, streams, supervised } = require('./args.js');
const state = require('./state.js');
const { prepare } = require('./script.js');

/**
 * start()'s options for these flags, streams and pid file (`ident`: syslog's
 * tag, the name). start() takes the pid file's lock, in the daemon or in place
 * (a supervisor holds it for the life of the service: that start()'s lock()
 * of it is then true).
 */
function optionsOf(flags, out, ident, pidfile) {
  const options = { ready: 'auto', ident, pidfile };
  for (const flag of START_FLAGS) {
    if (FLAGS[flag].option !== undefined && flags[flag] !== undefined) options[FLAGS[flag].option] = flags[flag];
  }
  for (const name of ['stdout', 'stderr']) if (out[name] !== INHERIT) options[name] = out[name];
  // With a new root, the daemon changes user after it (in the preload).
  if (flags.chroot === undefined) Object.assign(options, { user: flags.user, group: flags.group });
  if (supervised(flags)) {
    options.respawn = {
      instances: flags.instances,
      limit: flags['respawn-limit'],
      window: flags['respawn-window'],
      killTimeout: flags['kill-timeout'],
      maxMemory: flags['max-memory'],
      logMaxSize: flags['log-max-size'],
      logKeep: flags['log-keep'],
      logCompress: flags['log-compress'],
    };
  }
  return options;
}

/** The script as the daemon's Node is given it: inside a new root as it is, else absolute. */
function mainOf(flags, script) {
  if (flags.chroot === undefined) return path.resolve(script);
  if (!path.isAbsolute(script)) throw new UsageError('with --chroot, the script path must be absolute inside the new root');
  return script;
}

/** The new root the preload (or `daemon run`) changes to after start(), and the user it then becomes. */
function chrootOf(flags) {
  return flags.chroot === undefined ? undefined : { dir: flags.chroot, user: flags.user, group: flags.group };
}

/** The pid of the daemon holding `file`, or null (an unusable file is the daemon's lock() to report). */
function runningPid(file) {
  try {
    const { running, pid } = status(file);
    return running ? pid : null;
  } catch {
    return null;
  }
}

/** Before anything starts: a daemon whose pid file's directory is missing could only fail. */
function checkPidfileDirectory(pidfile) {
  try {
    fs.statSync(path.join(path.dirname(pidfile), '/')); // the slash: ENOTDIR for a file
  } catch (error) {
    error.message = `--pidfile ${pidfile}: ${error.message}`;
    throw error;
  }
}

/** A log in the state directory, made (0640) for the daemon's user, who may then reopen it on reload. */
function giveLog(file, account) {
  const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o640);
  try {
    fs.fchownSync(fd, account.uid, account.gid);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Starts a daemon from `parsed` (over `recorded`, for a restart), records how,
 * and says its pid; resolves the exit status.
 */
function start(parsed, recorded = null) {
  // When a namespace's init exits, the kernel ends every process in it.
  if (process.pid === 1) throw new Error("as PID 1 (a container's init) the daemon would end with this command: run the script itself");
  const flags = mergeFlags(recorded?.flags ?? {}, parsed.flags);
  const script = parsed.script ?? recorded?.script;
  const args = parsed.script === undefined ? (recorded?.args ?? []) : parsed.scriptArgs;
  if (script === undefined) throw new UsageError(`no script given, and no start of ${parsed.name ?? flags.pidfile} is recorded`);
  const name = state.checkName(parsed.name ?? recorded?.name ?? state.defaultName(script));
  const main = mainOf(flags, script);
  const dir = state.stateDir();
  const account = flags.chroot === undefined ? lookupAccount(flags.user, flags.group) : undefined;
  // The launcher takes the lock of a daemon of another user (launcher.js): only its log is that user's.
  const ownLog = account?.uid != null && account.uid !== process.geteuid();
  const files = state.filesOf(dir, name);
  const pidfile = flags.pidfile ?? files.pidfile;
  const out = streams(flags, files.log);
  const options = optionsOf(flags, out, name, pidfile);
  const env = recorded?.env ?? { ...process.env };
  const opts = startOptions({ ...options, env }); // every check before anything is made
  if (flags.pidfile !== undefined) checkPidfileDirectory(pidfile);
  state.ensureStateDir(dir);
  const earlier = recorded ?? state.readRecord(dir, name);
  for (const file of new Set([pidfile, earlier?.pidfile])) {
    const pid = file === undefined ? null : runningPid(file);
    if (pid === null) continue;
    const hint = flags.pidfile === undefined ? ': to start another, give it a --name' : ` (${file})`;
    throw new Error(`${name} is already running as pid ${pid}${hint}`);
  }
  if (ownLog && (out.stdout === files.log || out.stderr === files.log)) giveLog(files.log, account);
  state.writeRecord(files.record, { name, script: main, args, flags, env, pidfile, ...out, startedAt: new Date().toISOString() });
  const command = preloadCommand(main, args, options, chrootOf(flags));
  const verdict = launchDaemon(opts, command);
  if (verdict.code === 0 && !parsed.flags.quiet) console.log(`${name} started, pid ${runningPid(pidfile) ?? verdict.pid}`);
  return verdict.code;
}

/** The record of the daemon `parsed` names (by NAME, or by the pid file it was started with), or null. */
function recordOf(parsed) {
  const dir = state.stateDir();
  if (parsed.name !== undefined) return state.readRecord(dir, state.checkName(parsed.name));
  if (parsed.flags.pidfile === undefined) return null;
  return state.allRecords(dir).find((record) => record.pidfile === parsed.flags.pidfile) ?? null;
}

/** Stops the daemon, then starts it as it was started, with the options given over the recorded ones. */
async function restart(parsed) {
  const recorded = recordOf(parsed);
  const name = parsed.name ?? recorded?.name ?? (parsed.script === undefined ? undefined : state.defaultName(parsed.script));
  if (recorded === null && parsed.script === undefined) {
    throw new Error(`no start of ${name ?? parsed.flags.pidfile} is recorded: give the script`);
  }
  const pidfile = recorded?.pidfile ?? parsed.flags.pidfile ?? state.filesOf(state.stateDir(), state.checkName(name)).pidfile;
  const { pid, stopped } = await stop(pidfile, { signal: parsed.flags.signal, timeout: parsed.flags.timeout });
  if (pid !== null && !stopped) throw new Error(`pid ${pid} did not stop`);
  return start({ ...parsed, name }, recorded);
}

/**
 * Runs the script in this process, as `start` would in the daemon: no fork,
 * the streams as they are unless told, READY=1 to NOTIFY_SOCKET (systemd).
 */
function run(parsed) {
  const { flags, script, scriptArgs } = parsed;
  const name = state.checkName(parsed.name ?? state.defaultName(script));
  const main = mainOf(flags, script);
  const esm = flags.chroot === undefined && isEsm(main);
  const options = { ...optionsOf(flags, streams(flags, INHERIT), name, flags.pidfile), foreground: true, ready: 'manual' };
  if (flags.pidfile !== undefined) checkPidfileDirectory(flags.pidfile);
  // `run` is the foreground whatever the environment says.
  delete process.env[ENV.FOREGROUND];
  prepare({ options, chroot: chrootOf(flags) });
  process.argv.splice(1, Number.POSITIVE_INFINITY, main, ...scriptArgs);
  // Out of the command's own promise: the script's errors are its own uncaught ones, reported by Node.
  setImmediate(() => {
    if (esm) {
      import(pathToFileURL(main).href).then(ready);
    } else {
      require('node:module').runMain();
      setImmediate(ready); // once the script's own first turn of the event loop has run
    }
  });
  return undefined;
}

module.exports = { start, restart, run, recordOf };
