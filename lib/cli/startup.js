'use strict';
// `daemon startup [NAME...] [--user-unit]`: the recorded daemons as systemd
// services that come back at boot: their units installed, the copies
// `daemon start` runs stopped, the units enabled and started; where systemd
// does not run, what to run where it does.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { status, stop } = require('../operator/control.js');
const { ENV } = require('../shared/env.js');
const state = require('./state.js');
const { unknownName } = require('./start.js');
const { envFileOf, unitsOf, writeEnvFile } = require('./unit.js');

/** Where systemd says it booted the machine (sd_booted(3)). */
const BOOTED = '/run/systemd/system';

/** Where units go: the system's, or the caller's own systemd's (`--user-unit`). */
function unitDir(userUnit) {
  if (!userUnit) return '/etc/systemd/system';
  const config = process.env[ENV.XDG_CONFIG_HOME] || path.join(os.homedir(), '.config');
  return path.join(config, 'systemd', 'user');
}

/** Whether the systemd these units are for runs here: the system's, or the caller's user manager. */
function systemdRuns(userUnit) {
  if (!fs.existsSync(BOOTED)) return false;
  const runtime = process.env[ENV.XDG_RUNTIME_DIR];
  return !userUnit || (runtime !== undefined && fs.existsSync(path.join(runtime, 'systemd', 'private')));
}

/** The pid of the daemon of `record` if it runs, else null. */
function runningPid(record) {
  try {
    const found = status(record.pidfile);
    return found.running ? found.pid : null;
  } catch {
    return null;
  }
}

/** The records of the NAMEs given (each must exist) in the open state directory `st`, or of every daemon that runs. */
function recordsOf(names, st) {
  if (names.length === 0) {
    const running = st.records().filter((record) => runningPid(record) !== null);
    if (running.length === 0) throw new Error(`no daemon of ${st.dir} runs: name those to install (daemon list shows them)`);
    return running;
  }
  return names.map((name) => {
    const record = st.record(state.checkName(name));
    if (record === null) throw unknownName(name, undefined, st);
    return record;
  });
}

/** `systemctl ARGS` (with --user for user units): said, run, and its failure thrown. */
function systemctl(userUnit, args) {
  const full = [...(userUnit ? ['--user'] : []), ...args];
  console.log(`ran: systemctl ${full.join(' ')}`);
  const result = spawnSync('systemctl', full, { stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`systemctl ${full.join(' ')} failed with status ${result.status}`);
}

/**
 * Installs the units of each daemon (every one checked and written before
 * any runs), then, where systemd runs: daemon-reload, stops the copies
 * `daemon start` runs (a .socket unit could not bind their addresses), and
 * enable --now. Elsewhere it says what to run. Resolves the exit status.
 */
async function startupCommand(parsed) {
  const userUnit = parsed.flags['user-unit'] === true;
  const system = !userUnit;
  const dir = unitDir(userUnit);
  if (system && process.geteuid() !== 0) {
    throw new Error(`installing into ${dir} needs root: --user-unit installs them for your own systemd (systemctl --user)`);
  }
  const st = state.openState();
  const records = recordsOf(parsed.names ?? [], st);
  const planned = records.map((record) => {
    const envFile = envFileOf(record.name, st.dir, system);
    return { record, envFile, units: unitsOf(record, { envFile, system, withSockets: true }) };
  });
  fs.mkdirSync(dir, { recursive: true });
  for (const { record, envFile, units } of planned) {
    writeEnvFile(record, envFile);
    console.log(`wrote ${envFile}`);
    for (const { unit, text } of units) {
      fs.writeFileSync(path.join(dir, unit), text, { mode: 0o644 });
      console.log(`wrote ${path.join(dir, unit)}`);
    }
  }
  // Sockets first: each service requires its own.
  const unitNames = planned.flatMap(({ units }) => [...units.slice(1), units[0]].map(({ unit }) => unit));
  const copies = planned.map(({ record }) => record).filter((record) => !record.foreground && runningPid(record) !== null);
  const underSystemd = planned.map(({ record }) => record).filter((record) => record.foreground && runningPid(record) !== null);
  const user = userUnit ? ' --user' : '';
  console.log(`They name ${process.execPath}: after moving or upgrading Node to another path, run daemon startup again.`);
  if (!systemdRuns(userUnit)) {
    console.log(`systemd does not run here (no ${BOOTED}${userUnit ? ', or no user manager' : ''}): where it runs, run`);
    for (const record of copies) console.log(`  daemon stop ${record.name}`);
    console.log(`  systemctl${user} daemon-reload`);
    console.log(`  systemctl${user} enable --now ${unitNames.join(' ')}`);
    return 0;
  }
  systemctl(userUnit, ['daemon-reload']);
  for (const record of copies) {
    const { pid, stopped } = await stop(record.pidfile);
    if (pid !== null && !stopped) throw new Error(`${record.name} (pid ${pid}) did not stop: its units are installed, not started`);
    if (pid !== null) console.log(`stopped ${record.name} (pid ${pid}), started by daemon start`);
  }
  systemctl(userUnit, ['enable', '--now', ...unitNames]);
  for (const record of underSystemd) {
    console.log(`${record.name} already runs under systemd: systemctl${user} restart ${record.name} runs it as the new unit says`);
  }
  return 0;
}

module.exports = { startup: startupCommand };
