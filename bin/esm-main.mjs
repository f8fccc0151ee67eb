// The main module of a daemon that `daemon start` runs an ES module in. An ES
// module's top level is evaluated asynchronously, after the first turn of the
// event loop that a CommonJS script's readiness waits for: so this imports
// the script and reports ready once its top level has run (top-level await
// included). An error there is the daemon's uncaught exception.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const daemon = createRequire(import.meta.url)('..');

process.argv.splice(1, 1); // the script is argv[1] again, as if run directly
await import(pathToFileURL(process.argv[1]).href);
daemon.ready();
