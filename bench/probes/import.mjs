// Prints how long import(argv[2]) takes in this fresh process, in ms
// (for ESM-only modules, which require() cannot load without a flag).
const spec = process.argv[2];
const t0 = process.hrtime.bigint();
await import(spec);
const t1 = process.hrtime.bigint();
process.stdout.write(`${Number(t1 - t0) / 1e6}\n`);
