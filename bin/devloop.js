#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import nodeModule from 'node:module';

// Node's on-disk compile cache, on before any of devloop's modules load, makes every later start cheaper (a no-op
// where unsupported or disabled, e.g. NODE_DISABLE_COMPILE_CACHE=1).
nodeModule.enableCompileCache?.();
const { installCrashHandlers, main } = await import('../dist/cli/main.js');

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
