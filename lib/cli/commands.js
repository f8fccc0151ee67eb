'use strict';
// The commands on a daemon that runs (or ran): stop, reload, upgrade, scale,
// status, list, logs, unit and delete, each naming it by NAME or --pidfile
// (a NAME no start recorded is an error). Exit codes follow the LSB
// init-script conventions.

const fs = require('node:fs');
const path = require('node:path');
const { signal, status, stop, upgrade, scale } = require('../operator/control.js');
const { supervisorFiles } = require('../operator/state-dir.js');
const { native, nativeFor } = require('../shared/native.js');
const { supervised } = require('./args.js');
const state = require('./state.js');
const { recordOf, unknownName } = require('./start.js');
const { describe, table, supervisionLines, statusCode } = require('./report.js');
const { envFileOf, unitsOf, writeEnvFile } = require('./unit.js');
const { logsCommand: printLogs } = require('./logs.js');

/** LSB: program is not running (reload), status unknown. */
const NOT_RUNNING = 7;
const UNKNOWN = 4;

/** Prints a line of the command's answer; for one app of a fleet file (`parsed.label`), after its name. */
function say(parsed, text) {
  console.log(parsed.label === undefined ? text : `${parsed.label}: ${text}`);
}

/**
 * The record of the daemon `parsed` names (NAME, or --pidfile P when a record
 * names P); a name or pid file no start recorded is an error.
 */
function recorded(parsed, st = state.openState()) {
  const record = recordOf(parsed, st);
  if (record !== null) return record;
  if (parsed.name !== undefined) throw unknownName(parsed.name, undefined, st);
  throw new Error(`no daemon started here has the pid file ${parsed.flags.pidfile} (${st.dir}; daemon list shows them)`);
}

/** The pid file of the daemon `parsed` names: --pidfile (recorded or not), or its recorded one. */
function pidfileOf(parsed, st = state.openState()) {
  return parsed.flags.pidfile ?? recorded(parsed, st).pidfile;
}

async function stopCommand(parsed) {
  const { pid, stopped, killed } = await stop(pidfileOf(parsed), { signal: parsed.flags.signal, timeout: parsed.flags.timeout });
  say(parsed, pid === null ? 'not running' : `${killed ? 'killed' : 'stopped'} ${pid}`);
  return pid === null || stopped ? 0 : 1;
}

function reloadCommand(parsed) {
  try {
    say(parsed, `sent SIGHUP to ${signal(pidfileOf(parsed), 'SIGHUP')}`);
    return 0;
  } catch (error) {
    if (error.code !== 'ESRCH') throw error;
    console.error(`daemon: ${parsed.label === undefined ? '' : `${parsed.label}: `}not running`);
    return NOT_RUNNING;
  }
}

/**
 * Why no supervisor of `pidfile` answered (`error`) when asked to `what` the
 * service, said as what to do: it is not running, or runs without one.
 */
function noSupervisor(parsed, pidfile, what, error) {
  if (error.code !== 'ENOENT' && error.code !== 'ECONNREFUSED') return error;
  const target = parsed.name ?? `--pidfile ${pidfile}`;
  const { running, daemonPid } = status(pidfile);
  if (!running) return new Error(`${target} is not running, so there is nothing to ${what}: daemon restart ${target} starts it`);
  const record = recordOf(parsed, state.openState());
  if (record === null ? daemonPid !== undefined : supervised(record.flags)) return error;
  return new Error(
    `${target} runs without a supervisor (it was started without --respawn), and only a supervisor can ${what} it: ` +
      `daemon restart ${target} restarts it, or daemon restart ${target} --respawn gives it one`,
  );
}

/** 0 once the new code serves; 1 with the supervisor's reason (the instances not upgraded serve on). */
async function upgradeCommand(parsed) {
  const pidfile = pidfileOf(parsed);
  const { daemonPid, previous, instances } = await upgrade(pidfile).catch((error) => {
    throw noSupervisor(parsed, pidfile, 'upgrade', error);
  });
  if (instances.length <= 1) say(parsed, `upgraded: the daemon ${daemonPid} serves, ${previous} is retired`);
  else say(parsed, `upgraded ${instances.length} instances: ${instances.map((i) => `${i.daemonPid} (was ${i.previous})`).join(', ')}`);
  return 0;
}

/** 0 once the service runs that many instances (the record keeps the count for restart); 1 with the supervisor's reason. */
async function scaleCommand(parsed) {
  const st = state.openState();
  const pidfile = pidfileOf(parsed, st);
  const { instances } = await scale(pidfile, parsed.count).catch((error) => {
    throw noSupervisor(parsed, pidfile, 'scale', error);
  });
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
  let pidfile;
  try {
    pidfile = pidfileOf(parsed, st);
  } catch (error) {
    if (error.code !== 'ERR_DAEMON_UNKNOWN') throw error;
    console.error(`daemon: ${error.message}`);
    return UNKNOWN;
  }
  const row = describe(parsed.name ?? path.basename(pidfile), pidfile, recordOf(parsed, st));
  if (parsed.flags.json) console.log(JSON.stringify(row));
  if (row.status === 'unknown') {
    console.error(`daemon: ${row.error}`);
    return statusCode(row);
  }
  if (!parsed.flags.json) {
    if (row.running) console.log(row.pid ?? 'running');
    else console.log(row.stale ? `dead, but ${pidfile} is left over` : 'not running');
    for (const line of supervisionLines(row)) console.log(line);
  }
  return statusCode(row);
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
  return printLogs(parsed, recorded(parsed));
}

/**
 * Prints the service unit, or with --out writes it and its .socket units
 * into that directory; writes its environment file (0600).
 */
function unitCommand(parsed) {
  const st = state.openState();
  const record = recorded(parsed, st);
  const system = process.geteuid() === 0;
  const out = parsed.flags.out;
  const envFile = envFileOf(record.name, st.dir, system, parsed.flags['env-out']);
  const units = unitsOf(record, { envFile, system, withSockets: out !== undefined });
  writeEnvFile(record, envFile, parsed.flags['env-out'] !== undefined);
  if (out === undefined) {
    if (record.flags.listen !== undefined) {
      console.error(
        `daemon: it binds ${record.flags.listen.join(', ')} itself: --out D writes a .socket unit too, for systemd to hold them`,
      );
    }
    process.stdout.write(units[0].text);
    return 0;
  }
  fs.mkdirSync(out, { recursive: true });
  for (const { unit, text } of units) {
    fs.writeFileSync(path.join(out, unit), text, { mode: 0o644 });
    console.log(`wrote ${path.join(out, unit)}`);
  }
  return 0;
}

/**
 * Removes the pid file `pidfile` and its lock file, left by a daemon that
 * did not end cleanly. In a directory of the state directory's, they go by
 * name; elsewhere through lock()'s own checks (the caller's own files, no
 * other user's symlink on the way): taken, then let go of and removed.
 */
function removePidFiles(pidfile, inStateDir) {
  if (status(pidfile).running) throw new Error(`${pidfile} is locked again: a new start took it`);
  const names = [pidfile, `${pidfile}.lock`];
  if (inStateDir) {
    for (const file of names) fs.rmSync(file, { force: true });
    return;
  }
  if (!names.some((file) => fs.existsSync(file))) return;
  if (!nativeFor('delete').lock(pidfile)) throw new Error(`${pidfile} is locked again: a new start took it`);
  native().releaseLocks();
}

/** The directory an earlier version made for a daemon's user in the state directory, once empty. */
function removeOwnDir(dir) {
  try {
    fs.rmdirSync(dir);
  } catch (error) {
    if (error.code === 'ENOTEMPTY') console.error(`daemon: kept ${dir}: its user left files in it`);
    else if (error.code !== 'ENOENT') throw error;
  }
}

/** The log files of `record` that are in the state directory `dir`, removed; returns those left elsewhere. */
function removeLogs(record, dir) {
  const files = [...new Set([record.stdout, record.stderr])].filter((target) => path.isAbsolute(target));
  for (const file of files) if (path.dirname(file) === dir) fs.rmSync(file, { force: true });
  return files.filter((file) => path.dirname(file) !== dir);
}

/**
 * Forgets a daemon: stops it if it runs, then removes its pid files, its
 * supervisor's record, its log files with --logs (those in the state
 * directory), and last its record.
 */
async function deleteCommand(parsed) {
  const st = state.openState();
  const record = recorded(parsed, st);
  const dir = st.dir;
  const { pid, stopped, killed } = await stop(record.pidfile, { signal: parsed.flags.signal, timeout: parsed.flags.timeout });
  if (pid !== null && !stopped) throw new Error(`pid ${pid} did not stop: ${record.name} is kept`);
  if (pid !== null) say(parsed, `${killed ? 'killed' : 'stopped'} ${pid}`);
  // An earlier version put a daemon of another user's pid file in NAME/, a directory of that user's.
  const ownDir = path.join(dir, record.name, `${record.name}.pid`);
  const inStateDir = record.pidfile === ownDir || record.pidfile === state.filesOf(dir, record.name).pidfile;
  removePidFiles(record.pidfile, inStateDir);
  if (record.pidfile === ownDir) removeOwnDir(path.dirname(ownDir));
  for (const file of Object.values(supervisorFiles(record.pidfile, dir))) st.remove(path.basename(file));
  const elsewhere = parsed.flags.logs ? removeLogs(record, dir) : [];
  st.removeRecord(record.name);
  console.log(`deleted ${record.name}`);
  if (elsewhere.length > 0) console.error(`daemon: kept ${elsewhere.join(', ')}, outside ${dir}`);
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
  delete: deleteCommand,
};
