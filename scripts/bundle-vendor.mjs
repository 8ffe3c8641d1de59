// Bundles the packages devloop loads on its hot paths into one ES module each, under dist/vendor/, which devloop
// loads instead of the package (the `#…` imports in package.json). Each package is many CommonJS modules; as one
// module it loads in a fraction of the time, which every `devloop up` pays at start:
// - @kubernetes/client-node (≈1,000 modules, its generated API models; see core/deploy/kube.ts): less than half the
//   time and about half the heap, which matters to `devloop up`, a process that stays resident all day;
// - yaml (≈80 modules; see core/deploy/render.ts): a third of the time; manifests are read on every `up`;
// - dockerode (docker-modem, ssh2, grpc-js: a few hundred modules; see core/build/docker.ts): about half the time,
//   paid before the first build or push.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Node's require() for the built-ins the CommonJS packages call. */
const requireBanner = ["import { createRequire as __devloopCreateRequire } from 'node:module';", 'const require = __devloopCreateRequire(import.meta.url);'];

// `export *` of a CommonJS module gives no named exports in a bundle: yaml's exports are named one by one.
const yamlNames = Object.keys(await import('yaml')).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));

const bundles = [
  { out: 'kube-client.js', contents: "export * from '@kubernetes/client-node';" },
  { out: 'yaml.js', contents: `import yaml from 'yaml';\nexport const { ${yamlNames.join(', ')} } = yaml;\nexport default yaml;\n` },
  {
    out: 'docker-client.js',
    contents: "export { default } from 'dockerode';",
    // ssh2's optional native helpers stay outside (it loads them in a try and does without).
    external: ['cpu-features', '*.node'],
    // __dirname as dockerode's own folder, where it reads its .proto files (its BuildKit session and status decoding).
    banner: ["import { dirname as __devloopDirname } from 'node:path';", "const __dirname = __devloopDirname(require.resolve('dockerode'));"],
  },
];

await Promise.all(
  bundles.map((b) =>
    build({
      stdin: { contents: b.contents, resolveDir: root, loader: 'js' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      // Whitespace and syntax only: names stay readable in stack traces.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'eof',
      outfile: path.join(root, 'dist/vendor', b.out),
      external: b.external ?? [],
      banner: { js: [...requireBanner, ...(b.banner ?? [])].join(' ') },
      logLevel: 'warning',
    }),
  ),
);
