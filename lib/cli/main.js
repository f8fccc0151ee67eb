'use strict';
// The `daemon` command: from its arguments to the command that runs and the
// exit status (2 for a usage error, 1 for a failure, else the command's).

const { parse, commandUsage, USAGE, UsageError } = require('./args.js');
const { start, restart, run } = require('./start.js');
const commands = require('./commands.js');

const HANDLERS = Object.freeze({ __proto__: null, start, restart, run, ...commands });

/** Runs the command; resolves its exit status, or undefined when `run` goes on with the script. */
async function main(argv) {
  const [command, ...args] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const parsed = parse(command, args);
  if (parsed.help) {
    console.log(commandUsage(command));
    return 0;
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
