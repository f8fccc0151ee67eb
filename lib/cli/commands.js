'use strict';
// The commands on a daemon that runs (or ran): stop, reload, upgrade, scale,
// status, list, logs and unit, each naming it by NAME or --pidfile. Exit codes follow the
// LSB init-script conventions.

const fs = require('node:fs');
const path = require('node:path');
const { signal, stop, upgrade, scale } = require('../operator/control.js');
const { ENV } = require('../shared/env.js');
const state = require('./state.js');
const { recordOf } = require('./start.js');
const { describe, table, supervisionLines } = require('./report.js');
const { environmentFile, unitText } = require('./unit.js');
const { logsCommand: printLogs } = require('./logs.js');

/** LSB: program is not running (reload), status unknown. */
const NOT_RUNNING = 7;
const UNKNOWN = 4;

/** The pid file of the daemon `parsed` names (in the open state directory `st`): --pidfile, its recorded one, or its default one. */
function pidfileOf(parsed, st = state.openState()) {
  if (parsed.flags.pidfile !== undefined) return parsed.flags.pidfile;
  return recordOf(parsed, st)?.pidfile ?? state.filesOf(st.dir, parsed.name).pidfile;
}

/** The record of NAME in `st`; a NAME with none is an error. */
function recorded(parsed, st) {
  const record = recordOf(parsed, st);
  if (record === null) throw new Error(`no daemon named ${parsed.name} was started here (${st.dir}; see daemon list)`);
  return record;
}

async function stopCommand(parsed) {
  const { pid, stopped, killed } = await stop(pidfileOf(parsed), { signal: parsed.flags.signal, timeout: parsed.flags.timeout });
  if (pid === null) console.log('not running');
  else console.log(`${killed ? 'killed' : 'stopped'} ${pid}`);
  return pid === null || stopped ? 0 : 1;
}

function reloadCommand(parsed) {
  try {
    console.log(`sent SIGHUP to ${signal(pidfileOf(parsed), 'SIGHUP')}`);
    return 0;
  } catch (error) {
    if (error.code !== 'ESRCH') throw error;
    console.error('daemon: not running');
    return NOT_RUNNING;
  }
}

/** 0 once the new code serves; 1 with the supervisor's reason (the instances not upgraded serve on). */
async function upgradeCommand(parsed) {
  const { daemonPid, previous, instances } = await upgrade(pidfileOf(parsed));
  if (instances.length <= 1) console.log(`upgraded: the daemon ${daemonPid} serves, ${previous} is retired`);
  else console.log(`upgraded ${instances.length} instances: ${instances.map((i) => `${i.daemonPid} (was ${i.previous})`).join(', ')}`);
  return 0;
}

/** 0 once the service runs that many instances (the record keeps the count for restart); 1 with the supervisor's reason. */
async function scaleCommand(parsed) {
  const st = state.openState();
  const pidfile = pidfileOf(parsed, st);
  const { instances } = await scale(pidfile, parsed.count);
  const record = recordOf(parsed, st);
  if (record !== null) {
    record.flags.instances = parsed.count;
    st.writeRecord(record.name, record);
  }
  console.log(`${record?.name ?? pidfile}: ${instances} instance${instances === 1 ? '' : 's'}`);
  return 0;
}

function statusCommand(parsed) {
  const st = state.openState();
  const pidfile = pidfileOf(parsed, st);
  const row = describe(parsed.name ?? path.basename(pidfile), pidfile, recordOf(parsed, st));
  if (parsed.flags.json) console.log(JSON.stringify(row));
  if (row.status === 'unknown') {
    console.error(`daemon: ${row.error}`);
    return UNKNOWN;
  }
  const { running, stale } = row;
  if (!parsed.flags.json) {
    if (running) console.log(row.pid ?? 'running');
    else console.log(stale ? `dead, but ${pidfile} is left over` : 'not running');
    for (const line of supervisionLines(row)) console.log(line);
  }
  return running ? 0 : stale ? 1 : 3;
}

function listCommand(parsed) {
  const st = state.openState();
  const rows = st.records().map((record) => describe(record.name, record.pidfile, record));
  if (parsed.flags.json) console.log(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) console.log(`no daemons in ${st.dir}`);
  else console.log(table(rows));
  return 0;
}

/** The last lines of its log files (lib/cli/logs.js), or where to look when it logs to syslog. */
function logsCommand(parsed) {
  return printLogs(parsed, recorded(parsed, state.openState()));
}

/**
 * Prints the unit and writes its environment file (0600): beside the
 * records, or /etc/daemon for root's /run/daemon, which a reboot empties.
 */
function unitCommand(parsed) {
  const st = state.openState();
  const record = recorded(parsed, st);
  const system = process.geteuid() === 0;
  const dir = system && !process.env[ENV.STATE_DIR] ? '/etc/daemon' : st.dir;
  const envFile = parsed.flags['env-file'] ?? path.join(dir, `${record.name}.env`);
  const text = unitText(record, { envFile, system });
  const { text: envText, left } = environmentFile(record.env);
  if (left.length > 0) console.error(`daemon: left out of ${envFile}, which systemd would not read: ${left.join(', ')}`);
  if (record.flags.listen !== undefined) {
    console.error(
      `daemon: systemd binds for a unit: give it a ${record.name}.socket with ListenStream= for ${record.flags.listen.join(', ')}`,
    );
  }
  if (parsed.flags['env-file'] === undefined) {
    // Beside the records, or in root's /etc/daemon: made and written as the state directory is.
    state.openState({ create: true, dir }).writePrivate(path.basename(envFile), envText);
  } else {
    fs.mkdirSync(path.dirname(envFile), { recursive: true, mode: 0o700 });
    state.writePrivate(envFile, envText);
  }
  process.stdout.write(text);
  return 0;
}

module.exports = {
  stop: stopCommand,
  reload: reloadCommand,
  upgrade: upgradeCommand,
  scale: scaleCommand,
  status: statusCommand,
  list: listCommand,
  logs: logsCommand,
  unit: unitCommand,
};
