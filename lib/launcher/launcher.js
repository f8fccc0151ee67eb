'use strict';
// The launcher's side: the `node app.js` a user typed. It checks that a
// daemon can be made from here, prepares the daemon's environment and hands
// the plan to the native spawn(), which forks and waits for the daemon's
// verdict; then it exits with it. The CLI calls launchDaemon() directly;
// spawn() and daemon.daemon() share the plan (spawnPlan).

const { debuglog } = require('node:util');
const { native, supervisorPath } = require('../shared/native.js');
const { ENV, PARENT_ONLY, SESSION_ONLY, listed } = require('../shared/env.js');
const { SYSLOG, IGNORE, bare } = require('../shared/options.js');
const { evaluated } = require('../shared/node-options.js');
const { thisScript } = require('./command.js');
const { output } = require('./start-options.js');
const { listeners } = require('../daemon/listeners.js');
// What only some starts need (sockets, a supervisor, a pid file) is loaded where it runs.
const { load, onCall } = require('../shared/lazy-exports.js');

// errors.js loads when a start is refused.
const { unsupported } = onCall('./errors.js', ['unsupported']);

const debug = debuglog('daemon');

/** Throws where a daemon cannot be made from this process, before anything is done. */
function checkLauncher() {
  if (native() === null) {
    throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'start() is not supported on Windows, which has no Unix daemons');
  }
  if (!native().isMainThread()) {
    throw unsupported('ERR_WORKER_UNSUPPORTED_OPERATION', 'start() must be called from the main thread, not a worker', TypeError);
  }
  const script = process.argv[1];
  if (!evaluated() && (script === undefined || script === '-')) {
    throw unsupported(
      'ERR_DAEMON_NO_SCRIPT',
      'start() runs the script again in the daemon, so the code must come from a file or -e, not from stdin or the REPL',
    );
  }
  if (native().holdsLock()) {
    throw unsupported(
      'ERR_DAEMON_LOCKED_BEFORE_START',
      'lock() was called before start(): the launcher would hold the lock and the daemon would find itself already running. Call start() first.',
    );
  }
}

/**
 * The daemon's environment: the launcher's (or `entries`) without its
 * parent's variables and those named in `dropped`, plus `extra` and the
 * account's variables (`accountVars`). A daemon of another user
 * (`otherUser`) gets none of the login session's variables either (root's
 * SUDO_*, SSH_*, MAIL, ...: every process of that user may read its
 * environment).
 */
function daemonEnv(entries, extra, accountVars, dropped, otherUser) {
  const env = entries ?? Object.entries(process.env).map(([key, value]) => `${key}=${value}`);
  const own = [...extra, ...Object.entries(accountVars).map(([key, value]) => `${key}=${value}`)];
  const name = (entry) => entry.slice(0, entry.indexOf('='));
  const left = [...PARENT_ONLY, ENV.READY_PIPE, ...dropped, ...own.map(name)];
  const session = otherUser ? SESSION_ONLY : [];
  const kept = (entry) => !left.includes(name(entry)) && !listed(session, name(entry));
  return [...env.filter(kept), ...own];
}

/** Whether the daemon will open an inspector: `--inspect…` in its argv or NODE_OPTIONS. */
function startsInspector(argv, env) {
  const nodeOptions = env.filter((entry) => entry.startsWith(`${ENV.NODE_OPTIONS}=`));
  return [...argv, ...nodeOptions].some((arg) => arg.includes('--inspect'));
}

/**
 * The launcher's own inspector would hold the port the daemon's wants until
 * the launcher exits: it lets go of it first, the daemon is what there is to debug.
 */
function releaseInspector() {
  const inspector = require('node:inspector');
  if (inspector.url() === undefined) return;
  debug('launcher %d: closing its inspector for the daemon', process.pid);
  inspector.close();
}

/** Where `log` (a validated stdout or stderr) went, for the launcher's last word. */
function describeLog(log) {
  if (log === SYSLOG) return 'syslog';
  if (log === IGNORE) return '/dev/null';
  return typeof log === 'number' ? `descriptor ${log} of the launcher` : log;
}

/**
 * The sockets the daemon gets: those passed to this process (unless `handOn`
 * is false: another program's daemon is not this service), then those to
 * bind; or, with `standIn`, the passed ones standing for those to bind.
 */
function daemonListeners(specs, handOn, standIn) {
  if (handOn && standIn) return load('../launcher/listen.js').standIns(specs);
  const handed = handOn ? listeners().map(({ fd, name }) => bare({ fd, name })) : [];
  return specs.length === 0 ? handed : [...handed, ...load('../launcher/listen.js').toBind(specs)];
}

/**
 * What the supervisor needs beyond the plan (`opts.respawn`: its instances,
 * restarts allowed within the window, the drain), or undefined for an
 * unsupervised daemon.
 */
function respawnPlan(opts) {
  if (opts.respawn === undefined) return undefined;
  // The record: where status() finds restarts and a give-up, also after the supervisor is gone.
  const stateDir = opts.pidfile === undefined ? undefined : load('../operator/state-dir.js');
  const files = stateDir?.supervisorFiles(opts.pidfile, stateDir.ensureStateDir());
  return bare({
    program: supervisorPath(),
    instances: opts.respawn.instances,
    restarts: opts.respawn.limit,
    window: opts.respawn.window,
    killTimeout: opts.respawn.killTimeout,
    maxMemory: opts.respawn.maxMemory,
    logMaxSize: opts.respawn.logMaxSize,
    logKeep: opts.respawn.logKeep,
    logCompress: opts.respawn.logCompress,
    pidfile: opts.pidfile,
    record: files?.record,
    control: files?.control,
  });
}

/** Whether the daemon runs as another user than this process's. */
function switchesUser(account) {
  return account?.uid !== undefined && account.uid !== process.geteuid();
}

/**
 * The native spawn's plan for validated options. `command.argv` is the Node
 * command line the daemon runs, `command.env` entries added to its
 * environment, `command.preloadOptions` what the preload there reads from a
 * descriptor (command.js). `command.another`: the daemon is another program's (spawn(),
 * daemon.daemon()), not this service's, so systemd's notify socket and the
 * sockets passed to this process stay here. `command.standIns`: the sockets
 * passed to this process stand for the `listen` addresses (`daemon run`
 * under systemd), not beside them. Reads the user database here: it may not
 * be read between fork() and execve().
 */
function spawnPlan(opts, given) {
  const command = bare(given); // its own fields only: a polluted prototype supplies no argv
  // The user database only for a daemon that runs as another user.
  const identity = opts.user === undefined && opts.group === undefined ? undefined : load('./identity.js');
  const account = identity?.lookupAccount(opts.user, opts.group);
  const otherUser = switchesUser(account);
  const service = !command.another;
  // Prototype-less both ways: the addon reads no inherited field, and JS none it left out.
  return bare({
    argv: command.argv,
    env: daemonEnv(opts.env, command.env ?? [], identity?.accountEnv(account) ?? {}, service ? [] : [ENV.NOTIFY_SOCKET], otherUser),
    cwd: opts.cwd,
    umask: opts.umask,
    stdout: output(opts.stdout),
    stderr: output(opts.stderr),
    readyTimeout: opts.readyTimeout,
    account,
    preventCore: opts.preventCore,
    listeners: daemonListeners(opts.listen, service, command.standIns),
    respawn: respawnPlan(opts),
    // A daemon of another user: the launcher takes its pid file's lock where
    // only the launcher's user writes, and hands it on (docs/pidfiles.md).
    handedLock: opts.respawn === undefined && otherUser ? opts.pidfile : undefined,
    preloadOptions: command.preloadOptions,
  });
}

/**
 * Forks the daemon, then replaces this process with the supervisor
 * executable's small waiter (the core's launch/waiter.rs, same pid), which
 * says the verdict as launchDaemon() and launch() would and exits with it:
 * Node's teardown happens while the daemon boots, and the prompt sees the
 * small process's end at once. Returns the verdict, waited for here, only
 * where that could not be done. `stderr`: the validated option.
 */
function spawnAndHandOff(plan, stderr) {
  const note = stderr === undefined ? undefined : `daemon: its stderr went to ${describeLog(stderr)}`;
  return native().spawnAndAwaitIn(plan, supervisorPath(), process.env[ENV.NOTIFY_SOCKET], note);
}

/**
 * Starts the daemon and returns its verdict, `{ pid, code }`, once it is
 * ready or has failed (said on stderr). `command` as spawnPlan() takes it;
 * its `argv` is this script by default (the CLI gives another).
 */
function launchDaemon(opts, given, handOff = false) {
  checkLauncher();
  const command = bare(given);
  const argv = command.argv ?? thisScript();
  debug('launcher %d: starting %j in %s', process.pid, argv, opts.cwd);
  // Before binding: a second start says who runs, not that the address is busy.
  const holder = opts.pidfile === undefined || opts.listen.length === 0 ? null : load('../operator/control.js').status(opts.pidfile);
  if (holder?.running) {
    process.stderr.write(`daemon: Error: already running as pid ${holder.pid}\n`);
    return { pid: holder.pid, code: 1 };
  }
  const plan = spawnPlan(opts, { ...command, argv });
  if (startsInspector(argv, plan.env)) releaseInspector();
  const verdict = bare(handOff ? spawnAndHandOff(plan, opts.stderr) : native().spawn(plan));
  debug('launcher %d: daemon %s gave exit status %d', process.pid, verdict.pid, verdict.code);
  // systemd sees the launcher as the service's main process: name the daemon
  // (its supervisor, when supervised: the pid that stays across restarts).
  const notifySocket = process.env[ENV.NOTIFY_SOCKET];
  if (verdict.code === 0 && notifySocket) native().notify(notifySocket, `MAINPID=${verdict.pid}\nREADY=1`);
  if (verdict.message) process.stderr.write(`${verdict.message}\n`);
  // Unless its error came through, what the daemon said about it went where
  // its stderr goes, not here (127: it never ran).
  if (verdict.code !== 0 && verdict.code !== 127 && !verdict.relayed && opts.stderr !== undefined) {
    process.stderr.write(`daemon: its stderr went to ${describeLog(opts.stderr)}\n`);
  }
  return verdict;
}

/**
 * Replaces this process with the daemon's supervisor (`opts.respawn`), same
 * pid: `daemon run` as systemd's or a container's main process. `command`
 * as spawnPlan() takes it. Returns only by throwing, with nothing changed.
 */
function becomeSupervisor(opts, command) {
  checkLauncher();
  native().becomeSupervisor(spawnPlan(opts, command));
}

/** Whether NODE_DEBUG traces this module (Bun's debuglog() has no `enabled`). */
function tracing() {
  return debug.enabled ?? /(^|,)\s*daemon\s*(,|$)/i.test(process.env.NODE_DEBUG ?? '');
}

/** Node options whose output Node writes at its teardown: profiles and trace events. */
const WRITES_AT_TEARDOWN = /^--(cpu-prof|heap-prof|prof|trace-event)/;

/**
 * Whether this Node writes something at its teardown (coverage, profiles,
 * trace events) that ending with _exit() would lose.
 */
function writesAtTeardown() {
  const options = [...process.execArgv, ...(process.env[ENV.NODE_OPTIONS] ?? '').split(/\s+/)];
  return process.env[ENV.V8_COVERAGE] !== undefined || options.some((option) => WRITES_AT_TEARDOWN.test(option));
}

/**
 * Starts the daemon and exits with its verdict. The prompt (or the unit
 * manager) waits for this exit: where no 'exit' listener or teardown output
 * (profiles, coverage) needs this Node after the verdict, the small waiter
 * takes its place while the daemon boots (spawnAndHandOff); otherwise, once
 * the 'exit' listeners have run, the process ends at once, without Node's
 * teardown (its threads, OpenSSL's cleanup: a millisecond or two).
 */
function launch(opts, given) {
  // Nothing of this process runs after the verdict: the waiter may say it.
  const handOff = !writesAtTeardown() && process.listenerCount('exit') === 0 && !tracing();
  const { code } = launchDaemon(opts, given, handOff);
  // Added last, so run last: what a listener sets as process.exitCode stands, as with process.exit().
  if (!writesAtTeardown()) process.on('exit', () => native().exitNow(Number(process.exitCode) || 0));
  process.exit(code);
}

module.exports = { launch, launchDaemon, becomeSupervisor, spawnPlan };
