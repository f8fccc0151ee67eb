'use strict';
// The `daemon` command's grammar: its flags and commands as tables, parsed
// with node:util's parseArgs on the arguments before the script only (the
// rest is the script's, untouched), and the usage texts made from the tables.

const path = require('node:path');
const { parseArgs } = require('node:util');
const { SYSLOG, INHERIT } = require('../shared/options.js');

class UsageError extends Error {}

/** Digits in `radix` (10 or 8) as a number; `flag` names the flag in the error. */
function integer(flag, text, radix = 10) {
  const digits = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!digits.test(text)) throw new UsageError(`--${flag} takes ${radix === 8 ? 'an octal' : 'a'} number, not ${text}`);
  return Number.parseInt(text, radix);
}

/** A signal number, or a name for stop() to check. */
const signalOf = (text) => (/^[0-9]+$/.test(text) ? Number(text) : text);
/** A user or group: a numeric id, else a name. */
const idOrName = (text) => (/^[0-9]+$/.test(text) ? Number(text) : text);
/** Paths are recorded absolute: a restart from elsewhere finds the same files. */
const absolute = (text) => path.resolve(text);
/** Where a stream goes: a file, or 'syslog' or 'inherit' (a file of that name: ./syslog). */
const STREAM_WORDS = Object.freeze([SYSLOG, INHERIT]);
const streamOf = (text) => (STREAM_WORDS.includes(text) ? text : path.resolve(text));

/**
 * Every flag: parseArgs' `type` (and `short`), `arg` (what its value is, for
 * the usage), `help`, `read` turning the text into the value the code uses,
 * and `option`, the start() option it sets as it is. A new flag is one row
 * here and its name in the commands that take it.
 */
const FLAGS = Object.freeze({
  __proto__: null,
  name: { type: 'string', arg: 'NAME', help: "the daemon's name (default: the script's file name without its extension)" },
  pidfile: { type: 'string', arg: 'P', help: 'the pid file (default: NAME.pid in the state directory)', read: absolute },
  log: { type: 'string', arg: 'F', help: 'append stdout and stderr to F (default: NAME.log in the state directory)', read: absolute },
  stdout: {
    type: 'string',
    arg: 'F',
    help: "append stdout to F (given alone: stderr too); 'syslog': a message a line; 'inherit': the caller's",
    read: streamOf,
  },
  stderr: { type: 'string', arg: 'F', help: 'the same for stderr (given alone: stdout too; syslog at priority err)', read: streamOf },
  cwd: { type: 'string', arg: 'D', help: 'working directory (default: the current one)', read: absolute, option: 'cwd' },
  'env-file': {
    type: 'string',
    multiple: true,
    arg: 'F',
    help: "variables for the script from F (Node's --env-file format; repeatable), read again at each restart",
    read: (texts) => texts.map(absolute),
  },
  umask: { type: 'string', arg: 'M', help: 'octal umask (default 022)', read: (text) => integer('umask', text, 8), option: 'umask' },
  'ready-timeout': {
    type: 'string',
    arg: 'MS',
    help: 'how long to wait for the daemon (default 30000)',
    read: (text) => integer('ready-timeout', text),
    option: 'readyTimeout',
  },
  user: { type: 'string', arg: 'U', help: 'run as this user (a name or an id; needs root)', read: idOrName },
  group: { type: 'string', arg: 'G', help: 'run as this group', read: idOrName },
  chroot: { type: 'string', arg: 'D', help: "change the root to D before the script runs (the script's path is inside D)", read: absolute },
  'no-core': { type: 'boolean', help: 'no core dumps', option: 'preventCore' },
  respawn: { type: 'boolean', help: 'a supervisor restarts the daemon when it crashes (not after a clean exit)' },
  instances: {
    type: 'string',
    short: 'i',
    arg: 'N|max',
    help: 'run N instances on the same sockets (max: one per available CPU); implies --respawn',
    read: (text) => (text === 'max' ? text : integer('instances', text)),
  },
  'max-memory': {
    type: 'string',
    arg: 'SIZE',
    help: 'replace an instance using more memory than SIZE (bytes, or with K, M, G), ready-first; implies --respawn',
  },
  'log-max-size': {
    type: 'string',
    arg: 'SIZE',
    help: 'rotate its log files once they pass SIZE (bytes, or with K, M, G); implies --respawn',
  },
  'log-keep': { type: 'string', arg: 'N', help: 'rotated files kept (default 5)', read: (text) => integer('log-keep', text) },
  'log-compress': { type: 'boolean', help: 'gzip the rotated files' },
  'kill-timeout': {
    type: 'string',
    arg: 'MS',
    help: 'how long a stopping daemon may drain before SIGKILL (default 5000); implies --respawn',
    read: (text) => integer('kill-timeout', text),
  },
  'respawn-limit': {
    type: 'string',
    arg: 'N',
    help: 'restarts allowed within the window before it gives up (default 10)',
    read: (text) => integer('respawn-limit', text),
  },
  'respawn-window': { type: 'string', arg: 'MS', help: 'that window (default 60000)', read: (text) => integer('respawn-window', text) },
  'node-arg': {
    type: 'string',
    multiple: true,
    arg: 'ARG',
    help: "an option of the script's Node (repeatable; --node-arg=--max-old-space-size=512)",
  },
  'wait-ready': { type: 'boolean', help: "ready once the script says so: process.send('ready') or the module's ready()" },
  listen: {
    type: 'string',
    multiple: true,
    arg: '[NAME=]ADDR',
    help: 'bind PORT, HOST:PORT, [IPV6]:PORT or /a/unix.sock for the daemon before it starts (repeatable; see listeners())',
    option: 'listen',
  },
  quiet: { type: 'boolean', short: 'q', help: 'print nothing on success' },
  signal: { type: 'string', arg: 'S', help: 'the signal to stop with (default SIGTERM)', read: signalOf },
  timeout: { type: 'string', arg: 'MS', help: 'SIGKILL after MS (default 10000)', read: (text) => integer('timeout', text) },
  json: { type: 'boolean', help: 'print JSON' },
  lines: { type: 'string', short: 'n', arg: 'N', help: 'how many of the last lines (default 10)', read: (text) => integer('lines', text) },
  follow: { type: 'boolean', short: 'f', help: 'keep printing what is appended' },
  once: { type: 'boolean', help: 'print one frame (CPU% over one second) and exit' },
  sort: {
    type: 'string',
    arg: 'KEY',
    help: 'order the services by cpu (the default), memory or name',
    read: (text) => {
      if (!['cpu', 'memory', 'name'].includes(text)) throw new UsageError(`--sort takes cpu, memory or name, not ${text}`);
      return text;
    },
  },
  raw: { type: 'boolean', help: 'print the bytes as written (by default control characters but newline and tab show as \\xHH)' },
  'env-out': { type: 'string', arg: 'F', help: "where to write the unit's environment (0600)", read: absolute },
  out: {
    type: 'string',
    arg: 'D',
    help: 'write NAME.service (and, with --listen, its .socket units) into D instead of printing',
    read: absolute,
  },
  'user-unit': { type: 'boolean', help: "install user units (~/.config/systemd/user) for the caller's own systemd" },
  logs: { type: 'boolean', help: 'remove its log files in the state directory too' },
  env: { type: 'string', arg: 'NAME', help: "with a FILE: each app's env_NAME over its env" },
  only: {
    type: 'string',
    arg: 'A,B',
    help: 'with a FILE: only these of its apps',
    read: (text) => text.split(',').map((name) => name.trim()),
  },
  config: {
    type: 'string',
    arg: 'FILE',
    help: 'a fleet file of any name (else FILE is *.config.js, .cjs, .mjs or *.json)',
    read: absolute,
  },
  help: { type: 'boolean', short: 'h', help: 'this help' },
});

/** The flags that say how a daemon is started: recorded, and replaced by those given to restart. */
const START_FLAGS = Object.freeze([
  'pidfile',
  'log',
  'stdout',
  'stderr',
  'cwd',
  'env-file',
  'umask',
  'ready-timeout',
  'user',
  'group',
  'chroot',
  'no-core',
  'respawn',
  'instances',
  'respawn-limit',
  'respawn-window',
  'kill-timeout',
  'max-memory',
  'log-max-size',
  'log-keep',
  'log-compress',
  'node-arg',
  'wait-ready',
  'listen',
]);

/** The flags that imply --respawn: a supervisor does what they ask. */
const SUPERVISOR_FLAGS = Object.freeze(['instances', 'kill-timeout', 'max-memory', 'log-max-size']);

/** Whether these flags start a supervisor. */
const supervised = (flags) => flags.respawn === true || SUPERVISOR_FLAGS.some((flag) => flags[flag] !== undefined);
/** Whether `daemon run` with these flags becomes a supervisor: sockets too are held across restarts by one. */
const supervisedRun = (flags) => supervised(flags) || flags.listen !== undefined;
/** Where output goes: given to restart, these replace all the recorded ones. */
const LOG_FLAGS = Object.freeze(['log', 'stdout', 'stderr']);

/**
 * `target`: the daemon is named by a NAME argument or --pidfile (`'name'`:
 * NAME only). `script`: `'required'` or `'optional'` after the options.
 */
const COMMANDS = Object.freeze({
  __proto__: null,
  start: {
    flags: ['name', ...START_FLAGS, 'quiet'],
    script: 'required',
    usage: '[options] [--] script.js [args...]',
    summary: 'start the script as a daemon; exits once it is ready',
  },
  stop: { flags: ['pidfile', 'signal', 'timeout'], target: true, summary: 'stop it, SIGKILL after the timeout' },
  restart: {
    flags: ['name', ...START_FLAGS, 'signal', 'timeout', 'quiet'],
    target: true,
    script: 'optional',
    usage: 'NAME [options] [-- script.js [args...]]',
    summary: 'stop, then start it as it was started; options given replace the recorded ones',
  },
  reload: { flags: ['pidfile'], target: true, summary: 'send SIGHUP (a script started here reopens its log files)' },
  upgrade: {
    flags: ['pidfile'],
    target: true,
    summary: 'with --respawn: new code on the same sockets, each instance retired once its new one is ready',
  },
  scale: {
    flags: ['pidfile'],
    target: true,
    count: true,
    usage: '(NAME | --pidfile P) N|max',
    summary: 'with --respawn: run N instances (added ones ready, removed ones drained)',
  },
  status: {
    flags: ['pidfile', 'json'],
    target: true,
    summary: '0 running (prints the pid), 1 dead with a pid file, 3 not running, 4 unknown',
  },
  list: { flags: ['json'], usage: '[--json]', summary: 'every daemon of the state directory (also: ls)' },
  top: {
    flags: ['once', 'sort'],
    usage: '[--once] [--sort cpu|memory|name]',
    summary: 'every daemon live: CPU%, memory, restarts, addresses (q quits)',
  },
  logs: { flags: ['pidfile', 'lines', 'follow', 'raw'], target: true, summary: 'the last lines of its log files' },
  run: {
    flags: ['name', ...START_FLAGS],
    script: 'required',
    usage: '[options] [--] script.js [args...]',
    summary: 'run it in the foreground (no fork; READY=1 to NOTIFY_SOCKET); with a supervisor flag or --listen, as its supervisor',
  },
  unit: {
    flags: ['env-out', 'out'],
    target: 'name',
    summary: 'print a systemd unit that runs it as it was started (--out D: write it, and its .socket)',
  },
  startup: {
    flags: ['user-unit'],
    target: 'names',
    usage: '[NAME...] [--user-unit]',
    summary: 'install and enable systemd units for these daemons (default: every one that runs), then stop their copies',
  },
  delete: {
    flags: ['pidfile', 'signal', 'timeout', 'logs'],
    target: true,
    summary: 'stop it if it runs and forget it: its record and pid files (its logs too with --logs)',
  },
});

/** Other names of commands, as pm2 users type them. */
const ALIASES = Object.freeze({ __proto__: null, ls: 'list' });

/** pm2's commands (lib/binaries/CLI.js) that are another command here, for an unknown command's hint. */
const PM2_COUNTERPARTS = Object.freeze({
  __proto__: null,
  ps: 'daemon list',
  l: 'daemon list',
  jlist: 'daemon list --json',
  prettylist: 'daemon list --json',
  monit: 'daemon top',
  imonit: 'daemon top',
  dash: 'daemon top',
  dashboard: 'daemon top',
  show: 'daemon status NAME',
  describe: 'daemon status NAME',
  desc: 'daemon status NAME',
  info: 'daemon status NAME',
  reloadLogs: 'daemon reload NAME',
  save: 'daemon startup',
  dump: 'daemon startup',
  resurrect: 'daemon startup',
  unstartup: 'systemctl disable --now NAME (the units daemon startup installed)',
  kill: 'daemon stop NAME, for each one',
});

/**
 * Refuses start flags that cannot go together: checked once the flags given
 * are merged with the recorded ones (`restart NAME --respawn-limit 5` of a
 * service started with --respawn is right).
 */
function checkStartFlags(flags) {
  if (!supervised(flags) && (flags['respawn-limit'] !== undefined || flags['respawn-window'] !== undefined)) {
    throw new UsageError('--respawn-limit and --respawn-window need --respawn');
  }
  if (flags['log-max-size'] === undefined && (flags['log-keep'] !== undefined || flags['log-compress'] !== undefined)) {
    throw new UsageError('--log-keep and --log-compress need --log-max-size');
  }
  if (flags.log !== undefined && (flags.stdout !== undefined || flags.stderr !== undefined)) {
    throw new UsageError('--log sends both streams to one file: give it alone, or --stdout and --stderr');
  }
  return flags;
}

/** The start flags of `given` over `recorded`; any log flag given replaces all the recorded ones. */
function mergeFlags(recorded, given) {
  const merged = Object.create(null);
  const logsGiven = LOG_FLAGS.some((flag) => given[flag] !== undefined);
  for (const flag of START_FLAGS) {
    const value = given[flag] !== undefined || (logsGiven && LOG_FLAGS.includes(flag)) ? given[flag] : recorded[flag];
    if (value !== undefined) merged[flag] = value;
  }
  return merged;
}

/** Where stdout and stderr go: --log takes both, either of --stdout and --stderr alone takes both, none: `fallback`. */
function streams(flags, fallback) {
  if (flags.log !== undefined) return { stdout: flags.log, stderr: flags.log };
  return { stdout: flags.stdout ?? flags.stderr ?? fallback, stderr: flags.stderr ?? flags.stdout ?? fallback };
}

/** How the command is written, for the usage. */
function synopsis(command) {
  const spec = COMMANDS[command];
  const target = spec.target === 'name' ? 'NAME' : spec.target ? '(NAME | --pidfile P)' : '';
  return `daemon ${command} ${spec.usage ?? `${target} [options]`}`;
}

const USAGE = [
  'Usage: daemon <command> [options]',
  '',
  'Commands:',
  ...Object.keys(COMMANDS).map((command) => `  ${synopsis(command).slice('daemon '.length).padEnd(48)} ${COMMANDS[command].summary}`),
  '',
  'The state directory: $DAEMON_DIR, else /run/daemon for root (macOS: /var/run/daemon), else $XDG_STATE_HOME/daemon (~/.local/state/daemon).',
  "A fleet file (pm2's ecosystem file: *.config.js, .cjs, .mjs or *.json, or --config F) in place of the script or NAME of",
  'start, restart, stop, reload, upgrade, status and delete: each of its apps (--only A,B; --env NAME).',
  "Run 'daemon <command> --help' for its options.",
].join('\n');

/** The usage's rows of the flags `names` (and --help). */
function flagRows(names) {
  return [...names, 'help'].map((flag) => {
    const { short, arg, help } = FLAGS[flag];
    const names = `${short ? `-${short}, ` : ''}--${flag}${arg ? ` ${arg}` : ''}`;
    return `  ${names.padEnd(22)} ${help}`;
  });
}

/** One command's help: its synopsis, summary and flags. */
function commandUsage(command) {
  const spec = COMMANDS[command];
  return `Usage: ${synopsis(command)}\n\n${spec.summary}\n\nOptions:\n${flagRows(spec.flags).join('\n')}`;
}

/**
 * Where the script starts in `args` (its index, or -1), found from parseArgs'
 * tokens, and whether a `--` said so.
 */
function scriptIndex(spec, tokens) {
  // restart NAME ... [-- script]: the first positional is the name, unless --pidfile or --name said which.
  const first = tokens.findIndex((token) => token.kind === 'positional');
  const before = first === -1 ? tokens : tokens.slice(0, first);
  const namedByFlag = before.some((token) => token.name === 'pidfile' || token.name === 'name');
  const leading = spec.target && !namedByFlag ? 1 : 0;
  let positionals = 0;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') return { cut: token.index + 1, terminated: true };
    if (token.kind === 'positional' && positionals++ === leading) return { cut: token.index, terminated: false };
  }
  return { cut: -1, terminated: false };
}

/** parseArgs' own part of the rows of `names` (and --help). */
function parseArgsOptions(names) {
  return Object.fromEntries(
    [...names, 'help'].map((flag) => {
      const { type, short, multiple } = FLAGS[flag];
      return [flag, Object.fromEntries(Object.entries({ type, short, multiple }).filter(([, value]) => value !== undefined))];
    }),
  );
}

/**
 * `args` read strictly as the flags `names` (and --help) and positionals:
 * `{ flags, positionals }`, the flags' values read (`flags` has no prototype).
 */
function readFlags(names, args) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseArgsOptions(names), strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const flags = Object.create(null);
  for (const [flag, value] of Object.entries(parsed.values))
    flags[flag] = FLAGS[flag].read && value !== undefined ? FLAGS[flag].read(value) : value;
  return { flags, positionals: parsed.positionals };
}

/**
 * Parses `args` of `command` (a known one): `{ help }` for --help, else
 * `{ flags, name, script, scriptArgs, misplaced }` with the flags' values read
 * (`flags` has no prototype); `misplaced`: the script's arguments that look
 * like the command's own flags.
 */
function parse(command, args) {
  const spec = COMMANDS[command];
  let cut = -1;
  let terminated = false;
  if (spec.script) {
    const options = parseArgsOptions(spec.flags);
    const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
    ({ cut, terminated } = scriptIndex(spec, tokens));
  }
  const { flags, positionals } = readFlags(spec.flags, cut === -1 ? args : args.slice(0, cut));
  if (flags.help) return { help: true };
  const [script, ...scriptArgs] = cut === -1 ? [] : args.slice(cut);
  // scale's count comes last: NAME N, or --pidfile P N.
  const count = spec.count ? positionals.pop() : undefined;
  if (spec.count && count === undefined) throw new UsageError('give the number of instances: N or max');
  const names = spec.target === 'names' ? positionals.length : spec.target ? 1 : 0;
  if (positionals.length > names) throw new UsageError(`unexpected argument ${positionals[names]}`);
  const name = positionals[0];
  if (spec.script === 'required' && script === undefined) throw new UsageError('no script given');
  if (spec.target === 'name' && name === undefined) throw new UsageError('no NAME given');
  if (spec.target === true && name === undefined && flags.pidfile === undefined && flags.name === undefined && script === undefined) {
    throw new UsageError('give a NAME or --pidfile');
  }
  if (count !== undefined && count !== 'max' && !/^[0-9]+$/.test(count))
    throw new UsageError(`the number of instances is N or max, not ${count}`);
  const parsedCount = count === undefined ? {} : { count: count === 'max' ? count : Number(count) };
  const misplaced = terminated ? [] : ownFlagsIn(spec, scriptArgs);
  const many = spec.target === 'names' ? { names: positionals } : {};
  return { flags, name: name ?? flags.name, script, scriptArgs, misplaced, ...parsedCount, ...many };
}

/**
 * The arguments among `scriptArgs` (up to a `--` of their own) that name one
 * of the command's own flags: they stay the script's, but whoever typed
 * `daemon start app.js --name web` is told.
 */
function ownFlagsIn(spec, scriptArgs) {
  const end = scriptArgs.indexOf('--');
  const own = [...spec.flags, 'help'];
  const shorts = own.map((flag) => FLAGS[flag].short).filter(Boolean);
  return (end === -1 ? scriptArgs : scriptArgs.slice(0, end)).filter((arg) => {
    if (arg.startsWith('--')) return own.includes(arg.slice(2).split('=')[0]);
    return /^-[A-Za-z]+$/.test(arg) && [...arg.slice(1)].every((letter) => shorts.includes(letter));
  });
}

module.exports = {
  UsageError,
  FLAGS,
  START_FLAGS,
  COMMANDS,
  ALIASES,
  PM2_COUNTERPARTS,
  USAGE,
  commandUsage,
  flagRows,
  parse,
  parseArgsOptions,
  readFlags,
  mergeFlags,
  checkStartFlags,
  streams,
  supervised,
  supervisedRun,
};
