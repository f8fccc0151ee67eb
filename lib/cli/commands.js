'use strict';
// The commands on a daemon that runs (or ran): stop, reload, upgrade, scale,
// status, list, logs and unit, each naming it by NAME or --pidfile. Exit codes follow the
// LSB init-script conventions.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { signal, stop, upgrade, scale } = require('../operator/control.js');
const { ENV } = require('../shared/env.js');
const { SYSLOG, INHERIT } = require('../shared/options.js');
const state = require('./state.js');
const { recordOf } = require('./start.js');
const { describe, table, supervisionLines } = require('./report.js');
const { environmentFile, unitText } = require('./unit.js');

/** LSB: program is not running (reload), status unknown. */
const NOT_RUNNING = 7;
const UNKNOWN = 4;
/** The signals `logs` hands on to its tail. */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The pid file of the daemon `parsed` names: --pidfile, its recorded one, or its default one. */
function pidfileOf(parsed) {
  if (parsed.flags.pidfile !== undefined) return parsed.flags.pidfile;
  return recordOf(parsed)?.pidfile ?? state.filesOf(state.stateDir(), parsed.name).pidfile;
}

/** The record of NAME; a NAME with none is an error. */
function recorded(parsed) {
  const record = recordOf(parsed);
  if (record === null) throw new Error(`no daemon named ${parsed.name} was started here (${state.stateDir()}; see daemon list)`);
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
  const pidfile = pidfileOf(parsed);
  const { instances } = await scale(pidfile, parsed.count);
  const record = recordOf(parsed);
  if (record !== null) {
    record.flags.instances = parsed.count;
    state.writeRecord(state.filesOf(state.stateDir(), record.name).record, record);
  }
  console.log(`${record?.name ?? pidfile}: ${instances} instance${instances === 1 ? '' : 's'}`);
  return 0;
}

function statusCommand(parsed) {
  const pidfile = pidfileOf(parsed);
  const row = describe(parsed.name ?? path.basename(pidfile), pidfile, recordOf(parsed));
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
  const rows = state.allRecords(state.stateDir()).map((record) => describe(record.name, record.pidfile, record));
  if (parsed.flags.json) console.log(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) console.log(`no daemons in ${state.stateDir()}`);
  else console.log(table(rows));
  return 0;
}

/** The last lines of its log files (`tail`), or where to look when it logs to syslog. */
function logsCommand(parsed) {
  const { name, stdout, stderr } = recorded(parsed);
  const files = [...new Set([stdout, stderr])].filter((target) => path.isAbsolute(target));
  if ([stdout, stderr].includes(SYSLOG)) console.error(`daemon: ${name} logs to syslog: journalctl -t ${name}`);
  if ([stdout, stderr].includes(INHERIT)) console.error(`daemon: ${name} wrote to the streams of the command that started it`);
  if (files.length === 0) return 0;
  const lines = String(parsed.flags.lines ?? 10);
  const tail = spawn('tail', ['-n', lines, ...(parsed.flags.follow ? ['-F'] : []), ...files], { stdio: 'inherit' });
  // Ended by a signal, the command ends its tail too (a following one would read on alone).
  const forward = (name) => tail.kill(name);
  for (const name of FORWARDED) process.on(name, forward);
  return new Promise((resolve, reject) => {
    tail.on('error', reject);
    tail.on('exit', (code, name) => {
      for (const each of FORWARDED) process.removeListener(each, forward);
      resolve(code ?? 128 + os.constants.signals[name]);
    });
  });
}

/**
 * Prints the unit and writes its environment file (0600): beside the
 * records, or /etc/daemon for root's /run/daemon, which a reboot empties.
 */
function unitCommand(parsed) {
  const record = recorded(parsed);
  const system = process.geteuid() === 0;
  const dir = system && !process.env[ENV.STATE_DIR] ? '/etc/daemon' : state.stateDir();
  const envFile = parsed.flags['env-file'] ?? path.join(dir, `${record.name}.env`);
  const text = unitText(record, { envFile, system });
  const { text: envText, left } = environmentFile(record.env);
  if (left.length > 0) console.error(`daemon: left out of ${envFile}, which systemd would not read: ${left.join(', ')}`);
  if (record.flags.listen !== undefined) {
    console.error(
      `daemon: systemd binds for a unit: give it a ${record.name}.socket with ListenStream= for ${record.flags.listen.join(', ')}`,
    );
  }
  fs.mkdirSync(path.dirname(envFile), { recursive: true, mode: 0o700 });
  state.writePrivate(envFile, envText);
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
