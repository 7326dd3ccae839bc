/**
 * End-to-end test of the dashboard in real headless Chromium against the real
 * backend: starts `mlservice serve` on a free port with a fresh data dir,
 * serving the static export from frontend/out, then drives the UI like a
 * person would. Screenshots go to test-artifacts/screenshots/.
 *
 * Needs: the backend installed in .venv, `npm ci && npm run build` in
 * frontend/, and Debian's Chromium at CHROME_PATH (default /usr/bin/chromium;
 * `make test-frontend` sets it to the chromium on PATH).
 * Playwright never downloads a browser here (playwright-core only).
 *
 *   node --test tests/e2e/dashboard.e2e.mjs   (from the repository root)
 *   npm run test:e2e                (from frontend/)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FRONTEND = join(ROOT, 'frontend');
const require = createRequire(join(FRONTEND, 'package.json'));
const { chromium } = require('playwright-core');

const OUT = join(FRONTEND, 'out');
const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');
const MLSERVICE = process.env.MLSERVICE_BIN || join(ROOT, '.venv', 'bin', 'mlservice');
const CHROME = process.env.CHROME_PATH || '/usr/bin/chromium';
const ADMIN = 'admin';
const ADMIN_PASSWORD = 'e2e-Admin-password-42';
const CHROME_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function waitForHealth(base, proc, log, timeoutMs = 60_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (proc.exitCode !== null) throw new Error(`mlservice serve exited with ${proc.exitCode}:\n${log.join('')}`);
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return r.json();
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`mlservice serve did not answer /health in ${timeoutMs} ms:\n${log.join('')}`);
}

describe('dashboard e2e (real backend, headless Chromium)', { timeout: 180_000 }, () => {
  let server;
  let dataDir;
  let profileDir;
  let context;
  let page;
  let base;
  const serverLog = [];
  const pageErrors = [];
  let shot = 0;

  async function snap(name) {
    shot += 1;
    await page.screenshot({ path: join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  }

  before(async () => {
    assert.ok(existsSync(join(OUT, 'index.html')), `${OUT} missing: run \`npm ci && npm run build\` in frontend/`);
    assert.ok(existsSync(MLSERVICE), `${MLSERVICE} missing: install the backend into .venv`);
    assert.ok(existsSync(CHROME), `${CHROME} missing: apt-get install -y chromium, or set CHROME_PATH`);
    rmSync(SHOTS, { recursive: true, force: true }); // this run's pictures only
    mkdirSync(SHOTS, { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'mlservice-e2e-'));
    profileDir = mkdtempSync(join(tmpdir(), 'chromium-e2e-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawn(MLSERVICE, ['serve'], {
      cwd: dataDir,
      env: {
        ...process.env,
        ML_DATA_DIR: dataDir,
        ML_SERVICE_HOST: '127.0.0.1',
        ML_SERVICE_PORT: String(port),
        ML_ADMIN_USERNAME: ADMIN,
        ML_ADMIN_PASSWORD: ADMIN_PASSWORD,
        ML_DASHBOARD_DIR: OUT,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    server.stdout.on('data', (d) => serverLog.push(String(d)));
    server.stderr.on('data', (d) => serverLog.push(String(d)));
    await waitForHealth(base, server, serverLog);

    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROME,
      headless: true,
      args: CHROME_ARGS,
      viewport: { width: 1280, height: 800 },
      colorScheme: 'light',
      reducedMotion: 'reduce',
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    if (server && server.exitCode === null) {
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        server.kill('SIGTERM');
      }
      await new Promise((r) => {
        const t = setTimeout(() => {
          try {
            process.kill(-server.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          r();
        }, 5000);
        server.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    for (const d of [dataDir, profileDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test('an unauthenticated visit to / goes to the login page', async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login\/$/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.ok(await page.getByLabel('Username').isVisible());
    assert.ok(await page.getByLabel('Password').isVisible());
    await snap('login');
  });

  test('a wrong password shows the server message', async () => {
    await page.getByLabel('Username').fill(ADMIN);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByLabel('Password').press('Enter');
    // (Not getByRole('alert'): Next's route announcer is one too.)
    const alert = page.locator('#login-error[role="alert"]');
    await alert.waitFor();
    assert.match(await alert.innerText(), /wrong username or password/i);
    assert.match(page.url(), /\/login\/$/);
    await snap('login-error');
  });

  test('the admin logs in (Enter submits) and sees the overview', async () => {
    await page.getByLabel('Username').fill(ADMIN);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForURL(`${base}/`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.equal(await page.getByTestId('whoami').innerText(), ADMIN);
    await page.getByTestId('card-status').getByText('Operational').waitFor();
    assert.match(await page.getByTestId('card-version').innerText(), /0\.\d+\.\d+/);
    assert.match(await page.getByTestId('card-database').innerText(), /SQLite/);
    const nav = page.getByRole('navigation', { name: 'Dashboard' });
    for (const label of ['Overview', 'Profile', 'Users', 'About', 'Admin panel']) {
      assert.ok(await nav.getByRole('link', { name: label }).isVisible(), `${label} in the sidebar`);
    }
    // The session lives in an httpOnly cookie, invisible to scripts.
    assert.equal(await page.evaluate(() => document.cookie.includes('ml_session')), false);
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'ml_session');
    assert.ok(session?.httpOnly, 'ml_session is httpOnly');
    assert.equal(session.sameSite, 'Strict');
    await snap('overview');
  });

  test('before consent nothing but the session is stored; the banner asks', async () => {
    const banner = page.getByRole('region', { name: 'Cookie consent' });
    await banner.waitFor();
    const stored = await page.evaluate(() => Object.keys(localStorage));
    assert.deepEqual(stored, []);
  });

  test('the theme changes to dark without being stored before consent', async () => {
    await page.getByRole('button', { name: /^Theme:/ }).click();
    await page.getByRole('menuitemradio', { name: 'Dark' }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await page.evaluate(() => localStorage.getItem('ml-theme')), null);
    // The dark palette applies (after the short background transition).
    await page.waitForFunction(() => getComputedStyle(document.body).backgroundColor === 'rgb(14, 17, 22)', null, {
      timeout: 5000,
    });
    // Keyboard: the menu opens with ArrowDown and closes with Escape, focus back on the button.
    const button = page.getByRole('button', { name: /^Theme:/ });
    await button.focus();
    await page.keyboard.press('ArrowDown');
    await page.getByRole('menu', { name: 'Theme' }).waitFor();
    await page.keyboard.press('Escape');
    assert.equal(await page.getByRole('menu', { name: 'Theme' }).count(), 0);
    assert.equal(await button.evaluate((b) => b === document.activeElement), true);
    await snap('theme-dark');
  });

  test('accepting cookies persists the theme across reloads', async () => {
    const banner = page.getByRole('region', { name: 'Cookie consent' });
    await banner.getByRole('button', { name: 'Accept' }).click();
    await banner.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => localStorage.getItem('ml-consent')), 'all');
    assert.equal(await page.evaluate(() => localStorage.getItem('ml-theme')), 'dark');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await page.getByRole('region', { name: 'Cookie consent' }).count(), 0);
    await snap('consent-accepted');
  });

  test('the admin creates a user and changes their tier', async () => {
    await page.getByRole('navigation', { name: 'Dashboard' }).getByRole('link', { name: 'Users' }).click();
    await page.waitForURL(/#users$/);
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Initial password').fill('alice-password-123');
    await page.getByLabel('Tier', { exact: true }).selectOption('user');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByText('User alice created.').waitFor();
    const row = page.locator('tr[data-username="alice"]');
    await row.waitFor();
    assert.match(await row.innerText(), /active/);
    await page.getByLabel('Tier of alice').selectOption('admin');
    const dialog = page.getByRole('dialog', { name: 'Change the tier of alice?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Change tier' }).click();
    await page.getByText('alice is now Admin.').waitFor();
    assert.equal(await page.getByLabel('Tier of alice').inputValue(), 'admin');
    // The admin's own row offers no destructive action.
    const me = page.locator(`tr[data-username="${ADMIN}"]`);
    assert.equal(await me.getByRole('button', { name: /Delete/ }).count(), 0);
    // A duplicate is refused with the server's message.
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Initial password').fill('alice-password-123');
    await page.getByRole('button', { name: 'Create user' }).click();
    const err = page.locator('section[aria-labelledby="create-user-h"] [role="alert"]');
    await err.waitFor();
    assert.ok((await err.innerText()).length > 5);
    await snap('users');
  });

  let tokenValue;
  test('the user creates an API token and sees it exactly once', async () => {
    await page.getByRole('navigation', { name: 'Dashboard' }).getByRole('link', { name: 'Profile' }).click();
    await page.getByRole('heading', { level: 1, name: 'Profile' }).waitFor();
    await page.getByLabel('Token name').fill('e2e-token');
    await page.getByRole('button', { name: 'Create token' }).click();
    const box = page.getByTestId('new-token');
    await box.waitFor();
    assert.match(await box.innerText(), /will not be shown again/);
    tokenValue = await page.getByLabel('New API token').inputValue();
    assert.ok(tokenValue.length >= 20, 'a real token is shown');
    await snap('token-created');
    // The token works against the API.
    const r = await fetch(`${base}/auth/user-info`, { headers: { Authorization: `Bearer ${tokenValue}` } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).username, ADMIN);
    // Listed, with its state and "never" used from the dashboard's point of view.
    const row = page.getByTestId('token-row').filter({ hasText: 'e2e-token' });
    await row.waitFor();
    assert.match(await row.innerText(), /active/);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    await box.waitFor({ state: 'detached' });
    await page.reload();
    await page.getByTestId('token-row').filter({ hasText: 'e2e-token' }).waitFor();
    const html = await page.content();
    assert.equal(html.includes(tokenValue), false, 'the secret is not shown again');
  });

  test('revoking the token stops it working', async () => {
    const row = page.getByTestId('token-row').filter({ hasText: 'e2e-token' });
    await row.getByRole('button', { name: 'Revoke token e2e-token' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('Token “e2e-token” revoked.').waitFor();
    await row.getByText('revoked').waitFor();
    const r = await fetch(`${base}/auth/user-info`, { headers: { Authorization: `Bearer ${tokenValue}` } });
    assert.equal(r.status, 401);
  });

  const FIXTURES = join(ROOT, 'tests', 'e2e', 'fixtures');
  const MODEL = 'adult_e2e';
  const wsFrames = [];

  test('Training: upload a CSV, see its schema, train, and watch progress arrive over the socket', async () => {
    page.on('websocket', (ws) => {
      if (ws.url().endsWith('/ws')) ws.on('framereceived', (f) => wsFrames.push(String(f.payload)));
    });
    await page.goto(`${base}/#training`);
    await page.getByRole('heading', { level: 1, name: 'Training' }).waitFor();
    await page.getByLabel('Training data file').setInputFiles(join(FIXTURES, 'adult-train.csv'));
    await page.getByRole('button', { name: 'Upload dataset' }).click();
    const info = page.getByTestId('dataset-info');
    await info.waitFor();
    assert.match(await info.innerText(), /400 rows, 15 columns/);
    // The inferred schema, with the reason of each type.
    assert.equal(await page.getByLabel('Target column').inputValue(), 'income');
    assert.equal(await page.getByLabel('Type of age').inputValue(), 'numeric');
    assert.equal(await page.getByLabel('Type of workclass').inputValue(), 'categorical');
    await page.getByLabel('Type of fnlwgt').selectOption('ignored');
    await page.getByLabel('Model key').fill(MODEL);
    await page.getByLabel('Hidden layers').fill('16');
    await page.getByLabel('Max iterations').fill('15');
    await snap('training-schema');
    await page.getByRole('button', { name: 'Start training' }).click();
    const view = page.getByTestId('job-view');
    await view.waitFor();
    await page.locator('[data-testid="job-view"][data-status="completed"]').waitFor({ timeout: 90_000 });
    // The loss curve, drawn from details.history.
    const chart = view.getByRole('img', { name: /Training loss over \d+ epochs/ });
    await chart.waitFor();
    const chartLabel = await chart.getAttribute('aria-label');
    assert.ok(Number(/over (\d+) epochs/.exec(chartLabel)[1]) >= 2, chartLabel);
    assert.equal(await view.getByRole('progressbar').getAttribute('aria-valuenow'), '100');
    // Progress came live over the one WebSocket, not by polling.
    const types = wsFrames.map((f) => JSON.parse(f).type);
    assert.ok(types.includes('hello'), 'the socket said hello');
    assert.ok(types.includes('job.progress'), `job.progress received (got ${[...new Set(types)].join(', ')})`);
    assert.ok(types.includes('job.completed'), 'job.completed received');
    await snap('training-done');
  });

  test('Models: the new model with its metrics and confusion matrix', async () => {
    await page.getByRole('link', { name: 'See the model in Models' }).click();
    await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
    const row = page.locator(`tr[data-model="${MODEL}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /1\.0\.0[\s\S]*\d+\.\d%[\s\S]*\d+\.\d%/);
    assert.match(await page.getByTestId('version-accuracy').first().innerText(), /^\d+\.\d%$/);
    const matrix = page.getByRole('table', { name: /Confusion matrix of 1\.0\.0/ });
    await matrix.waitFor();
    assert.match(await matrix.innerText(), /<=50K/);
    await snap('models');
  });

  test('Predict: a file, live progress, results, CSV export and feedback', async () => {
    await page.goto(`${base}/#predict`);
    await page.getByRole('heading', { level: 1, name: 'Predict' }).waitFor();
    assert.equal(await page.getByLabel('Model', { exact: true }).inputValue(), MODEL);
    await page.getByLabel('Version', { exact: true }).selectOption('1.0.0');
    await page.getByLabel('File to predict').setInputFiles(join(FIXTURES, 'adult-predict.csv'));
    await page.getByRole('button', { name: 'Run prediction' }).click();
    const results = page.getByTestId('predict-results');
    await results.waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('job-view').innerText(), /adult_e2e 1\.0\.0/);
    assert.equal(await results.locator('tbody tr').count(), 60);
    assert.match(await results.locator('tbody tr').first().innerText(), /50K/);
    const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    assert.match(href, /\/predict\/[^/]+\/export\?format=csv$/);
    const r = await page.request.get(`${base}${href}`);
    assert.equal(r.status(), 200);
    const csv = await r.text();
    assert.match(csv.split('\n')[0], /prediction/);
    assert.ok(csv.trim().split('\n').length >= 61, 'header + 60 rows');
    await page.getByLabel('True label of row 0', { exact: true }).selectOption('<=50K');
    await page.getByLabel('True label of row 1', { exact: true }).selectOption('>50K');
    await page.getByRole('button', { name: 'Send feedback labels' }).click();
    await page.getByText(/2 labels saved/).waitFor();
    await snap('predict');
  });

  test('Jobs: the training and prediction jobs, filters and details', async () => {
    await page.goto(`${base}/#jobs`);
    await page.getByRole('heading', { level: 1, name: 'Jobs' }).waitFor();
    await page.locator('tr[data-job-type="train"][data-status="completed"]').waitFor();
    await page.locator('tr[data-job-type="predict"][data-status="completed"]').waitFor();
    // A job started elsewhere appears without a reload: job.created/job.completed over the socket.
    const started = await page.request.post(`${base}/drift/check`, {
      headers: { 'X-ML-Client': 'dashboard' },
      data: { model_key: MODEL, last_days: 1 },
    });
    assert.equal(started.status(), 202);
    const { job_id: driftJob } = await started.json();
    await page.locator(`tr[data-job-type="drift"][data-status="completed"]`).waitFor({ timeout: 30_000 });
    assert.ok(driftJob);
    await page.getByLabel('Type', { exact: true }).selectOption('predict');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-job-type="train"]').length === 0);
    assert.ok((await page.locator('tr[data-job-type="predict"]').count()) >= 1);
    await page.getByLabel('Type', { exact: true }).selectOption('train');
    await page.getByRole('button', { name: /^Details of train job/ }).first().click();
    const view = page.getByTestId('job-view');
    await view.getByRole('img', { name: /Training loss/ }).waitFor();
    assert.match(await view.getByRole('list', { name: 'Stages' }).innerText(), /fit_model/);
    await snap('jobs');
  });

  test('Models: an admin promotes a second version, then rolls back', async () => {
    // A second version, trained through the API with the page's own session.
    const started = await page.request.post(`${base}/train`, {
      headers: { 'X-ML-Client': 'dashboard' },
      multipart: {
        model_key: MODEL,
        target: 'income',
        params: JSON.stringify({ hidden_layer_sizes: [8], max_iter: 10 }),
        file: { name: 'adult-train.csv', mimeType: 'text/csv', buffer: readFileSync(join(FIXTURES, 'adult-train.csv')) },
      },
    });
    assert.equal(started.status(), 202, await started.text());
    const { job_id: jobId } = await started.json();
    let job;
    for (let i = 0; i < 240; i += 1) {
      job = await (await page.request.get(`${base}/jobs/${jobId}`)).json();
      if (['completed', 'failed', 'cancelled'].includes(job.status)) break;
      await page.waitForTimeout(250);
    }
    assert.equal(job.status, 'completed', JSON.stringify(job));
    const second = job.result.version;
    assert.notEqual(second, '1.0.0');
    const activeVersion = async () => (await (await page.request.get(`${base}/models/${MODEL}`)).json()).active_version;
    assert.equal(await activeVersion(), '1.0.0', 'a new version does not replace the active one by itself');

    await page.goto(`${base}/#models`);
    await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="version-row"]').length === 2);
    await page.getByRole('button', { name: `Promote ${second}` }).click();
    let dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Promote' }).click();
    await page.getByText(`${MODEL} ${second} is now active.`).waitFor();
    assert.equal(await activeVersion(), second);
    await page.getByRole('button', { name: 'Promote 1.0.0' }).waitFor(); // the badge moved
    await snap('models-promoted');

    await page.getByRole('button', { name: 'Roll back' }).click();
    dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await page.getByText(`${MODEL} rolled back.`).waitFor();
    assert.equal(await activeVersion(), '1.0.0');
    await page.getByRole('button', { name: `Promote ${second}` }).waitFor();
  });

  test('Drift: check now, the report appears live and opens per feature', async () => {
    await page.goto(`${base}/#models`);
    await page.locator(`tr[data-model="${MODEL}"]`).waitFor();
    await page.getByRole('button', { name: 'Check drift now' }).click();
    const row = page.getByTestId('drift-row').first();
    await row.waitFor({ timeout: 60_000 });
    assert.match(await row.innerText(), /no_drift|drift|not_enough_data/);
    await snap('models-drift');
    await row.getByRole('link').click();
    await page.getByRole('heading', { level: 1, name: 'Events' }).waitFor();
    const report = page.getByTestId('drift-report');
    await report.waitFor();
    assert.match(await report.innerText(), new RegExp(`${MODEL} 1\\.0\\.0`));
  });

  test('Overview: each model with its version, accuracies, last drift check and a sparkline; Models: accuracy over time', async () => {
    await page.goto(`${base}/#overview`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByTestId('card-status').getByText('Operational').waitFor(); // the health strip stays
    const row = page.locator(`[data-testid="ov-model"][data-model="${MODEL}"]`);
    await row.waitFor();
    assert.equal(await row.getByTestId('ov-version').innerText(), '1.0.0');
    assert.match(await row.getByTestId('ov-holdout').innerText(), /^\d+\.\d%$/);
    // The drift check above ran on the 60 logged predictions: an estimate, and the 2 feedback labels.
    assert.match(await row.getByTestId('ov-estimated').innerText(), /^\d+\.\d%/);
    assert.match(await row.getByTestId('ov-realised').innerText(), /^\d+\.\d% 2 labelled$/);
    assert.match(await row.getByTestId('ov-verdict').innerText(), /no drift|drift|not enough data/);
    assert.ok(Number(await row.getByTestId('ov-predictions').innerText()) >= 60);
    const spark = row.getByTestId('sparkline');
    assert.match(await spark.getAttribute('aria-label'), /^\d+ predictions of .* in the last 24 hours/);
    assert.match(await spark.locator('path').getAttribute('d'), /^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+){23}$/);
    await page.getByTestId('ov-alerts').waitFor();
    await page.getByTestId('ov-jobs').waitFor();
    await snap('overview-models');

    await page.goto(`${base}/#models`);
    const chart = page.getByTestId('accuracy-chart');
    await chart.waitFor({ timeout: 30_000 });
    assert.match(await chart.getByRole('img').getAttribute('aria-label'), /Estimated and realised accuracy/);
    assert.match(await chart.innerText(), /estimated[\s\S]*realised[\s\S]*holdout/);
    await page.getByTestId('psi-chart').waitFor();
    await page.getByTestId('feature-importance').waitFor();
    await snap('models-monitoring');
  });

  test('Events: the feed shows the jobs, with details and by-IP', async () => {
    await page.goto(`${base}/#events`);
    await page.getByRole('heading', { level: 1, name: 'Events' }).waitFor();
    await page.locator('tr[data-type="train.completed"], tr[data-type="train.requested"]').first().waitFor();
    await page.getByRole('button', { name: /^Details of event \d+ predict\./ }).first().click();
    const detail = page.getByTestId('event-detail');
    await detail.waitFor();
    assert.match(await detail.innerText(), /Input[\s\S]*Output/);
    // Filters: a type prefix, and suspicious only (the revoked token's use was flagged earlier).
    await page.getByLabel('Type', { exact: true }).fill('predict');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tr[data-testid="event-row"]')];
      return rows.length > 0 && rows.every((r) => r.dataset.type.startsWith('predict'));
    });
    await page.getByLabel('Type', { exact: true }).fill('');
    await page.getByLabel('Suspicious only').check();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tr[data-testid="event-row"]')];
      return rows.length > 0 && rows.every((r) => r.classList.contains('suspicious'));
    });
    await page.getByLabel('Suspicious only').uncheck();
    await page.getByRole('button', { name: /^Events from / }).first().click();
    await page.getByRole('button', { name: 'Show all IPs' }).waitFor();
    assert.ok((await page.getByTestId('event-row').count()) > 0);
    await snap('events');
  });

  test('About shows the version and curl examples; the layout fits a 390 px phone', async () => {
    await page.goto(`${base}/#about`);
    await page.getByRole('heading', { level: 1, name: 'About' }).waitFor();
    await page.getByTestId('about-version').getByText(/\d+\.\d+\.\d+/).waitFor();
    assert.match(await page.locator('pre').first().innerText(), /curl -X POST ".*\/auth\/login"/);
    await page.setViewportSize({ width: 390, height: 844 });
    // Judge each tab once its data is in: the widest parts (tables, the drift charts and their
    // legends) arrive after the heading, the monitoring charts from a lazily loaded chunk. The
    // models tab must show the drift reports the tests above created; a check made before they
    // render passes on a page that then scrolls sideways (CI once caught the PSI legend so).
    const ready = { models: () => page.getByTestId('psi-chart') };
    for (const tab of ['overview', 'users', 'profile', 'about', 'training', 'models', 'predict', 'jobs', 'events']) {
      await page.goto(`${base}/#${tab}`);
      await page.locator('#content h2').first().waitFor();
      if (ready[tab]) await ready[tab]().waitFor();
      await page.waitForFunction(() => !document.querySelector('#content .loading'));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      // On failure, name the outermost elements that stick out, so the message says what to fix.
      // (What a scroll box such as .table-wrap clips does not widen the page, so it is not named.)
      const wide = overflow <= 0 ? [] : await page.evaluate(() => [...document.querySelectorAll('#content *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
          && !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 1)
          && !e.parentElement?.closest('.table-wrap, pre'))
        .slice(0, 5).map((e) => {
          const path = [];
          for (let n = e; n && n.id !== 'content'; n = n.parentElement) path.unshift(`${n.tagName.toLowerCase()}${n.className ? '.' + String(n.className).split(' ')[0] : ''}`);
          return `${path.join('>')} (${Math.round(e.getBoundingClientRect().width)}px)`;
        }));
      assert.ok(overflow <= 0, `#${tab}: no horizontal page scrolling at 390 px (overflow ${overflow}px): ${wide.join(', ')}`);
      await snap(`mobile-${tab}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('the Admin panel embeds Swagger UI and ReDoc, and both render the API', async () => {
    await page.goto(`${base}/#admin`);
    await page.getByRole('heading', { level: 1, name: 'Admin panel' }).waitFor();
    // Each docs page renders from this server's own assets and the schema its cookie may read:
    // the API's title and the login operation appear only once both loaded and ran.
    for (const [tab, path, title, operation] of [
      ['Swagger UI', '/docs', '.swagger-ui .info .title', '.swagger-ui .opblock-summary-path[data-path="/auth/login"]'],
      ['ReDoc', '/redoc', '.api-info h1', '[data-section-id$="operation/login_auth_login_post"]'],
    ]) {
      await page.getByRole('tab', { name: tab }).click();
      await page.locator(`iframe[src="${path}"]`).waitFor();
      const frame = page.frameLocator(`iframe[src="${path}"]`);
      const heading = frame.locator(title).first();
      await heading.waitFor();
      assert.match(await heading.innerText(), /^ML Service\b/, `${tab} renders the API's title`);
      await frame.locator(operation).first().waitFor({ state: 'attached' });
      const f = page.frames().find((x) => x.url().endsWith(path));
      assert.ok(f, `${path} frame loaded`);
      assert.equal(await f.title(), 'ML Service API');
      await snap(`admin-${path.slice(1)}`);
    }
  });

  test('Swagger UI in the Admin panel: Authorize is offered, and "Try it out" runs a GET and a POST with the cookie session', async () => {
    await page.goto(`${base}/#admin`);
    await page.getByRole('tab', { name: 'Swagger UI' }).click();
    const frame = page.frameLocator('iframe[src="/docs"]');
    // The schema declares the bearer scheme, so Swagger offers Authorize (paste a token there).
    await frame.locator('.swagger-ui .auth-wrapper .authorize').waitFor();
    const operation = (method, path) =>
      frame.locator(`.opblock.opblock-${method}`, { has: frame.locator(`.opblock-summary-path[data-path="${path}"]`) });
    // Expand, "Try it out", (fill the JSON body), "Execute"; read the live answer's code and body.
    async function execute(block, body) {
      await block.locator('.opblock-summary-control').first().click();
      await block.locator('button.try-out__btn').click();
      if (body) await block.locator('textarea.body-param__text').fill(JSON.stringify(body));
      await block.locator('button.execute').click();
      const live = block.locator('.live-responses-table tr.response');  // (not the "Code" header row)
      const status = live.locator('.response-col_status').first();
      await status.waitFor();
      const answer = live.locator('.highlight-code pre').first();
      return { status: (await status.innerText()).trim(), body: JSON.parse(await answer.innerText()) };
    }

    // GET: authenticated by the dashboard's session cookie, nothing pasted into Authorize.
    const info = await execute(operation('get', '/auth/user-info'));
    assert.equal(info.status, '200');
    assert.equal(info.body.username, ADMIN);

    // POST: a cookie-authenticated write passes the CSRF guard only because Swagger's request
    // interceptor on our /docs page adds X-ML-Client: dashboard (without it: 403).
    const { status, body: created } = await execute(operation('post', '/auth/tokens'), { name: 'made-in-swagger' });
    assert.equal(status, '201', JSON.stringify(created));
    assert.equal(created.name, 'made-in-swagger');
    await snap('admin-swagger-try-it-out');

    // The API agrees: the token is listed, and its secret (shown once, in Swagger) works.
    const listed = await page.evaluate(async () => (await (await fetch('/auth/tokens?limit=100')).json()).items);
    assert.ok(listed.some((t) => t.id === created.id && t.name === 'made-in-swagger'), 'the new token is listed');
    const me = await fetch(`${base}/auth/user-info`, { headers: { Authorization: `Bearer ${created.token}` } });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).username, ADMIN);
  });

  test('keyboard: the first Tab reaches the skip link, which moves focus to the content', async () => {
    await page.goto(`${base}/#overview`);
    await page.reload();
    await page.getByTestId('card-status').waitFor();
    await page.keyboard.press('Tab');
    const focused = page.locator(':focus');
    assert.equal(await focused.innerText(), 'Skip to content');
    assert.ok(await focused.isVisible(), 'the focused skip link is visible');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'content');
  });

  test('the admin logs out and the app asks for a login again', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login\/$/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const cookies = await context.cookies(base);
    assert.equal(cookies.some((c) => c.name === 'ml_session'), false);
    await page.goto(`${base}/#profile`);
    await page.waitForURL(/\/login\/\?next=/);
    await snap('logged-out');
  });

  test('no uncaught errors in the page', () => {
    // The embedded docs pages count too: their assets are served by this server.
    assert.deepEqual(pageErrors, []);
  });
});
