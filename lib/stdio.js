'use strict';
// The started process's standard streams: log files, syslog, letting go of
// the terminal (closeIO), reopening logs after rotation.

const { native, nativeFor } = require('./native.js');
const { SYSLOG, checkBoolean, checkOptions, syslogTarget } = require('./options.js');

const STREAMS = Object.freeze([
  ['stdout', 1],
  ['stderr', 2],
]);
const CLOSEIO_OPTIONS = ['syslog', 'ident', 'facility', 'socket'];

/** What start() or closeIO() gave stdout and stderr: a log file's path, or 'syslog'. closeIO() leaves those alone. */
const logs = Object.seal({ __proto__: null, stdout: undefined, stderr: undefined });

/** Records what start() gave the streams: a log file's path, 'syslog', or nothing (inherited). */
function setLogs(stdout, stderr) {
  logs.stdout = stdout;
  logs.stderr = stderr;
}

/** When the terminal hangs up or the pipe's reader goes away, carry on writing to /dev/null. */
function guardStreams() {
  for (const [name, fd] of STREAMS) {
    if (logs[name] !== undefined) continue;
    process[name].on('error', () => native.detachStdio([fd]));
  }
}

/** Turns the named streams (not yet logged) into syslog messages, one a line. */
function streamsToSyslog(names, target) {
  const fresh = names.filter((name) => logs[name] === undefined);
  const fds = fresh.map((name) => (name === 'stdout' ? 1 : 2));
  if (fds.length === 0) return;
  native.syslogStdio(Object.assign(Object.create(null), target, { fds }));
  // Node opens a pipe non-blocking and, when it is full, keeps what does not
  // fit in memory, where process.exit() loses it: once Node has opened the
  // stream, make its writes wait for the drain instead.
  for (const name of fresh) {
    logs[name] = SYSLOG;
    void process[name]; // the getter opens the stream
  }
  native.blockingWrites(fds);
}

/**
 * Points stdin, stdout and stderr (but not the log files or syslog start()
 * set up) at /dev/null, or with `{ syslog: true }` stdout and stderr at syslog.
 */
function closeIO(options) {
  const own = checkOptions(options, CLOSEIO_OPTIONS, 'closeIO');
  const toSyslog = own.syslog === undefined ? false : checkBoolean('options.syslog', own.syslog);
  const target = syslogTarget(own);
  nativeFor('closeIO');
  // First, so that stdin's terminal twins are not mistaken for theirs.
  if (toSyslog) streamsToSyslog(['stdout', 'stderr'], target);
  const fds = [0];
  if (logs.stdout === undefined) fds.push(1);
  if (logs.stderr === undefined) fds.push(2);
  native.detachStdio(fds);
}

/** Opens the log files start() was given anew (after logrotate moved them) onto stdout and stderr. */
function reopenLogs() {
  for (const [name, fd] of STREAMS) {
    if (logs[name] !== undefined && logs[name] !== SYSLOG) nativeFor('reopenLogs').reopenLog(fd, logs[name]);
  }
}

module.exports = { setLogs, guardStreams, streamsToSyslog, closeIO, reopenLogs };
