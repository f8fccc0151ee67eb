'use strict';
// `daemon unit NAME`: a systemd service that runs a recorded daemon with
// `daemon run` (Type=notify; a supervised one's supervisor in the
// foreground), its .socket units, and its environment file, as text.

const fs = require('node:fs');
const path = require('node:path');
const { ENV, SESSION_ONLY, MANAGER_ONLY, listed } = require('../shared/env.js');
const { splitName } = require('../launcher/listen.js');
const { UNNAMED } = require('../daemon/listeners.js');
const { START_FLAGS, streams, supervisedRun } = require('./args.js');
const { openState, writePrivate } = require('./state.js');

const CLI = path.join(__dirname, '..', '..', 'bin', 'daemon.js');
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `key` is the session's, the manager's or the state directory's, left out of a service's environment. */
function sessionOnly(key) {
  return listed(SESSION_ONLY, key) || listed(MANAGER_ONLY, key) || key === ENV.STATE_DIR;
}

/** A value systemd takes as it is: `%` starts a specifier; a control character cannot be written. */
function plain(text) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (/[\0-\x1f\x7f]/.test(text)) throw new Error(`${JSON.stringify(text)} cannot be written in a unit file`);
  return String(text).replaceAll('%', '%%');
}

/** One word of a command line: quoted, with `\`, `"`, `$` and `%` escaped. */
function word(text) {
  return `"${plain(text).replace(/[\\"]/g, '\\$&').replaceAll('$', '$$$$')}"`;
}

/**
 * The environment file's text: `KEY="VALUE"` lines without the session's
 * variables or names systemd would not take. Returns `{ text, left }`, `left`
 * naming what was left out for its name.
 */
function environmentFile(env) {
  const lines = [];
  const left = [];
  for (const [key, value] of Object.entries(env)) {
    if (sessionOnly(key)) continue;
    if (!VARIABLE.test(key) || value.includes('\0')) {
      left.push(key);
      continue;
    }
    // In double quotes systemd takes a newline as it is and a backslash escapes \ " ` $.
    lines.push(`${key}="${value.replace(/[\\"`$]/g, '\\$&')}"`);
  }
  return { text: lines.length === 0 ? '' : `${lines.join('\n')}\n`, left };
}

/** The flags every `daemon run` of a unit takes from the record. */
const RUN_FLAGS = Object.freeze(['pidfile', 'cwd', 'chroot', 'umask', 'no-core', 'wait-ready']);
/** Start flags a unit says in settings of its own (`User=`, `StandardOutput=`, `EnvironmentFile=`). */
const UNIT_SETTINGS = Object.freeze(['user', 'group', 'log', 'stdout', 'stderr', 'env-file']);
/** What a supervised service's `daemon run` takes besides: its supervisor's flags and the sockets. */
const SUPERVISOR_RUN_FLAGS = Object.freeze(START_FLAGS.filter((flag) => !RUN_FLAGS.includes(flag) && !UNIT_SETTINGS.includes(flag)));
/** The supervisor's defaults (docs/supervisor.md): how long a start and a stop may take in it. */
const READY_TIMEOUT = 30000;
const KILL_TIMEOUT = 5000;
/** What systemd allows beyond them: Node's own start, the command's, the supervisor's exit. */
const MARGIN = 5000;

/** `--flag value` words for `names` of `flags` (a boolean bare, a list repeated, the umask octal). */
function flagWords(flags, names) {
  return names.flatMap((flag) => {
    const value = flags[flag];
    if (value === undefined || value === false) return [];
    if (value === true) return [`--${flag}`];
    const text = (each) => (flag === 'umask' ? each.toString(8).padStart(3, '0') : String(each));
    return [value].flat().flatMap((each) => [`--${flag}`, text(each)]);
  });
}

/** A unit name's part for a listen name: systemd's escape of anything but letters, digits, `_`, `.` and `-`. */
const unitPart = (text) => text.replace(/[^A-Za-z0-9_.-]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/**
 * The .socket units of a service recorded with `--listen`: systemd binds the
 * addresses and keeps them across the service's restarts. A unit gives one
 * FileDescriptorName= to all its sockets, so there is one unit per listen
 * name: `NAME.socket` for the first, `NAME-LISTENNAME.socket` for each
 * other. Returns `[{ unit, text }]`, none without --listen.
 */
function socketUnits(record) {
  const groups = new Map();
  for (const text of record.flags.listen ?? []) {
    const [given, address] = splitName(text);
    const name = given ?? UNNAMED;
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(address);
  }
  return [...groups].map(([name, addresses], i) => {
    const unit = i === 0 ? `${record.name}.socket` : `${record.name}-${unitPart(name)}.socket`;
    const text = [
      `# ${record.name}'s listening sockets${name === UNNAMED ? '' : ` named ${name}`}: systemd holds them across its restarts; made by \`daemon unit ${record.name} --out\`.`,
      '[Unit]',
      `Description=${plain(record.name)}: ${addresses.map(plain).join(', ')}`,
      '',
      '[Socket]',
      ...addresses.map((address) => `ListenStream=${plain(address)}`),
      // Unnamed, a socket has the unit's name, which `daemon run` passes by for the address.
      ...(name === UNNAMED ? [] : [`FileDescriptorName=${plain(name)}`]),
      `Service=${record.name}.service`,
      '',
      '[Install]',
      'WantedBy=sockets.target',
      '',
    ].join('\n');
    return { unit, text };
  });
}

/**
 * The service unit for `record`: `daemon run` with the recorded flags under
 * Type=notify, its working directory and log files as systemd's own
 * settings, the environment from `envFile`. A supervised service (or one
 * with --listen) runs its supervisor in the foreground: instances, held
 * sockets (`sockets`: the .socket units that bind them, else `daemon run`
 * binds them), `ExecReload=` an upgrade, its drain under `KillMode=mixed`.
 * `system`: a system unit (else a user unit: no User=).
 */
function unitText(record, { node = process.execPath, envFile, system, sockets = [] }) {
  const { name, flags } = record;
  const supervised = supervisedRun(flags);
  // With a new root, the user changes after it, in `daemon run`; a supervisor runs its generations as the user.
  const userFlags = flags.chroot !== undefined || supervised;
  // A supervisor that rotates the logs opens them itself.
  const ownLogs = supervised && flags['log-max-size'] !== undefined;
  const run = [
    'run',
    '--name',
    name,
    ...flagWords(flags, RUN_FLAGS),
    ...(userFlags ? flagWords(flags, ['user', 'group']) : []),
    ...(supervised ? flagWords(flags, SUPERVISOR_RUN_FLAGS) : []),
    ...(ownLogs ? flagWords(flags, ['log', 'stdout', 'stderr']) : []),
  ];
  const out = streams(ownLogs ? {} : flags, 'journal');
  const logTo = (target) => (path.isAbsolute(target) ? `append:${plain(target)}` : 'journal');
  const command = (words) => words.map(word).join(' ');
  const service = [
    'Type=notify',
    // Without a supervisor `daemon run` runs the script in its own Node: --node-arg's options are that Node's.
    `ExecStart=${command([node, ...(supervised ? [] : (flags['node-arg'] ?? [])), CLI, ...run, '--', record.script, ...record.args])}`,
    supervised ? `ExecReload=${command([node, CLI, 'upgrade', name])}` : 'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
  ];
  if (supervised) {
    const ready = flags['ready-timeout'] ?? READY_TIMEOUT;
    const kill = flags['kill-timeout'] ?? KILL_TIMEOUT;
    // READY=1 from the supervisor alone; SIGTERM to it alone, which drains every instance, then exits.
    service.push('NotifyAccess=main', 'KillMode=mixed', `TimeoutStartSec=${ready + MARGIN}ms`, `TimeoutStopSec=${kill + MARGIN}ms`);
  } else if (flags['ready-timeout'] !== undefined) {
    service.push(`TimeoutStartSec=${flags['ready-timeout']}ms`);
  }
  if (system && !userFlags && flags.user !== undefined) service.push(`User=${plain(flags.user)}`);
  if (system && !userFlags && flags.group !== undefined) service.push(`Group=${plain(flags.group)}`);
  // The state directory the record is in: `daemon status NAME` finds the run there.
  const stateDir = process.env[ENV.STATE_DIR];
  service.push(
    `WorkingDirectory=${plain(flags.cwd ?? '/')}`,
    ...(stateDir ? [`Environment=${word(`${ENV.STATE_DIR}=${stateDir}`)}`] : []),
    `EnvironmentFile=${plain(envFile)}`,
    // Read at each start, over the recorded environment, as `daemon restart` does.
    ...(flags['env-file'] ?? []).map((file) => `EnvironmentFile=${plain(file)}`),
    `StandardOutput=${logTo(out.stdout)}`,
    `StandardError=${logTo(out.stderr)}`,
    `SyslogIdentifier=${name}`,
  );
  const after = ['network.target', ...sockets];
  const install = system ? '/etc/systemd/system' : '~/.config/systemd/user';
  return [
    `# ${name}, as \`daemon start\` last started it; made by \`daemon unit ${name}\`.`,
    `# Its environment is in ${envFile} (0600: a unit file is world-readable).`,
    `# Install: daemon startup ${name}${system ? '' : ' --user-unit'} (into ${install}); the logs: journalctl ${system ? '' : '--user '}-u ${name}`,
    `# It names ${node}: after moving or upgrading Node to another path, run daemon startup ${name} again.`,
    ...(Object.values(out).some((target) => path.isAbsolute(target))
      ? ['# systemd appends to the log files: rotate them with copytruncate.']
      : []),
    '[Unit]',
    `Description=${plain(name)}: ${plain(path.basename(record.script))}, run by daemon`,
    ...(sockets.length === 0 ? [] : [`Requires=${sockets.join(' ')}`]),
    `After=${after.join(' ')}`,
    '',
    '[Service]',
    ...service,
    ...(sockets.length === 0 ? [] : [`Sockets=${sockets.join(' ')}`]),
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

/**
 * Where the environment file of `name`'s unit goes: beside the records, or
 * /etc/daemon for root's /run/daemon, which a reboot empties; `given`: --env-out.
 */
function envFileOf(name, stateDir, system, given) {
  const dir = system && !process.env[ENV.STATE_DIR] ? '/etc/daemon' : stateDir;
  return given ?? path.join(dir, `${name}.env`);
}

/**
 * The units of `record`, `[{ unit, text }]`: its service, then its .socket
 * units when `withSockets` (else the service binds its addresses itself).
 */
function unitsOf(record, { envFile, system, withSockets }) {
  const sockets = withSockets ? socketUnits(record) : [];
  const service = unitText(record, { envFile, system, sockets: sockets.map(({ unit }) => unit) });
  return [{ unit: `${record.name}.service`, text: service }, ...sockets];
}

/**
 * Writes the environment file (0600) of `record`'s unit: `given` (--env-out)
 * where it says, else beside the records or in root's /etc/daemon, made and
 * written as the state directory is. Names on stderr the variables systemd
 * would not read.
 */
function writeEnvFile(record, envFile, given = false) {
  const { text, left } = environmentFile(record.env);
  if (left.length > 0) console.error(`daemon: left out of ${envFile}, which systemd would not read: ${left.join(', ')}`);
  if (given) {
    fs.mkdirSync(path.dirname(envFile), { recursive: true, mode: 0o700 });
    writePrivate(envFile, text);
  } else {
    openState({ create: true, dir: path.dirname(envFile) }).writePrivate(path.basename(envFile), text);
  }
}

module.exports = { environmentFile, envFileOf, socketUnits, unitText, unitsOf, writeEnvFile };
