'use strict';
// The commands on a fleet file (`daemon start|restart|run|stop|reload|
// upgrade|status|delete FILE`): each on every app of the file, or those of --only,
// as the command does on one NAME, one line per app; the exit status is the
// highest of the apps'.

const { parseArgs } = require('node:util');
const { COMMANDS, START_FLAGS, UsageError, flagRows, mergeFlags, parseArgsOptions, readFlags } = require('./args.js');
const { isFleetFile, readFleet } = require('./fleet.js');
const { planStart, launch, relaunch } = require('./start.js');
const { describe, rowWithoutProcess, statusCode, table } = require('./report.js');
const commands = require('./commands.js');
const { runFleet: runInForeground } = require('./fleet-run.js');
const state = require('./state.js');

/** What every command takes with a FILE. */
const FILE_FLAGS = Object.freeze(['only', 'env', 'config']);
/** Given to start or restart with a FILE, start flags go over every app's keys (a pid file is each app's own). */
const APP_FLAGS = Object.freeze(START_FLAGS.filter((flag) => flag !== 'pidfile'));

/**
 * Runs `fn` for app `name`: its exit status, or 1 with its error said in
 * one line naming the app (the other apps go on).
 */
async function attempt(name, fn) {
  try {
    return await fn();
  } catch (error) {
    console.error(`daemon: ${name}: ${error.message}`);
    return 1;
  }
}

/** The start plan of `app` with the flags given over its own, checked; its errors name it. */
function planOf(app, given, { adopted = false } = {}) {
  const flags = mergeFlags(app.flags, given);
  try {
    const parsed = { name: app.name, script: app.script, scriptArgs: app.scriptArgs, flags, env: { ...process.env, ...app.env } };
    return planStart(parsed, null, { adopted });
  } catch (error) {
    // A key of the file, not a mistake on the command line: no usage.
    if (error instanceof UsageError) throw new Error(`${app.name}: ${error.message}`);
    error.message = `${app.name}: ${error.message}`;
    throw error;
  }
}

/**
 * Every app planned (and so checked) before the first starts; then each
 * started by `go(plan, recorded)`, in the file's order.
 */
async function startEach(fleet, flags, go) {
  const plans = fleet.apps.map((app) => planOf(app, flags));
  const st = state.openState();
  let code = 0;
  for (const plan of plans) {
    const status = await attempt(plan.name, () => go(plan, st.record(plan.name)));
    if (status !== 0) console.error(`daemon: ${plan.name} did not start`);
    code = Math.max(code, status);
  }
  return code;
}

/** `start FILE`: each app as `daemon start` starts one (one that runs is refused, the others start). */
function startFleet(fleet, flags) {
  return startEach(fleet, flags, (plan, recorded) => launch(plan, recorded, flags));
}

/** `restart FILE`: each app stopped, then started from the file as it is now (not from its record). */
function restartFleet(fleet, flags) {
  return startEach(fleet, flags, (plan, recorded) => relaunch(plan, recorded, flags));
}

/**
 * `run FILE`: each app started as `start` starts it, adopted by this process,
 * which then becomes their init (fleet-run.js): a container's PID 1, one
 * systemd service.
 */
function runFleetInForeground(fleet, flags) {
  return runInForeground(() => fleet.apps.map((app) => planOf(app, flags, { adopted: true })), flags);
}

/** The command `handler` of commands.js on each app, by its NAME; its lines start with the app's name. */
function eachApp(handler) {
  return async (fleet, flags) => {
    let code = 0;
    for (const app of fleet.apps) code = Math.max(code, await attempt(app.name, () => handler({ name: app.name, flags, label: app.name })));
    return code;
  };
}

/** The row of an app that has no record: never started here, or deleted. */
const notStarted = (name) => rowWithoutProcess(name, 'not started', { stale: false });

/** `status FILE`: the apps as `list` shows them; LSB's status of the worst (one not started is not running, 3). */
function statusFleet(fleet, flags) {
  const st = state.openState();
  const rows = fleet.apps.map((app) => {
    const record = st.record(app.name);
    return record === null ? notStarted(app.name) : describe(app.name, record.pidfile, record);
  });
  console.log(flags.json ? JSON.stringify(rows, null, 2) : table(rows));
  return Math.max(...rows.map(statusCode));
}

/**
 * The commands that take a FILE: their flags with one (besides FILE_FLAGS),
 * what they do, and whether they start apps (and so say which keys they ignore).
 */
const FLEET = Object.freeze({
  __proto__: null,
  start: { flags: [...APP_FLAGS, 'quiet'], run: startFleet, starts: true },
  restart: { flags: [...APP_FLAGS, 'signal', 'timeout', 'quiet'], run: restartFleet, starts: true },
  run: { flags: [...APP_FLAGS, 'quiet'], run: runFleetInForeground, starts: true },
  stop: { flags: ['signal', 'timeout'], run: eachApp(commands.stop) },
  reload: { flags: [], run: eachApp(commands.reload) },
  upgrade: { flags: [], run: eachApp(commands.upgrade) },
  status: { flags: ['json'], run: statusFleet },
  delete: { flags: ['signal', 'timeout', 'logs'], run: eachApp(commands.delete) },
});

/**
 * Whether `args` of `command` name a fleet file: `{ file, rest }` (`file`
 * undefined for --config), else null. Before a `--`, --config FILE, or a
 * first argument (the script's or NAME's place) that names an existing file
 * the rule takes for one (fleet.js).
 */
function fleetFileIn(command, args) {
  const names = [...new Set([...COMMANDS[command].flags, ...(FLEET[command]?.flags ?? []), ...FILE_FLAGS])];
  const { tokens } = parseArgs({ args, options: parseArgsOptions(names), strict: false, allowPositionals: true, tokens: true });
  const end = tokens.find((token) => token.kind === 'option-terminator')?.index ?? args.length;
  const before = tokens.filter((token) => token.index < end);
  if (before.some((token) => token.kind === 'option' && token.name === 'config')) return { file: undefined, rest: args };
  const first = before.find((token) => token.kind === 'positional');
  if (first === undefined || !isFleetFile(first.value)) return null;
  return { file: first.value, rest: args.filter((_, index) => index !== first.index) };
}

/** The help of `command` with a FILE. */
function fleetUsage(command) {
  return [
    `Usage: daemon ${command} FILE [options]`,
    '',
    `${COMMANDS[command].summary}: each app of FILE (a fleet file: *.config.js, .cjs, .mjs or *.json, or --config FILE)`,
    '',
    'Options:',
    ...flagRows([...FLEET[command].flags, ...FILE_FLAGS]),
  ].join('\n');
}

/**
 * A fleet file runs as code in this process (pm2's format), and may leave a
 * timer or a socket behind: the command ends once its output is written, as
 * pm2's does (after main()'s caller has set the exit status).
 */
function endOnceWritten() {
  setImmediate(() => {
    let streams = 2;
    const written = () => --streams === 0 && process.exit();
    process.stdout.write('', written);
    process.stderr.write('', written);
  });
}

/** Runs `command` on the fleet file `found` names (fleetFileIn); resolves the exit status. */
async function runFleet(command, found) {
  try {
    return await runOnFile(command, found);
  } finally {
    endOnceWritten();
  }
}

/** runFleet()'s work: the flags, the file, then the command on its apps. */
async function runOnFile(command, found) {
  const spec = FLEET[command];
  if (spec === undefined) {
    throw new UsageError(`daemon ${command} takes no fleet file (${found.file ?? '--config'}): give a NAME`);
  }
  const { flags, positionals } = readFlags([...spec.flags, ...FILE_FLAGS], found.rest);
  if (flags.help) {
    console.log(fleetUsage(command));
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${positionals[0]}: a fleet file takes no script, arguments or NAME`);
  const fleet = await readFleet(flags.config ?? found.file, { envName: flags.env, only: flags.only });
  if (spec.starts) for (const note of fleet.notes) console.error(`daemon: ${note}`);
  return spec.run(fleet, flags);
}

module.exports = { fleetFileIn, runFleet };
