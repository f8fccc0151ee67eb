'use strict';
// Finds and loads the compiled addon: a prebuilt package when one is
// installed, else the one `npm install` built from source in this folder.

const path = require('node:path');
const fs = require('node:fs');

/** `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`: napi-rs's naming. */
function platformTriple() {
  const { platform, arch } = process;
  if (platform !== 'linux') return `${platform}-${arch}`;
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
  return `${platform}-${arch}-${glibc ? 'gnu' : 'musl'}`;
}

function load() {
  const triple = platformTriple();
  const local = path.join(__dirname, `daemon.${triple}.node`);
  if (fs.existsSync(local)) return require(local);
  try {
    return require(`daemon-${triple}`);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
  }
  const error = new Error(
    `daemon: no native addon for ${triple}. Build it from source with ` +
      `\`npm rebuild daemon --foreground-scripts\` (needs Rust's cargo).`,
  );
  error.code = 'ERR_DAEMON_NO_ADDON';
  throw error;
}

module.exports = { platformTriple, load };
