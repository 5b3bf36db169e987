// The admin web page walked in Debian's Chromium through playwright-core, as an operator
// would: sign in (with the keyboard), the dashboard, search a user the API created, open
// it and see the login the API just made, deactivate the user and see the sessions gone
// (and the API refuse the token), create an API key and revoke it, the audit trail, log
// out. A full-page screenshot of every page goes to $SCREENSHOTS, plus phone-sized
// (390x844) renders of the dashboard and the user page.
//
// Run by scripts/browser-test.sh, which starts the server and passes BASE, API_KEY,
// ALICE_TOKEN, ADMIN_USER, ADMIN_PASSWORD and SCREENSHOTS.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/browser-test.sh)`);
  return v;
};
const BASE = env('BASE');
const API_KEY = env('API_KEY');
const ALICE_TOKEN = env('ALICE_TOKEN');
const ADMIN_USER = env('ADMIN_USER');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const SHOTS = env('SCREENSHOTS');

const api = (path, opts = {}) =>
  fetch(BASE + path, { ...opts, headers: { authorization: `Bearer ${opts.key ?? API_KEY}`, ...(opts.headers ?? {}) } });

// axe-core, the accessibility rules engine (labels, contrast, landmarks, names, ARIA),
// run on every page that gets a screenshot against WCAG 2.1 A and AA.
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const profile = mkdtempSync(join(tmpdir(), 'hallpass-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
  ],
  viewport: { width: 1280, height: 900 },
});
const problems = [];
const watch = (page) => {
  page.on('console', (m) => {
    // Chromium logs every 4xx document as an error; the refused sign-in is expected.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
};
const a11y = async (page, name) => {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  for (const v of result.violations) {
    const where = v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ');
    problems.push(`accessibility (${name}): ${v.id}: ${v.help} [${where}]`);
  }
};
const shot = async (page, name) => {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  console.log(`screenshot ${name}.png`);
  await a11y(page, name);
};
const step = (what) => console.log(`- ${what}`);

const page = context.pages()[0] ?? (await context.newPage());
watch(page);
try {

  step('an anonymous visit goes to the login page');
  const first = await page.goto(BASE + '/admin');
  assert.equal(new URL(page.url()).pathname, '/admin/login');
  assert.match(first.headers()['content-security-policy'], /default-src 'none'/);
  await shot(page, '01-login');

  step('a wrong password is refused on the page');
  await page.getByLabel('Username').fill(ADMIN_USER);
  await page.getByLabel('Password').fill('wrong-password-123');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();

  step('sign in with the keyboard');
  await page.getByLabel('Username').fill('');
  await page.getByLabel('Username').focus();
  await page.keyboard.type(ADMIN_USER);
  await page.keyboard.press('Tab');
  await page.keyboard.type(ADMIN_PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForURL(BASE + '/admin');
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === 'hallpass_admin');
  assert.ok(session, 'admin session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  step('dashboard');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await page.getByRole('img', { name: /Logins per day/ }).waitFor();
  const figures = await page.locator('.figures').innerText();
  assert.match(figures, /5\s*users/, figures);
  assert.match(figures, /1\s*failed logins/, figures);
  await shot(page, '02-dashboard');

  step('users list');
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await page.getByRole('heading', { name: 'Users', exact: true }).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 5);
  await shot(page, '03-users');

  step('search a user created through the API');
  await page.getByLabel('Username or email').fill('alice@example');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('heading', { name: 'Matching users in shop' }).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 1);
  await shot(page, '04-search');

  step('open the user and see the API login');
  await page.getByRole('link', { name: 'alice' }).click();
  await page.getByRole('heading', { name: 'alice', exact: true }).waitFor();
  const events = page.locator('#events tbody tr');
  const login = events.filter({ hasText: 'BrowserTest-UA/1.0' });
  await login.first().waitFor();
  const row = await login.first().innerText();
  assert.match(row, /password/);
  assert.match(row, /success/);
  assert.match(row, /203\.0\.113\.7/);
  assert.ok(await events.filter({ hasText: 'wrong_password' }).count() >= 1, 'the failed login is listed too');
  assert.equal(await page.locator('#sessions tbody tr').count(), 1);
  assert.equal((await api('/v1/session', { headers: { 'x-session-token': ALICE_TOKEN } })).status, 200);
  await shot(page, '05-user');

  step('phone-sized renders');
  const phone = await context.newPage();
  watch(phone);
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(BASE + '/admin');
  await shot(phone, '10-phone-dashboard');
  await phone.goto(page.url());
  await shot(phone, '11-phone-user');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the phone page scrolls sideways by ${overflow}px (tables should scroll inside their box)`);
  await phone.close();

  step('deactivate the user: the sessions are gone');
  await page.getByRole('button', { name: 'Deactivate user' }).click();
  await page.getByRole('status').filter({ hasText: 'deactivated' }).waitFor();
  await page.locator('#no-sessions').waitFor();
  assert.equal(await page.locator('#sessions').count(), 0);
  assert.equal((await api('/v1/session', { headers: { 'x-session-token': ALICE_TOKEN } })).status, 401);
  await shot(page, '06-user-deactivated');

  step('create an API key (shown once) and revoke it');
  await page.getByRole('link', { name: 'Scopes & keys' }).click();
  await page.getByRole('heading', { name: 'Scopes and API keys' }).waitFor();
  await page.getByLabel('Scope', { exact: true }).fill('shop');
  await page.getByLabel('Label (optional)').fill('made in the browser');
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = await page.locator('#new-key').inputValue();
  assert.match(secret, /^hpk_/);
  assert.equal((await api('/v1/users?limit=1', { key: secret })).status, 200, 'the new key works');
  await shot(page, '07-key-created');
  const keyRow = page.locator('#keys tbody tr').filter({ hasText: 'made in the browser' });
  await keyRow.getByRole('button', { name: /Revoke key/ }).click();
  await page.getByRole('status').filter({ hasText: 'revoked' }).waitFor();
  assert.match(await page.locator('#keys tbody tr').filter({ hasText: 'made in the browser' }).innerText(), /revoked/);
  assert.equal((await api('/v1/users?limit=1', { key: secret })).status, 401, 'the revoked key is refused');
  await shot(page, '08-keys');

  step('audit trail');
  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
  const audit = await page.locator('#audit').innerText();
  for (const action of ['admin_login', 'user_deactivate', 'key_create', 'key_revoke']) {
    assert.ok(audit.includes(action), `audit lists ${action}`);
  }
  assert.ok(!audit.includes(secret), 'the key is not in the audit trail');
  await shot(page, '09-audit');

  step('log out');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(BASE + '/admin/login');
  await page.goto(BASE + '/admin');
  assert.equal(new URL(page.url()).pathname, '/admin/login', 'signed out for good');

  assert.deepEqual(problems, [], 'no console errors, CSP violations or accessibility violations');
  console.log('browser test: every step passed');
} catch (e) {
  // What the page showed when a step failed, for the CI log and artifact.
  await page.screenshot({ path: join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(`failed at ${page.url()}:\n${(await page.locator('main').innerText().catch(() => '')).slice(0, 2000)}`);
  if (problems.length) console.error(problems.join('\n'));
  throw e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
