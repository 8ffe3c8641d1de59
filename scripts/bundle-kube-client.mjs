// Bundles @kubernetes/client-node into one ES module, dist/vendor/kube-client.js, which devloop loads instead of
// the package (see core/deploy/kube.ts). The package is about 1,000 modules (its generated API models); as one
// module it loads in less than half the time and leaves about half the heap behind, which matters to `devloop up`,
// a process that stays resident all day.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  stdin: { contents: "export * from '@kubernetes/client-node';", resolveDir: root, loader: 'js' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // Whitespace and syntax only: names stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'eof',
  outfile: path.join(root, 'dist/vendor/kube-client.js'),
  // Some of the bundled packages are CommonJS and call require() for Node's built-ins.
  banner: { js: "import { createRequire as __devloopCreateRequire } from 'node:module'; const require = __devloopCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
