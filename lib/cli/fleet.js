'use strict';
// A fleet file: pm2's ecosystem file (`{ apps: [...] }` exported by a .js,
// .cjs or .mjs, or a .json), which arguments name one, the checks before
// root loads one, and its apps read into start plans: what `daemon start`
// makes of a command line, from pm2's keys and this project's own.

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { pathToFileURL } = require('node:url');
const { isEsm } = require('../launcher/command.js');
const { codedError, describeValue, systemError } = require('../shared/errors.js');
const { openStateDir } = require('../operator/state-dir.js');
const { availableCpus } = require('../shared/options.js');
const importModule = require('../shared/import.js');
const { UsageError } = require('./args.js');
const { nearest } = require('./nearest.js');
const state = require('./state.js');

/** A fleet file by its name: `*.config.js`, `.cjs`, `.mjs` or `*.json` (pm2's rule, less YAML). */
const FLEET_NAME = /(\.config\.[cm]?js|\.json)$/;

/** Whether `arg` names an existing file that the rule takes for a fleet file. */
function isFleetFile(arg) {
  if (!FLEET_NAME.test(path.basename(arg))) return false;
  try {
    return fs.statSync(arg).isFile();
  } catch {
    return false;
  }
}

// ---- the file root loads ------------------------------------------------------

/**
 * The text of `file`, which root reads as it reads a record of the state
 * directory (openStateDir(), the trusted walk): every directory on the way
 * root's and writable by no one else (a sticky one passes when what is below
 * is root's), only root's symlinks followed; the file itself root's, regular,
 * of one link, writable by root alone, not a symlink. Root runs what a fleet
 * file says: one that another user could change would run that user's choice.
 */
function readTrusted(file) {
  let dir = null;
  try {
    dir = openStateDir(path.dirname(file));
    const bytes = dir?.read(path.basename(file)) ?? null;
    if (bytes === null) throw systemError('ENOENT', 'no such file or directory', 'open', file);
    return bytes.toString('utf8');
  } catch (error) {
    if (error.code === 'EPERM' || error.code === 'ELOOP') error.message += ': root loads only a fleet file that no other user can change';
    throw error;
  } finally {
    dir?.close();
  }
}

/**
 * What `file` exports: a .json as JSON, else (as pm2 reads one: comments,
 * unquoted keys) as a JavaScript expression; a module by require(), or
 * imported for an ES module (its default export, or its named ones).
 */
async function load(file) {
  const real = path.resolve(file);
  const text = process.geteuid() === 0 ? readTrusted(real) : undefined;
  try {
    if (real.endsWith('.json')) {
      const json = text ?? fs.readFileSync(real, 'utf8');
      try {
        return JSON.parse(json);
      } catch (error) {
        try {
          return vm.runInNewContext(`(${json}\n)`, {}, { filename: real, timeout: 1000 });
        } catch {
          throw error;
        }
      }
    }
    if (!isEsm(real)) return require(real);
    const namespace = await importModule(pathToFileURL(real).href);
    return namespace.apps === undefined ? namespace.default : namespace;
  } catch (error) {
    error.message = `${file}: ${error.message}`;
    throw error;
  }
}

// ---- pm2's keys and ours -------------------------------------------------------

/** Other names of keys (pm2's schema.json aliases, pm2's names of ours, `respawn: {...}`'s) → the key. */
const ALIASES = Object.freeze({
  __proto__: null,
  exec: 'script',
  cmd: 'script',
  command: 'script',
  exec_interpreter: 'interpreter',
  interpreter_args: 'node_args',
  interpreterArgs: 'node_args',
  out_file: 'stdout',
  out: 'stdout',
  output: 'stdout',
  out_log: 'stdout',
  error_file: 'stderr',
  error: 'stderr',
  err: 'stderr',
  err_file: 'stderr',
  err_log: 'stderr',
  log_file: 'log',
  combine_logs: 'merge_logs',
  max_restarts: 'respawn_limit',
  listen_timeout: 'ready_timeout',
  max_memory_restart: 'max_memory',
  uid: 'user',
  gid: 'group',
  pid_file: 'pidfile',
  pid: 'pidfile',
  'respawn.instances': 'instances',
  'respawn.limit': 'respawn_limit',
  'respawn.window': 'respawn_window',
  'respawn.killTimeout': 'kill_timeout',
  'respawn.maxMemory': 'max_memory',
  'respawn.logMaxSize': 'log_max_size',
  'respawn.logKeep': 'log_keep',
  'respawn.logCompress': 'log_compress',
});

/**
 * pm2's keys with nothing here to do them, and why (said on stderr, unless
 * the value is `false`, which asks for nothing).
 */
const UNSUPPORTED = Object.freeze({
  __proto__: null,
  watch: 'not supported: use node --watch',
  ignore_watch: 'not supported: use node --watch',
  watch_options: 'not supported: use node --watch',
  watch_delay: 'not supported: use node --watch',
  time: 'lines are written as the app writes them',
  log_date_format: 'lines are written as the app writes them',
  log_type: 'lines are written as the app writes them',
  disable_logs: "give out_file and error_file '/dev/null'",
  cron_restart: 'not supported: a systemd timer or cron can run daemon restart NAME',
  cron: 'not supported: a systemd timer or cron can run daemon restart NAME',
  min_uptime: 'an instance ready for 10 s is stable; max_restarts counts restarts within respawn_window (60 s)',
  restart_delay: "the supervisor's own backoff: at once after a stable run, then from 100 ms doubling up to 10 s",
  exp_backoff_restart_delay: "the supervisor's own backoff: at once after a stable run, then from 100 ms doubling up to 10 s",
  instance_var: 'each instance has NODE_APP_INSTANCE and DAEMON_INSTANCE',
  increment_var: 'not supported: the instances share the sockets of listen',
  filter_env: 'not supported: the app gets the environment of the command, its env over it',
  namespace: 'not supported: names are as given',
  name_prefix: 'not supported: names are as given',
  append_env_to_name: 'not supported: names are as given',
  shutdown_with_message: 'daemon stop sends a signal (SIGTERM, or --signal)',
  treekill: 'daemon stop signals the daemon (with a supervisor: every instance)',
  kill_retry_time: 'not supported',
  force: 'a name runs once: give another copy another name',
  source_map_support: "not supported: node_args: ['--enable-source-maps']",
  disable_source_map_support: 'no source map support is added',
  pmx: "pm2's own",
  automation: "pm2's own",
  vizion: "pm2's own",
  trace: "pm2's own",
  disable_trace: "pm2's own",
  deep_monitoring: "pm2's own",
  v8: "pm2's own",
  event_loop_inspector: "pm2's own",
  io: "pm2's own",
  post_update: "pm2's own",
  install_url: "pm2's own",
  windowsHide: "pm2's own",
  username: "pm2's own",
  execute_command: "pm2's own",
  write: "pm2's own",
});

/** An error in the file: `where` (file: app), the key as written, what it must be, what it is. */
function wrong(where, key, expected, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `${where}: ${key} must be ${expected}, not ${describeValue(value)}`);
}

/** A plain object (also one of another realm: a .json read as pm2 reads it). */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/** An integer from `min` (or its digits, which pm2 reads as the number). */
function integer(where, key, value, min, max = Number.MAX_SAFE_INTEGER) {
  const number = typeof value === 'string' && /^-?[0-9]+$/.test(value) ? Number(value) : value;
  if (!Number.isSafeInteger(number)) throw wrong(where, key, 'an integer', value);
  if (number < min || number > max) {
    throw codedError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `${where}: ${key} must be from ${min}${max < 2 ** 40 ? ` to ${max}` : ''}, not ${number}`,
    );
  }
  return number;
}

function boolean(where, key, value) {
  if (typeof value !== 'boolean') throw wrong(where, key, 'true or false', value);
  return value;
}

function string(where, key, value) {
  if (typeof value !== 'string' || value === '') throw wrong(where, key, 'a string', value);
  return value;
}

/** pm2's `args: '-a 13 -b "x y"'`: words at spaces, quotes keeping them together; or an array of strings. */
function words(where, key, value) {
  if (Array.isArray(value)) {
    return value.map((word, i) => {
      if (typeof word !== 'string' && typeof word !== 'number') throw wrong(where, `${key}[${i}]`, 'a string', word);
      return String(word);
    });
  }
  if (typeof value !== 'string') throw wrong(where, key, 'a string or an array of strings', value);
  return [...value.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2] ?? match[3]);
}

/** A size as `--max-memory` takes it: bytes, or digits with K, M or G (pm2's format). */
function size(where, key, value) {
  if (typeof value === 'number') return integer(where, key, value, 1);
  if (typeof value !== 'string' || !/^[0-9]+[KMG]?$/i.test(value))
    throw wrong(where, key, 'a number of bytes or a string like 512M', value);
  return value;
}

/** A user or group: a name or an id. */
function id(where, key, value) {
  if (typeof value === 'number') return integer(where, key, value, 0);
  return /^[0-9]+$/.test(string(where, key, value)) ? Number(value) : value;
}

/** Where a stream goes: a file (relative to cwd), 'syslog', 'inherit', or pm2's '/dev/null' and 'NULL'. */
function stream(where, key, value, cwd) {
  const target = string(where, key, value);
  if (target === 'NULL') return '/dev/null';
  return target === 'syslog' || target === 'inherit' ? target : path.resolve(cwd, target);
}

/** An environment: string, number or boolean values (an object's, as pm2 does, as JSON). */
function variables(where, key, value) {
  if (!isObject(value)) throw wrong(where, key, 'an object', value);
  const env = Object.create(null);
  for (const [name, each] of Object.entries(value)) {
    if (each === undefined) continue;
    if (isObject(each) || Array.isArray(each)) env[name] = JSON.stringify(each);
    else if (['string', 'number', 'boolean'].includes(typeof each)) env[name] = String(each);
    else throw wrong(where, `${key}.${name}`, 'a string, number or boolean', each);
  }
  return env;
}

/**
 * pm2's `instances`: a number or 'max'; 0 is every CPU ('max') and -N every
 * CPU but N, at least 1.
 */
function instancesOf(where, key, value) {
  if (value === 'max') return 'max';
  const count = integer(where, key, value, Number.MIN_SAFE_INTEGER);
  if (count === 0) return 'max';
  return count < 0 ? Math.max(1, availableCpus() + count) : count;
}

/**
 * The keys read into the start flags (args.js's names): `(where, key,
 * value, cwd) => the flag's value`. `cwd`: the app's directory, against
 * which relative paths resolve.
 */
const FLAGS = Object.freeze({
  __proto__: null,
  instances: ['instances', instancesOf],
  node_args: ['node-arg', words],
  stdout: ['stdout', stream],
  stderr: ['stderr', stream],
  respawn_limit: ['respawn-limit', (where, key, value) => integer(where, key, value, 1)],
  respawn_window: ['respawn-window', (where, key, value) => integer(where, key, value, 1)],
  kill_timeout: ['kill-timeout', (where, key, value) => integer(where, key, value, 1)],
  wait_ready: ['wait-ready', boolean],
  ready_timeout: ['ready-timeout', (where, key, value) => integer(where, key, value, 1)],
  max_memory: ['max-memory', size],
  log_max_size: ['log-max-size', size],
  log_keep: ['log-keep', (where, key, value) => integer(where, key, value, 0)],
  log_compress: ['log-compress', boolean],
  user: ['user', id],
  group: ['group', id],
  pidfile: ['pidfile', (where, key, value, cwd) => path.resolve(cwd, string(where, key, value))],
  listen: [
    'listen',
    (where, key, value) => (Array.isArray(value) ? value : [value]).map((each) => String(listenAddress(where, key, each))),
  ],
  umask: [
    'umask',
    (where, key, value) =>
      typeof value === 'string' && /^[0-7]+$/.test(value) ? Number.parseInt(value, 8) : integer(where, key, value, 0, 0o777),
  ],
  chroot: ['chroot', (where, key, value) => path.resolve(string(where, key, value))],
  no_core: ['no-core', boolean],
  env_file: [
    'env-file',
    (where, key, value, cwd) => words(where, key, Array.isArray(value) ? value : [value]).map((file) => path.resolve(cwd, file)),
  ],
});

/** One of `listen`'s addresses, as the flag takes it (checked with the flag's rules when the start is planned). */
function listenAddress(where, key, value) {
  if (typeof value !== 'string' && typeof value !== 'number')
    throw wrong(where, key, 'an address (PORT, HOST:PORT, a socket path) or an array of them', value);
  return value;
}

/** Keys read on their own, not into a flag. */
const OWN = Object.freeze([
  'name',
  'script',
  'cwd',
  'args',
  'env',
  'exec_mode',
  'interpreter',
  'log',
  'merge_logs',
  'autorestart',
  'respawn',
  'port',
]);

/** Every key an app may have (pm2's or ours), for a "did you mean". */
const KNOWN = Object.freeze([...OWN, ...Object.keys(FLAGS), ...Object.keys(ALIASES), ...Object.keys(UNSUPPORTED)]);

/** Supervisor flags that change what runs: without one, an error; the others are ignored and said. */
const NEEDS_SUPERVISOR = Object.freeze(['max_memory', 'log_max_size']);
const SUPERVISOR_ONLY = Object.freeze(['respawn_limit', 'respawn_window', 'kill_timeout', 'log_keep', 'log_compress']);

/**
 * The app's keys by the names read here: `Map(key → [as written, value])`,
 * `respawn: { ... }` spread into its keys. Two names of one key are an error.
 */
function keysOf(where, app) {
  const keys = new Map();
  const add = (written, value) => {
    const key = ALIASES[written] ?? written;
    if (keys.has(key)) throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${where}: give ${keys.get(key)[0]} or ${written}, not both`);
    keys.set(key, [written, value]);
  };
  for (const [written, value] of Object.entries(app)) {
    if (written === 'respawn' && isObject(value)) {
      add('respawn', true);
      for (const [key, each] of Object.entries(value)) add(`respawn.${key}`, each);
    } else if (value !== undefined) add(written, value);
  }
  return keys;
}

/**
 * One app, read: `{ name, script, scriptArgs, flags, env }` as `daemon
 * start` has them from its command line (`env`: the app's variables, to go
 * over the environment). `where` names the file; `dir` is its directory.
 */
function readApp(app, index, { where: file, dir, envName }, note) {
  if (!isObject(app)) throw wrong(file, `apps[${index}]`, 'an object', app);
  const keys = keysOf(`${file}: apps[${index}]`, app);
  const take = (key) => {
    const entry = keys.get(key);
    keys.delete(key);
    return entry ?? [key, undefined];
  };
  const [scriptKey, scriptValue] = take('script');
  const [nameKey, nameValue] = take('name');
  const first = `${file}: ${typeof nameValue === 'string' ? nameValue : `apps[${index}]`}`;
  if (scriptValue === undefined) throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${first}: script is missing`);
  string(first, scriptKey, scriptValue);
  const name =
    nameValue === undefined ? named(first, scriptKey, scriptValue, state.defaultName) : named(first, nameKey, nameValue, state.checkName);
  const where = `${file}: ${name}`;
  const flags = Object.create(null);
  const [, chroot] = take('chroot');
  if (chroot !== undefined) flags.chroot = FLAGS.chroot[1](where, 'chroot', chroot);
  const [cwdKey, cwdValue] = take('cwd');
  // Relative to the file's directory; under a new root, its own.
  const cwd = cwdValue === undefined ? (chroot === undefined ? dir : undefined) : path.resolve(dir, string(where, cwdKey, cwdValue));
  if (cwd !== undefined) flags.cwd = cwd;
  // Under a new root, the script's path is inside it, as given.
  const script = chroot === undefined ? path.resolve(cwd, scriptValue) : scriptValue;
  if (chroot === undefined && !fs.statSync(script, { throwIfNoEntry: false })?.isFile()) {
    throw Object.assign(codedError(Error, 'ENOENT', `${where}: ${scriptKey} ${script}: no such file`), { path: script });
  }
  const [argsKey, argsValue] = take('args');
  const scriptArgs = argsValue === undefined ? [] : words(where, argsKey, argsValue);
  const [interpreterKey, interpreter] = take('interpreter');
  if (interpreter !== undefined && interpreter !== 'node' && interpreter !== process.execPath) {
    throw codedError(
      TypeError,
      'ERR_INVALID_ARG_VALUE',
      `${where}: ${interpreterKey} ${JSON.stringify(interpreter)} is not supported: daemon runs each script with the Node that runs it (${process.execPath}); leave it out, or give 'node'`,
    );
  }
  const env = envOf(where, take, app, envName);
  for (const [key, [written, value]] of keys) {
    if (key in FLAGS) flags[FLAGS[key][0]] = FLAGS[key][1](where, written, value, cwd ?? '/');
  }
  const supervised = supervision(where, take);
  streams(where, take, flags, note);
  const [execKey, execMode] = take('exec_mode');
  if (execMode !== undefined && !/^(cluster|fork)(_mode)?$/.test(string(where, execKey, execMode))) {
    throw wrong(where, execKey, "'cluster' or 'fork'", execMode);
  }
  const count = flags.instances === 'max' ? availableCpus() : (flags.instances ?? 1);
  const [mergeKey, merge] = take('merge_logs');
  if (merge !== undefined && !boolean(where, mergeKey, merge) && count > 1) {
    note(`${mergeKey}: false (the instances share the log files, each line starting with [K])`);
  }
  for (const key of Object.keys(FLAGS)) keys.delete(key);
  for (const [written, value] of keys.values()) unknown(written, value, note);
  if (supervised) flags.respawn = true;
  else withoutSupervisor(where, app, flags, count, note);
  // pm2's cluster apps listen(process.env.PORT): that port is held for them, and their listen() takes it.
  const cluster = /^cluster/.test(execMode ?? '') || count > 1;
  const port = Number(env.PORT);
  if (cluster && flags.listen === undefined && /^[0-9]+$/.test(env.PORT ?? '') && port >= 1 && port <= 65535) flags.listen = [String(port)];
  return { name, script, scriptArgs, flags, env };
}

/** The app's name: `value` of `key` made one by `make` (its name checked, or its script's file name without the extension). */
function named(where, key, value, make) {
  try {
    return make(string(where, key, value));
  } catch (error) {
    if (error instanceof UsageError) error.message = `${where}: ${key}: ${error.message.replace('--name', 'name')}`;
    throw error;
  }
}

/** `env`, then `env_NAME` over it (with --env NAME), then pm2's `port` as PORT; every `env_*` checked. */
function envOf(where, take, app, envName) {
  const [envKey, envValue] = take('env');
  const env = envValue === undefined ? Object.create(null) : variables(where, envKey, envValue);
  for (const key of Object.keys(app).filter((key) => key.startsWith('env_'))) {
    const [, value] = take(key);
    const chosen = variables(where, key, value);
    if (key === `env_${envName}`) Object.assign(env, chosen);
  }
  const [portKey, port] = take('port');
  if (port !== undefined) env.PORT = String(integer(where, portKey, port, 1, 65535));
  return env;
}

/** Whether a supervisor runs the app: pm2's `autorestart` (true unless false) and our `respawn` say the same. */
function supervision(where, take) {
  const [autoKey, auto] = take('autorestart');
  const [respawnKey, respawn] = take('respawn');
  if (auto !== undefined) boolean(where, autoKey, auto);
  if (respawn !== undefined) boolean(where, respawnKey, respawn);
  if (auto !== undefined && respawn !== undefined && auto !== respawn) {
    throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${where}: ${autoKey} and ${respawnKey} disagree: give one`);
  }
  return (auto ?? respawn) !== false;
}

/** `log` (pm2's log_file): both streams to one file, unless out_file or error_file name theirs. */
function streams(where, take, flags, note) {
  const [logKey, log] = take('log');
  if (log === undefined || log === true || log === false) return;
  const file = stream(where, logKey, log, flags.cwd ?? '/');
  if (flags.stdout === undefined && flags.stderr === undefined) flags.log = file;
  else note(`${logKey} (out_file and error_file take the streams: a stream goes to one file)`);
}

/** An app pm2 would not restart: what needs a supervisor is an error, what only tunes one is said and left out. */
function withoutSupervisor(where, app, flags, count, note) {
  const given = (key) => Object.keys(app).find((written) => (ALIASES[written] ?? written) === key);
  if (count > 1)
    throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${where}: ${count} instances need a supervisor, and autorestart is false`);
  for (const key of NEEDS_SUPERVISOR) {
    if (given(key) !== undefined)
      throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${where}: ${given(key)} needs a supervisor, and autorestart is false`);
  }
  for (const key of SUPERVISOR_ONLY) {
    if (given(key) === undefined) continue;
    note(`${given(key)} (autorestart is false: no supervisor)`);
    delete flags[FLAGS[key][0]];
  }
  delete flags.instances;
}

/** A key read nowhere: pm2's without an equivalent here, or unknown. */
function unknown(key, value, note) {
  if (key in UNSUPPORTED) {
    if (value !== false) note(`${key} (${UNSUPPORTED[key]})`);
    return;
  }
  const guess = nearest(key, KNOWN);
  note(`${key} (${guess === undefined ? 'not a key of pm2 nor of daemon' : `unknown: did you mean ${guess}?`})`);
}

/**
 * Reads the fleet file `file` into start plans: `{ file, apps, notes }`.
 * `apps`: `[{ name, script, scriptArgs, flags, env }]`, in the file's order,
 * as `daemon start` has them from a command line: `script` absolute (as
 * given under a new root), `flags` by args.js's names with their values read
 * (`cwd` absolute, `respawn: true` unless autorestart is false, `listen`
 * with the held PORT of a cluster app), `env` the app's own variables (its
 * env, env_NAME over it with `envName`), to go over the caller's. `only`:
 * the names of the apps to keep (every app is checked). `notes`: what is
 * ignored, one line each, for stderr. Throws, with nothing started, for a
 * file it cannot use, naming the app and the key.
 */
async function readFleet(file, { envName, only } = {}) {
  const where = path.basename(file);
  const exported = await load(file);
  const notes = [];
  if (!isObject(exported) || !Array.isArray(exported.apps)) {
    throw wrong(where, 'its export', "an object with an apps array (pm2's ecosystem file)", exported);
  }
  for (const key of Object.keys(exported))
    if (key !== 'apps')
      notes.push(`${where}: ignoring ${key} (${key === 'deploy' ? "pm2's deploy is not supported" : 'only apps is read'})`);
  const dir = path.dirname(path.resolve(file));
  const apps = exported.apps.map((app, index) => {
    const own = [];
    const plan = readApp(app, index, { where, dir, envName }, (text) => own.push(text));
    return { plan, notes: own.map((text) => `${plan.name}: ignoring ${text}`), hasEnv: Object.hasOwn(app, `env_${envName}`) };
  });
  if (apps.length === 0) throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${where}: apps is empty`);
  const names = apps.map(({ plan }) => plan.name);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${where}: two apps are named ${twice}`);
  for (const name of only ?? []) {
    if (!names.includes(name)) throw new UsageError(`${where} has no app named ${name} (its apps: ${names.join(', ')})`);
  }
  // A misspelt environment would start every app without it.
  if (envName !== undefined && !apps.some(({ hasEnv }) => hasEnv)) throw new UsageError(`no app of ${where} has env_${envName}`);
  const chosen = apps.filter(({ plan }) => only === undefined || only.includes(plan.name));
  for (const app of chosen) {
    notes.push(...app.notes);
    if (envName !== undefined && !app.hasEnv) notes.push(`${app.plan.name}: has no env_${envName}: its env as it is`);
  }
  return { file: path.resolve(file), apps: chosen.map(({ plan }) => plan), notes };
}

module.exports = { FLEET_NAME, isFleetFile, readFleet };
