// Bundles dockerode into one ES module, dist/vendor/docker-client.js, which devloop loads instead of the package (see
// core/build/docker.ts). dockerode loads docker-modem, ssh2 and grpc-js up front, a few hundred modules; as one
// module it loads in about half the time, which every `up` that builds or pushes pays before its first build.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  stdin: { contents: "export { default } from 'dockerode';", resolveDir: root, loader: 'js' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // Whitespace and syntax only: names stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'eof',
  outfile: path.join(root, 'dist/vendor/docker-client.js'),
  // ssh2's optional native helpers stay outside (it loads them in a try and does without).
  external: ['cpu-features', '*.node'],
  // The bundled packages are CommonJS: require() for Node's built-ins, and __dirname as dockerode's own folder, where
  // it reads its .proto files (its BuildKit session and status decoding).
  banner: {
    js: [
      "import { createRequire as __devloopCreateRequire } from 'node:module';",
      "import { dirname as __devloopDirname } from 'node:path';",
      'const require = __devloopCreateRequire(import.meta.url);',
      "const __dirname = __devloopDirname(require.resolve('dockerode'));",
    ].join(' '),
  },
  logLevel: 'warning',
});
