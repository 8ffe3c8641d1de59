// Bundles the swap agent (core/swap/agent/agent.ts and what it imports) into one module, dist/vendor/swap-agent.js,
// which devloop copies into the agent's image (core/swap/image.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [path.join(root, 'core/swap/agent/agent.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minifyWhitespace: true,
  minifySyntax: true,
  outfile: path.join(root, 'dist/vendor/swap-agent.js'),
  logLevel: 'warning',
});
