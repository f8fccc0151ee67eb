// pm2 and forever for bench/respawn.js, bench/held.js and bench/leak.js:
// fetched by npm into a directory under the system's temp dir (not
// devDependencies: they would slow everyone's npm install), and the commands
// that start, reload and stop a server under each, with the tool's state in a
// directory of the bench's (PM2_HOME, FOREVER_ROOT).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PEERS = { pm2: '7.0.4', forever: '4.0.3' };
const PEER_DIR = path.join(os.tmpdir(), 'daemon-bench-peers');

/** pm2 and forever, installed once into PEER_DIR with npm, as a user would; `bin(name)` is a command's path. */
function fetchPeers() {
  const bin = (name) => path.join(PEER_DIR, 'node_modules', '.bin', name);
  if (Object.keys(PEERS).every((name) => fs.existsSync(bin(name)))) return bin;
  fs.mkdirSync(PEER_DIR, { recursive: true });
  const specs = Object.entries(PEERS).map(([name, version]) => `${name}@${version}`);
  process.stderr.write(`bench: fetching ${specs.join(' and ')} into ${PEER_DIR}\n`);
  const npm = spawnSync('npm', ['install', '--prefix', PEER_DIR, '--no-save', '--no-audit', '--no-fund', ...specs], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (npm.status !== 0) throw new Error('npm could not fetch pm2 and forever');
  return bin;
}

/**
 * pm2 running `app` as `bench`: in fork mode, or in cluster mode with
 * `instances` workers; `flags`: more of `pm2 start`'s. `reload` is `pm2
 * reload` (in fork mode, a restart).
 */
function pm2(bin, app, { instances, flags = [] } = {}) {
  const mode = instances ? ['-i', String(instances)] : [];
  const command = (args) => (home) => [bin('pm2'), args, { PM2_HOME: home }];
  return {
    name: `pm2@${PEERS.pm2} (${instances ? `cluster mode, -i ${instances}` : 'fork mode'})`,
    start: command(['start', app, '--name', 'bench', ...mode, ...flags]),
    reload: command(['reload', 'bench']),
    stop: command(['kill']),
  };
}

/** forever running `app`; `reload` is `forever restart`. */
function forever(bin, app) {
  const command = (args) => (home) => [bin('forever'), args, { FOREVER_ROOT: home }];
  return {
    name: `forever@${PEERS.forever}`,
    start: command(['start', app]),
    reload: command(['restart', app]),
    stop: command(['stopall']),
  };
}

/**
 * Runs a tool's command `[file, args, env]` with `env` over the bench's own
 * (`base`); resolves { code, stderr } when it exits.
 */
function run([file, args, env], base) {
  const full = { ...process.env, ...base, ...env };
  delete full.__DAEMON_READY_PIPE;
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: full, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // On exit, not close: a daemon the command left behind may hold the pipe.
    child.on('exit', (code) => resolve({ code, stderr: stderr.trim() }));
  });
}

/** Runs a tool's command as run() does; throws when it fails. */
async function must(command, base) {
  const { code, stderr } = await run(command, base);
  if (code !== 0) throw new Error(`${path.basename(command[0])} ${command[1].join(' ')} exited with ${code}: ${stderr}`);
}

module.exports = { PEERS, fetchPeers, pm2, forever, run, must };
