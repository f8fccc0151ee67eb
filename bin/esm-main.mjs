// The main module of a daemon that `daemon start` runs an ES module in. An ES
// module's top level is evaluated asynchronously, after the first turn of the
// event loop that a CommonJS script's readiness waits for: so this imports
// the script and, once its top level has run (top-level await included),
// takes `ready: 'auto'`'s rule from there (with handed sockets: at the first
// listen() on one). An error there is the daemon's uncaught exception.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const { readyWhenServing } = createRequire(import.meta.url)('../lib/daemon/readiness.js');

process.argv.splice(1, 1); // the script is argv[1] again, as if run directly
await import(pathToFileURL(process.argv[1]).href);
readyWhenServing();
