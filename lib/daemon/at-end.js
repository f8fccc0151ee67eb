'use strict';
// What a started process removes when it ends (its pid files, the Unix socket
// files bound for it): at exit, and on SIGTERM/SIGINT when the script has no
// handler of its own (their default action would skip 'exit').

const { native } = require('../shared/native.js');
const { addOwnListener } = require('./own-listeners.js');

const tasks = [];

function runTasks() {
  for (const task of tasks) task();
}

function install() {
  process.on('exit', runTasks);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    // First in line: a `once` listener of the script is gone by the time later ones run.
    addOwnListener(
      signal,
      function endAsDefault() {
        // The script handles it, or a drain (drain.js) that raises it again once done.
        if (process.listenerCount(signal) > 1) return;
        runTasks();
        process.removeListener(signal, endAsDefault); // back to the default action
        process.kill(process.pid, signal);
        // PID 1 (a container's init) is spared a default action: end as it would.
        if (process.pid === 1) process.exit(128 + require('node:os').constants.signals[signal]);
      },
      true,
    );
  }
}

/** Runs `task` when this process ends (once per task, however often it is given). */
function atEnd(task) {
  if (tasks.includes(task)) return;
  if (tasks.length === 0) install();
  tasks.push(task);
}

/**
 * The Unix socket files of `specs`, just bound (by the launcher, or in
 * place), are removed when this process ends, as a supervisor removes its
 * service's: each only while its name, reached by the path walk (no other
 * user's symlinks), still names that file (a socket bound there since by
 * another process is left alone). A daemon that may not write the directory
 * leaves its file, which the next bind replaces.
 */
function removeSocketFilesAtEnd(specs) {
  const paths = specs.filter((spec) => spec.path !== undefined).map(({ path }) => path);
  if (paths.length === 0) return;
  const noted = native().noteSocketFiles(paths);
  atEnd(() => noted.remove());
}

module.exports = { atEnd, removeSocketFilesAtEnd };
