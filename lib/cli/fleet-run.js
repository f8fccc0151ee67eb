'use strict';
// `daemon run FILE`: a fleet file's apps in the foreground, as a container's
// PID 1 or one systemd service (pm2-runtime's job). Each app starts as
// `daemon start` starts it (its supervisor, record, pid file and control
// channel: `daemon status|upgrade|scale APP` reach it), detached but adopted
// by this process; then this process becomes the init above them
// (`daemon-supervisor --init`, same pid), which reaps every orphan, forwards
// signals to the supervisors and ends when they have.

const { native, supervisorPath } = require('../shared/native.js');
const { ENV } = require('../shared/env.js');
const { status, stop } = require('../operator/control.js');
const state = require('./state.js');
const { launch } = require('./start.js');

/** The signals that stop the fleet while its apps are still being started. */
const STOPPING = Object.freeze(['SIGTERM', 'SIGINT']);

/** The pid holding `pidfile` (an app's supervisor, or its daemon), or null. */
function holder(pidfile) {
  const found = status(pidfile);
  return found.running ? found.pid : null;
}

/**
 * Starts the apps `plan()` returns (start plans, made once systemd's notify
 * socket is out of this process's environment: only the init speaks for
 * the fleet), in order, then becomes their init. An app that does not start
 * stops those started, as does SIGTERM or SIGINT meanwhile; resolves the
 * exit status then. `flags`: `quiet`.
 */
async function runFleet(plan, flags) {
  const notifySocket = process.env[ENV.NOTIFY_SOCKET];
  delete process.env[ENV.NOTIFY_SOCKET];
  const plans = plan();
  native().adoptOrphans();
  let signal = null;
  const onSignal = (name) => {
    signal = name;
  };
  for (const name of STOPPING) process.on(name, onSignal);
  const started = [];
  let code = 0;
  for (const app of plans) {
    // A signal that came during the last start is handled here.
    await new Promise(setImmediate);
    if (signal !== null) break;
    try {
      code = launch(app, state.openState({ dir: app.dir }).record(app.name), flags);
    } catch (error) {
      console.error(`daemon: ${app.name}: ${error.message}`);
      code = 1;
    }
    const pid = code === 0 ? holder(app.pidfile) : null;
    if (pid === null) {
      console.error(`daemon: ${app.name} did not start: stopping the fleet`);
      code ||= 1;
      break;
    }
    started.push({ app, pid });
  }
  await new Promise(setImmediate);
  if (code !== 0 || signal !== null) {
    for (const { app } of started.reverse()) await stop(app.pidfile);
    return code || 128 + require('node:os').constants.signals[signal];
  }
  for (const name of STOPPING) process.removeListener(name, onSignal);
  const env = Object.entries({ ...process.env, [ENV.NOTIFY_SOCKET]: notifySocket })
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`);
  native().becomeInit(
    supervisorPath(),
    started.map(({ pid }) => pid),
    env,
  );
}

module.exports = { runFleet };
