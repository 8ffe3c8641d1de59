// Bundles the `yaml` package into one ES module, dist/vendor/yaml.js, which `devloop up` loads to read manifests
// (see core/deploy/render.ts). The package is about 80 CommonJS modules; as one module it loads in a third of the
// time, and reading manifests is on the path of every `up`, even when nothing changed.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// `export *` of a CommonJS module gives no named exports in a bundle: name each of the package's exports.
const names = Object.keys(await import('yaml')).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));

await build({
  stdin: { contents: `import yaml from 'yaml';\nexport const { ${names.join(', ')} } = yaml;\nexport default yaml;\n`, resolveDir: root, loader: 'js' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // Whitespace and syntax only: names stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'eof',
  outfile: path.join(root, 'dist/vendor/yaml.js'),
  // The package is CommonJS and calls require() for Node's built-ins.
  banner: { js: "import { createRequire as __devloopCreateRequire } from 'node:module'; const require = __devloopCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
