// A private npm registry for the install tests: verdaccio on 127.0.0.1, with
// its own storage and no uplink, so `npm install daemon` finds only what the
// test published, and an npm user config that points there.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, TAG } from './helpers.mjs';

const VERDACCIO = '6.8.0';
// Outside the checkout, fetched once per machine like the matrix's Node binaries.
const CACHE = path.join(os.tmpdir(), 'daemon-test-verdaccio', VERDACCIO);

/** The verdaccio executable, installed into the cache on first use. */
function verdaccio() {
  const bin = path.join(CACHE, 'node_modules', '.bin', 'verdaccio');
  if (fs.existsSync(bin)) return bin;
  const staging = `${CACHE}.${process.pid}`;
  fs.mkdirSync(staging, { recursive: true });
  // verdaccio-audit asks for node-fetch's `cjs` dist-tag, which the registry
  // reachable here lacks; 2.7.0 is the CommonJS release that tag names.
  const manifest = { private: true, dependencies: { verdaccio: VERDACCIO }, overrides: { 'node-fetch': '2.7.0' } };
  fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify(manifest));
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: staging, encoding: 'utf8' });
  if (install.status !== 0) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw new Error(`npm install verdaccio@${VERDACCIO} failed:\n${install.stderr}`);
  }
  fs.rmSync(CACHE, { recursive: true, force: true });
  fs.renameSync(staging, CACHE);
  return bin;
}

/**
 * Starts a registry in `dir`; resolves to { url, npmrc, close() }. `npmrc` is
 * a user config file naming the registry and a publish token for it.
 */
export async function startRegistry(dir) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const config = path.join(dir, 'verdaccio.yaml');
  fs.writeFileSync(
    config,
    [
      `storage: ${path.join(dir, 'storage')}`,
      `auth: { htpasswd: { file: ${path.join(dir, 'htpasswd')} } }`,
      'uplinks: {}',
      "packages: { '**': { access: $all, publish: $authenticated } }",
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  const child = spawn(verdaccio(), ['--config', config, '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, DAEMON_TEST_TAG: TAG },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const close = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`verdaccio exited (${child.exitCode}):\n${output}`);
      if (
        await fetch(`${url}-/ping`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) throw new Error(`verdaccio did not answer on ${url}:\n${output}`);
      await sleep(100);
    }
    const user = await fetch(`${url}-/user/org.couchdb.user:tester`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'tester', password: 'tester-password' }),
    });
    const { token } = await user.json();
    if (!token) throw new Error(`verdaccio gave no token (HTTP ${user.status})`);
    const npmrc = path.join(dir, 'npmrc');
    fs.writeFileSync(npmrc, `registry=${url}\n//127.0.0.1:${port}/:_authToken=${token}\naudit=false\nfund=false\n`);
    return { url, npmrc, close };
  } catch (error) {
    close();
    throw error;
  }
}
