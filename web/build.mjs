// Builds the dialer into dist/ (committed: the local server and the web
// function embed it, so `cargo run` needs no Node.js) and prints the budget.
//
//   node build.mjs            build dist/
//   node build.mjs --verify   build into target/dist-verify and fail if it differs from dist/
//   node build.mjs --tests    bundle tests/unit/*.test.ts for `node --test` (target/unit/)

import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));

/** The page's JavaScript, gzipped, Voice SDK included (issue: ≤ 150 KB). */
const JS_BUDGET_BYTES = 150_000;

async function buildDist(outdir) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const common = { bundle: true, minify: true, logLevel: 'warning', absWorkingDir: root, charset: 'utf8' };
  await esbuild.build({
    ...common,
    entryPoints: ['src/main.ts'],
    outfile: join(outdir, 'assets/app.js'),
    format: 'esm',
    platform: 'browser',
    // Browsers of the last few years (the Voice SDK's own floor is similar).
    target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
    // The SDK's license notices stay, at the end of the file.
    legalComments: 'eof',
  });
  await esbuild.build({ ...common, entryPoints: ['src/style.css'], outfile: join(outdir, 'assets/app.css') });
  await copyFile(join(root, 'src/index.html'), join(outdir, 'index.html'));
}

/** Every file under `dir`, as paths relative to it, sorted. */
async function files(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

async function sizes(dir) {
  const rows = [];
  for (const name of await files(dir)) {
    const bytes = await readFile(join(dir, name));
    rows.push({ name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  return rows;
}

function report(rows) {
  const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
  for (const row of rows) {
    console.log(`  ${row.name.padEnd(18)} ${kb(row.raw).padStart(10)}  gzip ${kb(row.gzip).padStart(9)}`);
  }
  const js = rows.filter((r) => r.name.endsWith('.js')).reduce((sum, r) => sum + r.gzip, 0);
  const all = rows.reduce((sum, r) => sum + r.gzip, 0);
  console.log(`  JavaScript, gzipped, Voice SDK included: ${kb(js)} (budget ${kb(JS_BUDGET_BYTES)}); everything: ${kb(all)}`);
  if (js > JS_BUDGET_BYTES) {
    console.error(`build.mjs: the page's JavaScript is ${kb(js)} gzipped, over the ${kb(JS_BUDGET_BYTES)} budget`);
    process.exit(1);
  }
}

async function verify() {
  const fresh = join(root, 'target/dist-verify');
  await buildDist(fresh);
  const committed = join(root, 'dist');
  const names = new Set([...(await files(fresh)), ...(await files(committed))]);
  const differ = [];
  for (const name of [...names].sort()) {
    const [a, b] = await Promise.all([readFile(join(fresh, name)).catch(() => null), readFile(join(committed, name)).catch(() => null)]);
    if (!a || !b || !a.equals(b)) {
      differ.push(name);
    }
  }
  report(await sizes(fresh));
  if (differ.length) {
    console.error(`build.mjs: web/dist is not what web/src builds (${differ.join(', ')}): run \`npm run build\` in web/ and commit dist/`);
    process.exit(1);
  }
  console.log('  web/dist is what web/src builds');
}

async function buildTests() {
  const outdir = join(root, 'target/unit');
  await rm(outdir, { recursive: true, force: true });
  const entryPoints = (await readdir(join(root, 'tests/unit'))).filter((n) => n.endsWith('.test.ts')).map((n) => `tests/unit/${n}`);
  await esbuild.build({
    entryPoints,
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    absWorkingDir: root,
    logLevel: 'warning',
    // The module under test wraps the SDK; the tests hand it a stand-in.
    alias: { '@twilio/voice-sdk': './tests/unit/sdk-stub.ts' },
    external: ['node:*'],
  });
}

if (args.has('--tests')) {
  await buildTests();
} else if (args.has('--verify')) {
  await verify();
} else {
  const dist = join(root, 'dist');
  await buildDist(dist);
  console.log('web/dist:');
  report(await sizes(dist));
}
