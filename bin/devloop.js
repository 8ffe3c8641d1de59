#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { installCrashHandlers, main } from '../dist/cli/main.js';

// A bug that escapes every handler still stops devloop cleanly (see cli/crash.ts).
installCrashHandlers();

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
