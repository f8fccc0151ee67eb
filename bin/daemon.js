#!/usr/bin/env node
'use strict';
// The `daemon` command: start, stop, restart, reload and ask about a script
// that need not use this module itself. Exit codes follow the LSB
// init-script conventions.

const fs = require('node:fs');
const path = require('node:path');
const daemon = require('..');
const { launch } = require('../lib/launcher.js');
const { preloadCommand } = require('../lib/command.js');
const { startOptions, defaultIdent } = require('../lib/options.js');

const USAGE = `Usage: daemon <command> [options]

Commands:
  start [options] [--] script.js [args...]   start the script as a daemon; exits once it is ready
  stop --pidfile P [--signal S] [--timeout MS]   stop it, SIGKILL after the timeout (default 10000)
  restart [start options] [--] script.js [args...]   stop, then start (give every start option again)
  reload --pidfile P                         send SIGHUP (a script started here reopens its log files)
  upgrade --pidfile P                        a supervised service's new code: a new generation on the same
                                             sockets, the old one retired once it is ready (0: it serves)
  status --pidfile P                         0 running (prints the pid), 1 dead with a pid file, 3 not running, 4 unknown

Start options:
  --pidfile P         take the lock on P and write the pid into it
  --stdout F          append stdout to F; 'syslog': one syslog message a line, tagged
                      with the script's name (a file named syslog: ./syslog)
  --stderr F          the same for stderr (syslog: at priority err)
  --cwd D             working directory of the daemon (default /)
  --umask M           octal umask (default 022)
  --ready-timeout MS  how long to wait for the daemon (default 30000)
  --user U, --group G run as this user and group (names or ids; needs root)
  --chroot D          change the root to D before the script runs (the script's path is inside D)
  --no-core           no core dumps
  --respawn           a supervisor restarts the daemon when it crashes (not after a clean exit)
  --respawn-limit N   restarts allowed within the window before it gives up (default 10)
  --respawn-window MS that window (default 60000)
  --listen [NAME=]ADDR bind PORT, HOST:PORT, [IPv6]:PORT or /path.sock for the daemon (fds 3, ...,
                      LISTEN_FDS); repeatable; with --respawn the supervisor holds them

Run 'daemon <command> --help' for one command.`;

const START_FLAGS = [
  'pidfile',
  'stdout',
  'stderr',
  'cwd',
  'umask',
  'ready-timeout',
  'user',
  'group',
  'chroot',
  'no-core',
  'respawn',
  'respawn-limit',
  'respawn-window',
  'listen',
];
/** Flags that take no value. */
const SWITCHES = ['no-core', 'respawn'];
/** Flags that may be given more than once: an array of their values. */
const REPEATABLE = ['listen'];

const COMMANDS = {
  start: {
    flags: START_FLAGS,
    script: true,
    usage:
      'daemon start [--pidfile P] [--stdout F] [--stderr F] [--cwd D] [--umask M] [--ready-timeout MS] [--user U] [--group G] [--chroot D] [--no-core] [--respawn [--respawn-limit N] [--respawn-window MS]] [--listen [NAME=]ADDR]... [--] script.js [args...]',
  },
  restart: { flags: START_FLAGS, script: true, usage: 'daemon restart --pidfile P [start options] [--] script.js [args...]' },
  stop: { flags: ['pidfile', 'signal', 'timeout'], usage: 'daemon stop --pidfile P [--signal S] [--timeout MS]' },
  reload: { flags: ['pidfile'], usage: 'daemon reload --pidfile P' },
  upgrade: { flags: ['pidfile'], usage: 'daemon upgrade --pidfile P' },
  status: { flags: ['pidfile'], usage: 'daemon status --pidfile P' },
};

class UsageError extends Error {}

/** `--flag value` and `--flag=value` up to the script; the rest is the script's. */
function parse(command, args) {
  const spec = COMMANDS[command];
  const flags = {};
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('--')) break;
    const [name, inline] = arg.slice(2).split(/=(.*)/s);
    if (name === 'help') return { help: true };
    if (!spec.flags.includes(name)) throw new UsageError(`unknown option --${name}`);
    if (SWITCHES.includes(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags[name] = REPEATABLE.includes(name) ? [...(flags[name] ?? []), value] : value;
  }
  const [script, ...scriptArgs] = args.slice(i);
  if (spec.script && script === undefined) throw new UsageError('no script given');
  if (!spec.script && script !== undefined) throw new UsageError(`unexpected argument ${script}`);
  if (!spec.script || command === 'restart') {
    if (flags.pidfile === undefined) throw new UsageError('--pidfile is required');
  }
  return { flags, script, scriptArgs };
}

function integer(name, text, radix = 10) {
  const digits = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!digits.test(text)) throw new UsageError(`--${name} takes ${radix === 8 ? 'an octal' : 'a'} number, not ${text}`);
  return Number.parseInt(text, radix);
}

/** A user or group flag: a numeric id, else a name. */
function idOrName(text) {
  return text !== undefined && /^[0-9]+$/.test(text) ? Number(text) : text;
}

/** Before anything starts: a daemon whose pid file's directory is missing could only fail. */
function checkPidfileDirectory(given, pidfile) {
  try {
    fs.statSync(path.join(path.dirname(pidfile), '/')); // the slash: ENOTDIR for a file
  } catch (error) {
    error.message = `--pidfile ${given}: ${error.message}`;
    throw error;
  }
}

function start({ flags, script, scriptArgs }) {
  // When a namespace's init exits, the kernel ends every process in it.
  if (process.pid === 1) throw new Error("as PID 1 (a container's init) the daemon would end with this command: run the script itself");
  const options = { ready: 'auto' };
  if (flags.cwd !== undefined) options.cwd = flags.cwd;
  if (flags.stdout !== undefined) options.stdout = flags.stdout;
  if (flags.stderr !== undefined) options.stderr = flags.stderr;
  if (flags.umask !== undefined) options.umask = integer('umask', flags.umask, 8);
  if (flags['ready-timeout'] !== undefined) options.readyTimeout = integer('ready-timeout', flags['ready-timeout']);
  if (flags['no-core']) options.preventCore = true;
  if (flags.listen !== undefined) options.listen = flags.listen;
  const pidfile = flags.pidfile === undefined ? undefined : path.resolve(flags.pidfile);
  if (pidfile !== undefined) checkPidfileDirectory(flags.pidfile, pidfile);
  if (flags.respawn) {
    options.respawn = {};
    if (flags['respawn-limit'] !== undefined) options.respawn.limit = integer('respawn-limit', flags['respawn-limit']);
    if (flags['respawn-window'] !== undefined) options.respawn.window = integer('respawn-window', flags['respawn-window']);
    // The supervisor holds the pid file's lock; the preload's lock() of it is then true.
    if (pidfile !== undefined) options.pidfile = pidfile;
  } else if (flags['respawn-limit'] !== undefined || flags['respawn-window'] !== undefined) {
    throw new UsageError('--respawn-limit and --respawn-window need --respawn');
  }
  const account = { user: idOrName(flags.user), group: idOrName(flags.group) };
  let chroot;
  if (flags.chroot !== undefined) {
    if (!path.isAbsolute(script)) throw new UsageError('with --chroot, the script path must be absolute inside the new root');
    // The daemon boots as root, takes the lock, then changes root and user.
    chroot = { dir: path.resolve(flags.chroot), ...account };
  } else {
    Object.assign(options, account);
  }
  const main = chroot ? script : path.resolve(script);
  // Syslog's tag: the script's name, not that of the ES module's main module, the daemon's argv[1] when start() runs.
  options.ident = defaultIdent(main);
  launch(startOptions(options), preloadCommand(main, scriptArgs, options, { pidfile, chroot }));
}

/** `2 restarts, last exit: code 1` (or `by SIGKILL`). */
function restarts({ restarts: count, lastExit }) {
  const last = lastExit === null ? '' : `, last exit: ${lastExit.signal === null ? `code ${lastExit.code}` : `by ${lastExit.signal}`}`;
  return `${count} restart${count === 1 ? '' : 's'}${last}`;
}

async function main(argv) {
  const [command, ...args] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command ${command}`);
  const parsed = parse(command, args);
  if (parsed.help) {
    console.log(`Usage: ${COMMANDS[command].usage}`);
    return 0;
  }
  const { flags } = parsed;
  switch (command) {
    case 'start':
      return start(parsed);
    case 'restart':
      await daemon.stop(flags.pidfile);
      return start(parsed);
    case 'stop': {
      const options = {};
      if (flags.signal !== undefined) options.signal = /^[0-9]+$/.test(flags.signal) ? Number(flags.signal) : flags.signal;
      if (flags.timeout !== undefined) options.timeout = integer('timeout', flags.timeout);
      const { pid, stopped, killed } = await daemon.stop(flags.pidfile, options);
      if (pid === null) console.log('not running');
      else console.log(`${killed ? 'killed' : 'stopped'} ${pid}`);
      return pid === null || stopped ? 0 : 1;
    }
    case 'reload':
      try {
        console.log(`sent SIGHUP to ${daemon.signal(flags.pidfile, 'SIGHUP')}`);
        return 0;
      } catch (error) {
        if (error.code !== 'ESRCH') throw error;
        console.error('daemon: not running');
        return 7; // LSB: program is not running
      }
    case 'upgrade':
      try {
        const { daemonPid, previous } = await daemon.upgrade(flags.pidfile);
        console.log(`upgraded: the daemon ${daemonPid} serves, ${previous} is retired`);
        return 0;
      } catch (error) {
        console.error(`daemon: ${error.message}`);
        return 1;
      }
    case 'status': {
      let status;
      try {
        status = daemon.status(flags.pidfile);
      } catch (error) {
        console.error(`daemon: ${error.message}`);
        return 4;
      }
      if (status.running) {
        console.log(status.pid ?? 'running');
        // A supervisor: the daemon it runs now (none while it waits to restart one).
        if (status.restarts !== undefined) {
          const since = status.since === null ? '' : ` since ${status.since.toISOString()}`;
          console.log(
            `supervising ${status.daemonPid === null ? 'no daemon now' : `the daemon ${status.daemonPid}`}${since}, ${restarts(status)}`,
          );
        }
        return 0;
      }
      console.log(status.stale ? `dead, but ${flags.pidfile} is left over` : 'not running');
      if (status.gaveUp) console.log(`the supervisor gave up at ${status.gaveUp.at.toISOString()}: ${restarts(status)}`);
      return status.stale ? 1 : 3;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (error instanceof UsageError) {
      console.error(`daemon: ${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(`daemon: ${error.message}`);
      process.exitCode = 1;
    }
  },
);
