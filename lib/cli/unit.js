'use strict';
// `daemon unit NAME`: a systemd service that runs a recorded daemon with
// `daemon run` (Type=notify), and its environment file, as text.

const path = require('node:path');
const { SESSION_ONLY } = require('../shared/env.js');
const { streams } = require('./args.js');

const CLI = path.join(__dirname, '..', '..', 'bin', 'daemon.js');
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `key` is a session variable, left out of a service's environment. */
function sessionOnly(key) {
  return SESSION_ONLY.some((entry) => (entry.endsWith('*') ? key.startsWith(entry.slice(0, -1)) : key === entry));
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

/**
 * The unit for `record`: `daemon run` with the recorded flags under
 * Type=notify, its user, working directory and log files as systemd's own
 * settings, the environment from `envFile`. `system`: a system unit (else a
 * user unit: no User=).
 */
function unitText(record, { node = process.execPath, envFile, system }) {
  const { name, flags } = record;
  const run = ['run', '--name', name];
  for (const flag of ['pidfile', 'cwd', 'chroot']) if (flags[flag] !== undefined) run.push(`--${flag}`, flags[flag]);
  if (flags.umask !== undefined) run.push('--umask', flags.umask.toString(8).padStart(3, '0'));
  if (flags['no-core']) run.push('--no-core');
  // With a new root, the user changes after it, in `daemon run`.
  const userFlags = flags.chroot !== undefined;
  if (userFlags) for (const flag of ['user', 'group']) if (flags[flag] !== undefined) run.push(`--${flag}`, String(flags[flag]));
  const out = streams(flags, 'journal');
  const logTo = (target) => (path.isAbsolute(target) ? `append:${plain(target)}` : 'journal');
  const service = [
    'Type=notify',
    `ExecStart=${[node, CLI, ...run, '--', record.script, ...record.args].map(word).join(' ')}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
  ];
  if (system && !userFlags && flags.user !== undefined) service.push(`User=${plain(flags.user)}`);
  if (system && !userFlags && flags.group !== undefined) service.push(`Group=${plain(flags.group)}`);
  service.push(
    `WorkingDirectory=${plain(flags.cwd ?? '/')}`,
    `EnvironmentFile=${plain(envFile)}`,
    // Read at each start, over the recorded environment, as `daemon restart` does.
    ...(flags['env-file'] ?? []).map((file) => `EnvironmentFile=${plain(file)}`),
    `StandardOutput=${logTo(out.stdout)}`,
    `StandardError=${logTo(out.stderr)}`,
    `SyslogIdentifier=${name}`,
  );
  if (flags['ready-timeout'] !== undefined) service.push(`TimeoutStartSec=${flags['ready-timeout']}ms`);
  const install = system ? `/etc/systemd/system/${name}.service` : `~/.config/systemd/user/${name}.service`;
  return [
    `# ${name}, as \`daemon start\` last started it; made by \`daemon unit ${name}\`.`,
    `# Its environment is in ${envFile} (0600: a unit file is world-readable).`,
    `# Install: daemon unit ${name} > ${install}; the logs: journalctl ${system ? '' : '--user '}-u ${name}`,
    ...(Object.values(out).some((target) => path.isAbsolute(target))
      ? ['# systemd appends to the log files: rotate them with copytruncate.']
      : []),
    '[Unit]',
    `Description=${plain(name)}: ${plain(path.basename(record.script))}, run by daemon`,
    'After=network.target',
    '',
    '[Service]',
    ...service,
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

module.exports = { environmentFile, unitText };
