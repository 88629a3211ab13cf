// Builds the snippet: minifies src/t.js into dist/t.js (or the path given) and prints its sizes.
//
//   node js/build.mjs [OUTPUT]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

const here = dirname(fileURLToPath(import.meta.url));
const source = readFileSync(join(here, 'src', 't.js'), 'utf8');
const output = process.argv[2] || join(here, 'dist', 't.js');

const result = await minify(source, {
  ecma: 5,
  toplevel: true,
  compress: { passes: 3, unsafe_comps: true, unsafe_math: true, pure_getters: true, booleans_as_integers: false },
  mangle: { toplevel: true },
  format: { comments: false, ascii_only: true, wrap_func_args: false }
});

const code = result.code + '\n';
mkdirSync(dirname(output), { recursive: true });
writeFileSync(output, code);
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`${output}: ${Buffer.byteLength(code)} bytes, ${gzipped} bytes gzipped`);
