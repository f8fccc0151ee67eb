'use strict';
// `daemon start`, `restart` and `run`: from the flags (over the recorded
// start, for a restart) to the plan, the record, and the launch, or the run
// in place.

const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { launchDaemon, becomeSupervisor } = require('../launcher/launcher.js');
const { preloadCommand, isEsm } = require('../launcher/command.js');
const { readyWhenServing } = require('../daemon/readiness.js');
const { status, stop } = require('../operator/control.js');
const { lookupAccount } = require('../shared/identity.js');
const { startOptions } = require('../launcher/start-options.js');
const { ENV, MANAGER_ONLY, listed } = require('../shared/env.js');
const { INHERIT } = require('../shared/options.js');
const importModule = require('../shared/import.js');
const { FLAGS, START_FLAGS, UsageError, checkStartFlags, mergeFlags, streams, supervised, supervisedRun } = require('./args.js');
const { readEnvFiles } = require('./env-file.js');
const { nearest } = require('./nearest.js');
const state = require('./state.js');
const { prepare } = require('./script.js');

/**
 * start()'s options for these flags, streams and pid file (`ident`: syslog's
 * tag, the name). start() takes the pid file's lock, in the daemon or in place
 * (a supervisor holds it for the life of the service: that start()'s lock()
 * of it is then true). `supervise`: a supervisor runs it (default: as the
 * flags say).
 */
function optionsOf(flags, out, ident, pidfile, supervise = supervised(flags)) {
  // --wait-ready: the script says when (process.send('ready'), as under pm2).
  const options = { ready: flags['wait-ready'] ? 'manual' : 'auto', ident, pidfile };
  for (const flag of START_FLAGS) {
    if (FLAGS[flag].option !== undefined && flags[flag] !== undefined) options[FLAGS[flag].option] = flags[flag];
  }
  for (const name of ['stdout', 'stderr']) if (out[name] !== INHERIT) options[name] = out[name];
  // With a new root, the daemon changes user after it (in the preload).
  if (flags.chroot === undefined) Object.assign(options, { user: flags.user, group: flags.group });
  if (supervise) {
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
 * Sets --cwd to the caller's directory unless given (`--cwd /`: the daemon
 * convention's, which start() keeps), or --chroot (the new root's / then).
 */
function defaultCwd(flags) {
  if (flags.cwd !== undefined || flags.chroot !== undefined) return;
  try {
    flags.cwd = process.cwd();
  } catch (error) {
    error.message = `the current directory is gone (give --cwd): ${error.message}`;
    throw error;
  }
}

/**
 * The environment a start records: `env` without the variables of the env
 * files, which are read anew at each start (an edit applies at `restart`).
 */
function recordedEnv(env, fromFiles) {
  const kept = { ...env };
  for (const key of Object.keys(fromFiles)) delete kept[key];
  return kept;
}

/**
 * Everything a start of `parsed` (over `recorded`, for a restart) needs,
 * checked, before anything is stopped or made. The environment: `parsed.env`
 * (a fleet file's app), else the recorded one, else this process's.
 * `foreground`: this process becomes the supervisor (`daemon run`): the
 * streams stay its own unless told, and --listen alone makes a supervisor too.
 * `adopted`: this process stays above the daemon as its init (`daemon run FILE`).
 */
function planStart(parsed, recorded, { foreground = false, adopted = false } = {}) {
  // When a namespace's init exits, the kernel ends every process in it.
  if (process.pid === 1 && !foreground && !adopted) {
    throw new Error("as PID 1 (a container's init) the daemon would end with this command: use daemon run");
  }
  const flags = checkStartFlags(mergeFlags(recorded?.flags ?? {}, parsed.flags));
  const script = parsed.script ?? recorded?.script;
  const args = parsed.script === undefined ? (recorded?.args ?? []) : parsed.scriptArgs;
  if (script === undefined) throw new UsageError(`no script given, and no start of ${parsed.name ?? flags.pidfile} is recorded`);
  const name = state.checkName(parsed.name ?? recorded?.name ?? state.defaultName(script));
  const main = mainOf(flags, script);
  defaultCwd(flags);
  const dir = state.stateDir();
  const account = flags.chroot === undefined ? lookupAccount(flags.user, flags.group) : undefined;
  // The launcher takes the lock of a daemon of another user (launcher.js): only its log is that user's.
  const ownLog = account?.uid != null && account.uid !== process.geteuid();
  const files = state.filesOf(dir, name);
  const pidfile = flags.pidfile ?? files.pidfile;
  const out = streams(flags, foreground ? INHERIT : files.log);
  const options = optionsOf(flags, out, name, pidfile, foreground ? supervisedRun(flags) : supervised(flags));
  const fromFiles = readEnvFiles(flags['env-file']);
  const env = recordedEnv(parsed.env ?? recorded?.env ?? process.env, fromFiles);
  const opts = startOptions({ ...options, env: { ...env, ...fromFiles } }); // every check before anything is made
  if (flags.pidfile !== undefined) checkPidfileDirectory(pidfile);
  return { name, main, args, flags, env, dir, files, account, ownLog, pidfile, out, options, opts };
}

/**
 * Before a start of `plan`: refuses one that runs by `earlier` (the record
 * it replaces) or the plan's pid file, makes the directories and the log a
 * daemon of another user writes, and records the start (`more`: fields
 * besides the plan's).
 */
function record(plan, earlier, more = {}) {
  const { name, main, args, flags, env, dir, files, account, ownLog, pidfile, out } = plan;
  const st = state.openState({ create: true, dir });
  for (const file of new Set([pidfile, earlier?.pidfile])) {
    const pid = file === undefined ? null : runningPid(file);
    if (pid === null) continue;
    const hint = flags.pidfile === undefined ? ': to start another, give it a --name' : ` (${file})`;
    throw new Error(`${name} is already running as pid ${pid}${hint}`);
  }
  if (ownLog && (out.stdout === files.log || out.stderr === files.log)) giveLog(files.log, account);
  const started = { name, script: main, args, flags, env, pidfile, ...out, startedAt: new Date().toISOString(), ...more };
  st.writeRecord(name, started);
  return st;
}

/** Puts back the record `earlier` of daemon `name` in the open state directory `st` (none: removes it). */
function unrecord(st, name, earlier) {
  if (earlier === null) st.removeRecord(name);
  else st.writeRecord(name, earlier);
}

/**
 * Starts the daemon `plan` describes, unless one of `earlier` (the record it
 * replaces) or of the plan's pid file runs; records how, and says its pid.
 * A start that failed leaves the record as it was before. Returns the exit
 * status.
 */
function launch(plan, earlier, { quiet }) {
  const { name, main, args, flags, pidfile, options, opts } = plan;
  const st = record(plan, earlier);
  let verdict;
  try {
    verdict = launchDaemon(opts, preloadCommand(main, args, options, chrootOf(flags), flags['node-arg']));
  } finally {
    // A daemon that never came up is no service to list; one that may still come up (not ready in time) is.
    if (verdict?.code !== 0 && !verdict?.timedOut && runningPid(pidfile) === null) unrecord(st, name, earlier);
  }
  // The caller's directory is the default --cwd, and the daemon's user may not be able to enter it.
  if (verdict.step === 'chdir' && flags.user !== undefined && opts.cwd === process.cwd()) {
    process.stderr.write(`daemon: ${flags.user} cannot enter ${opts.cwd}, this command's directory (the default): give --cwd\n`);
  }
  if (verdict.code === 0 && !quiet) console.log(`${name} started, pid ${runningPid(pidfile) ?? verdict.pid}`);
  return verdict.code;
}

/** `daemon start`: resolves the exit status. */
function start(parsed) {
  const plan = planStart(parsed, null);
  return launch(plan, state.openState({ dir: plan.dir }).record(plan.name), parsed.flags);
}

/** The record of the daemon `parsed` names (by NAME, or by the pid file it was started with) in the open state directory `st`, or null. */
function recordOf(parsed, st) {
  if (parsed.name !== undefined) return st.record(state.checkName(parsed.name));
  if (parsed.flags.pidfile === undefined) return null;
  return st.records().find((record) => record.pidfile === parsed.flags.pidfile) ?? null;
}

/**
 * Stops the daemon, then starts it as it was started, with the options given
 * over the recorded ones (all checked before it is stopped).
 */
async function restart(parsed) {
  const st = state.openState();
  const recorded = recordOf(parsed, st);
  const name = parsed.name ?? recorded?.name ?? (parsed.script === undefined ? undefined : state.defaultName(parsed.script));
  if (recorded === null && parsed.script === undefined) {
    if (parsed.name === undefined) throw new Error(`no start of ${parsed.flags.pidfile} is recorded: give the script`);
    throw unknownName(parsed.name, `to start one by that name, give its script: daemon restart ${parsed.name} -- script.js`, st);
  }
  const plan = planStart({ ...parsed, name }, recorded);
  return relaunch(plan, recorded ?? st.record(plan.name), parsed.flags);
}

/**
 * Stops the daemon `recorded` (or the one of the plan's pid file), then
 * launches `plan` (`flags`: the command's --signal, --timeout, --quiet).
 */
async function relaunch(plan, recorded, flags) {
  const pidfile = recorded?.pidfile ?? plan.pidfile;
  const running = recorded?.foreground ? runningPid(pidfile) : null;
  if (running !== null) {
    const { name } = plan;
    throw new Error(
      `${name} runs in the foreground (daemon run, pid ${running}): restart it with what runs it (systemctl restart ${name}), or daemon upgrade ${name}`,
    );
  }
  const { pid, stopped } = await stop(pidfile, { signal: flags.signal, timeout: flags.timeout });
  if (pid !== null && !stopped) throw new Error(`pid ${pid} did not stop`);
  return launch(plan, recorded, flags);
}

/**
 * The error for a NAME with no record in the state directory, suggesting the
 * nearest name that has one (in the open state directory `st`); `more`:
 * what else to say, in brackets.
 */
function unknownName(name, more, st = state.openState()) {
  const dir = st.dir;
  const guess = nearest(
    name,
    st.records().map((record) => record.name),
  );
  const hint =
    guess === undefined ? ` (daemon list shows them${more ? `; ${more}` : ''})` : `: did you mean ${guess}?${more ? ` (${more})` : ''}`;
  const error = new Error(`no daemon named ${name} in ${dir}${hint}`);
  error.code = 'ERR_DAEMON_UNKNOWN';
  return error;
}

/**
 * `daemon run` with a supervisor: this process becomes it (same pid:
 * systemd's main process, a container's PID 1) once it has taken NAME's
 * record as `start` does (the supervisor takes the pid file and the control
 * channel), so that `daemon status|upgrade|scale NAME` reach it. Sockets
 * passed to it stand for the --listen addresses. The streams stay this
 * process's unless told.
 */
function runSupervisor(parsed) {
  const plan = planStart(parsed, null, { foreground: true });
  const earlier = state.openState({ dir: plan.dir }).record(plan.name);
  // The manager's variables are this run's, not the service's.
  const env = Object.fromEntries(Object.entries(plan.env).filter(([key]) => !listed(MANAGER_ONLY, key)));
  const st = record({ ...plan, env }, earlier, { foreground: true });
  const { name, main, args, options, flags, opts } = plan;
  try {
    becomeSupervisor(opts, { ...preloadCommand(main, args, options, chrootOf(flags), flags['node-arg']), standIns: true });
  } catch (error) {
    unrecord(st, name, earlier);
    throw error;
  }
}

/**
 * Runs the script in this process, as `start` would in the daemon: no fork,
 * the streams as they are unless told, READY=1 to NOTIFY_SOCKET (systemd).
 * With a supervisor flag or --listen, this process becomes the supervisor.
 */
function run(parsed) {
  if (supervisedRun(parsed.flags)) return runSupervisor(parsed);
  const { script, scriptArgs } = parsed;
  if (parsed.flags['ready-timeout'] !== undefined) {
    throw new UsageError(
      '--ready-timeout needs a supervisor here (--respawn, -i or --listen): without one, what runs daemon run times its start',
    );
  }
  if (parsed.flags['node-arg'] !== undefined) {
    throw new UsageError(
      "--node-arg needs a supervisor here (--respawn, -i or --listen): without one, the script runs in this Node: give Node's options to it (node --max-old-space-size=512 daemon run ...)",
    );
  }
  const flags = checkStartFlags({ ...parsed.flags });
  const name = state.checkName(parsed.name ?? state.defaultName(script));
  const main = mainOf(flags, script);
  const esm = flags.chroot === undefined && isEsm(main);
  defaultCwd(flags);
  const options = { ...optionsOf(flags, streams(flags, INHERIT), name, flags.pidfile), foreground: true, ready: 'manual' };
  if (flags.pidfile !== undefined) checkPidfileDirectory(flags.pidfile);
  Object.assign(process.env, readEnvFiles(flags['env-file']));
  // `run` is the foreground whatever the environment says.
  delete process.env[ENV.FOREGROUND];
  prepare({ options, chroot: chrootOf(flags) });
  process.argv.splice(1, Number.POSITIVE_INFINITY, main, ...scriptArgs);
  // Out of the command's own promise: the script's errors are its own uncaught ones, reported by Node.
  setImmediate(() => {
    if (esm) {
      importModule(pathToFileURL(main).href).then(() => flags['wait-ready'] || readyWhenServing());
    } else {
      // Node runs process.argv[1] as the main module; Bun's runMain() takes it as an argument.
      require('node:module').runMain(main);
      // As start()'s `ready: 'auto'`, from the script's top level on; unless the script says when.
      if (!flags['wait-ready']) readyWhenServing();
    }
  });
  return undefined;
}

module.exports = { start, restart, run, planStart, launch, relaunch, recordOf, unknownName };
