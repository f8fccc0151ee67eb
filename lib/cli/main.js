'use strict';
// The `daemon` command: from its arguments to the command that runs and the
// exit status (2 for a usage error, 1 for a failure, else the command's).

const path = require('node:path');
const { parse, commandUsage, ALIASES, COMMANDS, PM2_COUNTERPARTS, USAGE, UsageError } = require('./args.js');
const { nearest } = require('./nearest.js');
const { start, restart, run } = require('./start.js');
const commands = require('./commands.js');
const { fleetFileIn, runFleet } = require('./fleet-commands.js');
const { startup } = require('./startup.js');
const { top } = require('./top.js');

const HANDLERS = Object.freeze({ __proto__: null, start, restart, run, ...commands, startup, top });

/** `a`, `a and b`, `a, b and c`. */
const words = (list) => (list.length === 1 ? list[0] : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`);

/** What an unknown command may have meant: pm2's word's counterpart here, or the nearest command. */
function commandHint(given) {
  const counterpart = PM2_COUNTERPARTS[given];
  if (counterpart !== undefined) return `: pm2's ${given} is ${counterpart}`;
  const guess = nearest(given, Object.keys(COMMANDS));
  return guess === undefined ? '' : `: did you mean ${guess}?`;
}

/** Runs the command; resolves its exit status, or undefined when `run` goes on with the script. */
async function main(argv) {
  const [given, ...args] = argv;
  if (given === undefined || given === '--help' || given === '-h' || given === 'help') {
    console.log(USAGE);
    return given === undefined ? 2 : 0;
  }
  const command = ALIASES[given] ?? given;
  if (!Object.hasOwn(COMMANDS, command)) {
    console.error(`daemon: unknown command ${given}${commandHint(given)} (daemon --help lists them)`);
    return 2;
  }
  // A fleet file in place of the script or NAME: every app of it.
  const fleet = fleetFileIn(command, args);
  if (fleet !== null) return runFleet(command, fleet);
  const parsed = parse(command, args);
  if (parsed.help) {
    console.log(commandUsage(command));
    return 0;
  }
  if (parsed.misplaced.length > 0) {
    const script = path.basename(parsed.script);
    console.error(
      `daemon: ${script} gets ${words(parsed.misplaced)} as its own argument${parsed.misplaced.length > 1 ? 's' : ''}: ` +
        `daemon ${command}'s options go before the script`,
    );
  }
  return HANDLERS[command](parsed);
}

/** main(), with its errors said in one line. */
function cli(argv) {
  main(argv).then(
    (code) => {
      if (code !== undefined) process.exitCode = code;
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
}

module.exports = { main, cli };
