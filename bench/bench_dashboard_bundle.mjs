#!/usr/bin/env node
/**
 * Dashboard bundle figures: first-load JS per page of the static export.
 *
 * For each page (out/login/index.html, out/index.html) sums the gzip -9 size
 * of the scripts its HTML references (`<script src>`, `nomodule` polyfills
 * excluded) — the same method as shared/BENCH_NOTES.md, which measured an
 * empty Next.js 15.5 app-router page at 100.7 KB as the reference. Also lists
 * the on-demand tab chunks (not first-load) and checks the budgets.
 *
 * Optional Lighthouse (performance, accessibility, best practices) with
 * --lighthouse: needs `npm ci` in frontend/ (lighthouse devDependency) and
 * Chromium at CHROME_PATH (default /usr/bin/chromium). Without --url it
 * serves frontend/out itself and audits /login/ only (/ needs a session);
 * with --url http://127.0.0.1:PORT --user U --password P (a running
 * `mlservice serve` that serves the dashboard) it signs in and audits both;
 * add --gzip to serve the export compressed from a local proxy in front of
 * that backend (what a deployment with compression gets), --desktop for
 * Lighthouse's desktop preset instead of the default mobile one. --runs N
 * audits each page N times and reports the per-metric medians (TBT and TTI
 * are noisy on a shared machine), with the load average at the end;
 * --save DIR keeps each Lighthouse JSON report (DIR/login-mobile-1.json, …).
 * Besides the scores it prints the diagnostics that explain them: main-thread
 * work, JS boot-up time, long tasks, scripts transferred.
 *
 * --reference builds, in a temporary folder with frontend/node_modules, the
 * reference of BENCH_NOTES.md (an empty app-router page with one button) and
 * measures it in the same run, so the figures compare with a fresh baseline.
 *
 * Usage:
 *   node bench/bench_dashboard_bundle.mjs [--out frontend/out] [--json] [--reference]
 *        [--lighthouse [--desktop] [--runs N] [--save DIR] [--url URL --user U --password P [--gzip]]]
 * Exit status 1 when a budget is exceeded (login ≤ 105 KB, app ≤ 130 KB).
 */
import { readFileSync, existsSync, readdirSync, statSync, mkdtempSync, rmSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { dirname, join, extname, resolve } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] && !args[i + 1].startsWith('--') ? args[i + 1] : def;
};
const flag = (name) => args.includes(name);

const OUT = resolve(opt('--out', join(ROOT, 'frontend', 'out')));
// KB = 1024 bytes, as in shared/BENCH_NOTES.md (its empty page, 100.7 KB, measures
// 100.5 KB = 102,867 bytes here); Next's build table uses kB = 1000 (also printed).
const KB = 1024;
const PAGES = [
  { name: 'login', route: '/login/', html: 'login/index.html', budgetKB: 105 },
  { name: 'app', route: '/', html: 'index.html', budgetKB: 130 },
];
const REFERENCE_EMPTY_PAGE_KB = 100.7;
// next.config.mjs puts V8's explicit compile hint atop each client chunk (see there).
const COMPILE_HINT = '//# allFunctionsCalledOnLoad';

const gz = (buf) => gzipSync(buf, { level: 9 }).length;

function scriptsOf(html) {
  const out = [];
  for (const m of html.matchAll(/<script\b([^>]*)>/gi)) {
    const attrs = m[1];
    if (/\bnomodule\b/i.test(attrs)) continue;
    const src = attrs.match(/\bsrc\s*=\s*"([^"]+)"|\bsrc\s*=\s*'([^']+)'/i);
    if (src) out.push(src[1] ?? src[2]);
  }
  return [...new Set(out)];
}

function fileFor(src) {
  const path = src.replace(/^https?:\/\/[^/]+/, '').split(/[?#]/)[0];
  return join(OUT, decodeURIComponent(path));
}

function measurePage(p) {
  const htmlPath = join(OUT, p.html);
  if (!existsSync(htmlPath)) throw new Error(`${htmlPath} missing: run \`npm run build\` in frontend/ first`);
  const html = readFileSync(htmlPath);
  const scripts = scriptsOf(html.toString('utf8')).map((src) => {
    const buf = readFileSync(fileFor(src));
    return { src, raw: buf.length, gzip: gz(buf), compile_hint: buf.subarray(0, 64).toString('latin1').startsWith(COMPILE_HINT) };
  });
  const js = scripts.reduce((a, s) => a + s.gzip, 0);
  const inline = [...html.toString('utf8').matchAll(/<script\b(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)]
    .map((m) => m[1])
    .join('');
  return {
    page: p.name,
    route: p.route,
    first_load_js_gzip_bytes: js,
    first_load_js_gzip_kb: +(js / KB).toFixed(1),
    budget_kb: p.budgetKB,
    within_budget: js / KB <= p.budgetKB,
    over_reference_kb: +((js / KB) - REFERENCE_EMPTY_PAGE_KB).toFixed(1),
    html_gzip_kb: +(gz(html) / KB).toFixed(1),
    inline_script_gzip_kb: +(gz(Buffer.from(inline)) / KB).toFixed(1),
    compile_hinted_scripts: scripts.filter((s) => s.compile_hint).length,
    scripts,
  };
}

function lazyChunks(firstLoad) {
  const dir = join(OUT, '_next', 'static', 'chunks');
  const seen = new Set(firstLoad.map((s) => fileFor(s)));
  const out = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (!f.endsWith('.js') || !statSync(p).isFile() || seen.has(p)) continue;
    if (/^(polyfills|main-|framework|webpack)/.test(f)) continue;
    out.push({ file: f, gzip_kb: +(gz(readFileSync(p)) / KB).toFixed(1) });
  }
  return out.sort((a, b) => b.gzip_kb - a.gzip_kb);
}

// ---- reference: an empty page, built now with the same toolchain -------------

let referenceDir = null;

function buildReference() {
  const fe = join(ROOT, 'frontend');
  const dir = mkdtempSync(join(tmpdir(), 'dash-ref-'));
  referenceDir = dir; // kept for Lighthouse; removed at the end
  {
    mkdirSync(join(dir, 'src', 'app'), { recursive: true });
    symlinkSync(join(fe, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const pkg = JSON.parse(readFileSync(join(fe, 'package.json'), 'utf8'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ref', private: true, browserslist: pkg.browserslist }));
    writeFileSync(join(dir, 'next.config.mjs'), "export default { output: 'export', trailingSlash: true };\n");
    writeFileSync(
      join(dir, 'src', 'app', 'layout.jsx'),
      'export default function L({ children }) { return <html lang="en"><body>{children}</body></html>; }\n',
    );
    writeFileSync(
      join(dir, 'src', 'app', 'page.jsx'),
      "'use client';\nexport default function P() { return <button onClick={() => alert(1)}>hi</button>; }\n",
    );
    execFileSync(process.execPath, [join(fe, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'], {
      cwd: dir,
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
      stdio: 'ignore',
    });
    const html = readFileSync(join(dir, 'out', 'index.html'), 'utf8');
    const bytes = scriptsOf(html).reduce((a, src) => a + gz(readFileSync(join(dir, 'out', src.split(/[?#]/)[0]))), 0);
    return { first_load_js_gzip_bytes: bytes, first_load_js_gzip_kb: +(bytes / KB).toFixed(1) };
  }
}

// ---- Lighthouse (optional) ----------------------------------------------

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.txt': 'text/plain', '.json': 'application/json' };

/**
 * Serve the export gzip-compressed (as a production server or proxy would),
 * passing every other path to `backend` when given (API calls, /docs).
 */
function serveStatic(root, backend) {
  const server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path.endsWith('/')) path += 'index.html';
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file) || statSync(file).isDirectory()) {
      if (!backend) {
        res.writeHead(404).end('not found');
        return;
      }
      const target = new URL(req.url, backend);
      const up = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end('backend unreachable'));
      req.pipe(up);
      return;
    }
    const body = readFileSync(file);
    const zipped = /gzip/.test(req.headers['accept-encoding'] ?? '');
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': path.startsWith('/_next/static/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...(zipped ? { 'Content-Encoding': 'gzip' } : {}),
    });
    res.end(zipped ? gzipSync(body) : body);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

async function signIn(base, user, password) {
  const r = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-ML-Client': 'dashboard' },
    body: JSON.stringify({ username: user, password }),
  });
  if (!r.ok) throw new Error(`sign-in failed: HTTP ${r.status} ${await r.text()}`);
  const cookie = (r.headers.getSetCookie?.() ?? [r.headers.get('set-cookie')]).find((c) => c?.startsWith('ml_session='));
  if (!cookie) throw new Error('sign-in answered without an ml_session cookie');
  return cookie.split(';')[0];
}

/** The figures of one Lighthouse report: scores, metrics and where main-thread time went. */
function summarize(t, lhr) {
  const c = lhr.categories;
  const a = lhr.audits;
  const scripts = (a['network-requests']?.details?.items ?? []).filter((x) => x.resourceType === 'Script');
  return {
    page: t.page,
    preset: flag('--desktop') ? 'desktop' : 'mobile',
    via: t.via,
    url: t.url,
    final_url: lhr.finalDisplayedUrl,
    performance: Math.round(c.performance.score * 100),
    accessibility: Math.round(c.accessibility.score * 100),
    best_practices: Math.round(c['best-practices'].score * 100),
    fcp_ms: Math.round(a['first-contentful-paint'].numericValue),
    lcp_ms: Math.round(a['largest-contentful-paint'].numericValue),
    tbt_ms: Math.round(a['total-blocking-time'].numericValue),
    cls: +a['cumulative-layout-shift'].numericValue.toFixed(3),
    si_ms: Math.round(a['speed-index']?.numericValue ?? NaN),
    tti_ms: Math.round(a.interactive?.numericValue ?? NaN),
    observed_fcp_ms: Math.round(a.metrics?.details?.items?.[0]?.observedFirstContentfulPaint ?? NaN),
    observed_lcp_ms: Math.round(a.metrics?.details?.items?.[0]?.observedLargestContentfulPaint ?? NaN),
    // Diagnostics (simulated 4x-slowed CPU on mobile): total main-thread work, JS boot-up, long tasks.
    mainthread_ms: Math.round(a['mainthread-work-breakdown']?.numericValue ?? NaN),
    bootup_ms: Math.round(a['bootup-time']?.numericValue ?? NaN),
    long_tasks: a['long-tasks']?.details?.items?.length ?? 0,
    longest_task_ms: Math.round(Math.max(0, ...(a['long-tasks']?.details?.items ?? []).map((x) => x.duration))),
    requests: a['network-requests']?.details?.items?.length ?? 0,
    script_requests: scripts.length,
    script_transfer_kb: +(scripts.reduce((s, x) => s + (x.transferSize ?? 0), 0) / KB).toFixed(1),
    mainthread_breakdown: Object.fromEntries((a['mainthread-work-breakdown']?.details?.items ?? []).map((x) => [x.group, Math.round(x.duration)])),
    bootup_top: (a['bootup-time']?.details?.items ?? []).slice(0, 4).map((x) => ({ url: String(x.url).replace(/^https?:\/\/[^/]+/, ''), total_ms: Math.round(x.total), scripting_ms: Math.round(x.scripting) })),
    lcp_element: a['largest-contentful-paint-element']?.details?.items?.[0]?.items?.[0]?.node?.snippet ?? null,
    failed_a11y: Object.values(a)
      .filter((x) => x.score === 0 && c.accessibility.auditRefs.some((ref) => ref.id === x.id))
      .map((x) => x.id),
  };
}

/** Per-metric median of several runs of one page (each number on its own). */
function median(rows) {
  const med = (xs) => {
    const s = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
    if (!s.length) return NaN;
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : +((s[m - 1] + s[m]) / 2).toFixed(3);
  };
  const out = { ...rows[0] };
  for (const [k, v] of Object.entries(rows[0])) if (typeof v === 'number') out[k] = med(rows.map((r) => r[k]));
  out.performance_all = rows.map((r) => r.performance);
  out.tbt_all = rows.map((r) => r.tbt_ms);
  out.failed_a11y = [...new Set(rows.flatMap((r) => r.failed_a11y))];
  return out;
}

async function runLighthouse(targets) {
  const require = createRequire(join(ROOT, 'frontend', 'package.json'));
  let lighthouse, chromeLauncher;
  try {
    lighthouse = (await import(require.resolve('lighthouse'))).default;
    chromeLauncher = await import(require.resolve('chrome-launcher'));
  } catch (e) {
    throw new Error(`lighthouse not installed: run \`npm ci\` in frontend/ (${e.message})`);
  }
  // Default: Lighthouse's mobile preset (4x CPU slowdown, slow 4G); --desktop for its desktop preset.
  const config = flag('--desktop') ? (await import(require.resolve('lighthouse/core/config/desktop-config.js'))).default : undefined;
  const userDataDir = mkdtempSync(join(tmpdir(), 'lh-chrome-'));
  const chrome = await chromeLauncher.launch({
    chromePath: process.env.CHROME_PATH || '/usr/bin/chromium',
    userDataDir,
    chromeFlags: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const results = [];
  const runs = Math.max(1, Number(opt('--runs', '1')) || 1);
  const saveDir = opt('--save');
  if (saveDir) mkdirSync(saveDir, { recursive: true });
  try {
    for (const t of targets) {
      const perRun = [];
      for (let i = 0; i < runs; i++) {
        const flags = { port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: ['performance', 'accessibility', 'best-practices'], extraHeaders: t.headers };
        const r = await lighthouse(t.url, flags, config);
        if (saveDir) writeFileSync(join(saveDir, `${t.page}-${flag('--desktop') ? 'desktop' : 'mobile'}-${i + 1}.json`), r.report);
        perRun.push(summarize(t, r.lhr));
      }
      results.push(runs === 1 ? perRun[0] : { ...median(perRun), runs: perRun });
    }
  } finally {
    await chrome.kill();
    rmSync(userDataDir, { recursive: true, force: true });
  }
  return results;
}

// ---- main ----------------------------------------------------------------

const pages = PAGES.map(measurePage);
const report = {
  out_dir: OUT,
  method: 'gzip -9 of each <script src> in the page HTML, nomodule excluded; KB = 1024 bytes',
  reference_empty_page_kb: REFERENCE_EMPTY_PAGE_KB,
  pages,
  lazy_chunks: lazyChunks(pages.flatMap((p) => p.scripts.map((s) => s.src))),
};
if (flag('--reference')) {
  report.reference_measured = buildReference();
  for (const p of pages) {
    p.over_reference_measured_kb = +((p.first_load_js_gzip_bytes - report.reference_measured.first_load_js_gzip_bytes) / KB).toFixed(1);
  }
}

if (flag('--lighthouse')) {
  const url = opt('--url');
  let server;
  let refServer;
  try {
    let targets;
    if (url) {
      const backend = url.replace(/\/+$/, '');
      const cookie = await signIn(backend, opt('--user', 'admin'), opt('--password', process.env.ML_ADMIN_PASSWORD ?? ''));
      // --gzip: serve the export compressed from here, the API passed through to the backend.
      let base = backend;
      let via = 'backend';
      if (flag('--gzip')) {
        server = await serveStatic(OUT, backend);
        base = `http://127.0.0.1:${server.address().port}`;
        via = 'gzip proxy';
      }
      targets = [
        { page: 'login', url: `${base}/login/`, via },
        { page: 'app', url: `${base}/`, headers: { Cookie: cookie }, via },
      ];
    } else {
      server = await serveStatic(OUT);
      targets = [{ page: 'login', url: `http://127.0.0.1:${server.address().port}/login/`, via: 'gzip static' }];
    }
    if (referenceDir) {
      refServer = await serveStatic(join(referenceDir, 'out'));
      targets.unshift({ page: 'reference', url: `http://127.0.0.1:${refServer.address().port}/`, via: 'gzip static' });
    }
    report.lighthouse = await runLighthouse(targets);
    // TBT/TTI depend on what else the machine runs: record it with the figures.
    report.load_average = loadavg().map((x) => +x.toFixed(2));
    report.cpus = cpus().length;
  } finally {
    server?.close();
    refServer?.close();
  }
}
if (referenceDir) rmSync(referenceDir, { recursive: true, force: true });

if (flag('--json')) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(`Dashboard first-load JS (${report.method})`);
  console.log(`reference: empty Next.js 15.5 app-router page = ${REFERENCE_EMPTY_PAGE_KB} KB (BENCH_NOTES.md)`);
  if (report.reference_measured) {
    console.log(`reference measured now (same toolchain): ${report.reference_measured.first_load_js_gzip_kb} KB (${report.reference_measured.first_load_js_gzip_bytes} bytes)`);
  }
  for (const p of pages) {
    const ref = p.over_reference_measured_kb !== undefined ? `+${p.over_reference_measured_kb} KB over the reference measured now` : `+${p.over_reference_kb} KB over ${REFERENCE_EMPTY_PAGE_KB}`;
    console.log(
      `  ${p.route.padEnd(8)} ${String(p.first_load_js_gzip_kb).padStart(6)} KB = ${p.first_load_js_gzip_bytes} bytes (budget ${p.budget_kb} KB, ` +
        `${p.within_budget ? 'OK' : 'OVER'}; ${ref}; ${p.scripts.length} scripts, ${p.compile_hinted_scripts} with compile hints; HTML ${p.html_gzip_kb} KB)`,
    );
  }
  console.log('  on-demand chunks (tabs), gzip KB: ' + report.lazy_chunks.map((c) => `${c.file}=${c.gzip_kb}`).join(', '));
  for (const l of report.lighthouse ?? []) {
    const n = l.runs ? `median of ${l.runs.length} runs (perf ${l.performance_all.join('/')}, TBT ${l.tbt_all.join('/')} ms)` : '1 run';
    console.log(
      `  lighthouse ${l.page.padEnd(9)} ${l.preset} via ${l.via}, ${n}: perf ${l.performance}  a11y ${l.accessibility}  best-practices ${l.best_practices}` +
        `  (FCP ${l.fcp_ms} ms, LCP ${l.lcp_ms} ms, TBT ${l.tbt_ms} ms, CLS ${l.cls}, SI ${l.si_ms} ms, TTI ${l.tti_ms} ms)` +
        (l.failed_a11y.length ? `  failed a11y: ${l.failed_a11y.join(', ')}` : ''),
    );
    console.log(
      `    main thread ${l.mainthread_ms} ms, JS boot-up ${l.bootup_ms} ms, long tasks ${l.long_tasks} (longest ${l.longest_task_ms} ms), ` +
        `${l.script_requests} scripts = ${l.script_transfer_kb} KB transferred, ${l.requests} requests` +
        (l.runs ? '' : `; ${Object.entries(l.mainthread_breakdown).map(([k, v]) => `${k} ${v}`).join(', ')}`),
    );
  }
  if (report.load_average) console.log(`  load average during the runs: ${report.load_average.join(', ')} (${report.cpus} CPUs)`);
}
process.exitCode = pages.every((p) => p.within_budget) ? 0 : 1;
