// The admin web page walked in Debian's Chromium through playwright-core, as an operator
// would: sign in (with the keyboard), the dashboard, search a user the API created, open
// it and see the login the API just made, deactivate the user and see the sessions gone
// (and the API refuse the token), create an API key and revoke it, the audit trail, log
// out. A full-page screenshot of every page goes to $SCREENSHOTS, plus phone-sized
// (390x844) renders of the dashboard and the user page, and a 375 px pass over the pages
// of issue #15 (cards instead of wide tables, confirmation pages, the audit trail); then a
// webhook endpoint added on the Webhooks page (its secret shown once) and the list.
//
// Run by scripts/browser-test.sh, which starts the server and passes BASE, API_KEY,
// ALICE_TOKEN, ADMIN_USER, ADMIN_PASSWORD and SCREENSHOTS.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
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
    // Chromium logs every 4xx document as an error; the refused sign-in (401), the refused
    // edit (400) and the unknown scope (404) are expected.
    if (m.type() === 'error' && !/status of (400|401|404)/.test(m.text())) problems.push(`console: ${m.text()}`);
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

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) computed here from the base32 key the page shows.
const totp = (base32, at = Date.now(), offset = 0) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30000) + offset));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[19] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
};

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
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'password', 'the password gets the focus');
  assert.equal(await page.getByLabel('Username').inputValue(), ADMIN_USER, 'the name is kept');

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
  // Outcomes in words in the figures of each day, number headers over their numbers.
  assert.match(await page.locator('details table').textContent(), /wrong password: 1/);
  const aligned = await page.locator('th.num').evaluateAll((ths) => ths.map((t) => getComputedStyle(t).textAlign));
  assert.ok(aligned.length >= 6 && aligned.every((a) => a === 'right'), `number headers align right: ${aligned}`);
  await shot(page, '02-dashboard');

  step('a scope without logins says so on its chart');
  await page.goto(BASE + '/admin?scope=quiet');
  await page.getByRole('img', { name: /scope quiet/ }).waitFor();
  assert.match(await page.locator('svg.chart').textContent(), /No logins yet in these 30 days/);
  await shot(page, '02b-dashboard-empty-chart');
  await page.goto(BASE + '/admin');

  step('users list');
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await page.getByRole('heading', { name: 'Users', exact: true }).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 5);
  await shot(page, '03-users');

  step('search a user created through the API: every scope at once, then one');
  await page.getByLabel('Username or email').fill('alice@example');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('heading', { name: 'Matching users in every scope' }).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 1);
  await page.getByLabel('Scope', { exact: true }).selectOption('shop');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('heading', { name: 'Matching users in shop' }).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 1);
  await shot(page, '04-search');

  step('an unknown scope is an honest 404 that keeps the navigation');
  const unknown = await page.goto(BASE + '/admin/users?scope=nosuch');
  assert.equal(unknown.status(), 404);
  await page.getByRole('heading', { name: 'Error 404' }).waitFor();
  assert.match(await page.getByRole('alert').innerText(), /no scope named “nosuch”/);
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  await shot(page, '04b-unknown-scope');
  await page.goBack();

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
  assert.ok(await events.filter({ hasText: 'wrong password' }).count() >= 1, 'the failed login is listed too, in words');
  assert.equal(await events.filter({ hasText: 'wrong_password' }).count(), 0, 'no outcome codes');
  assert.equal(await page.locator('#sessions tbody tr').count(), 1);
  // What an operator comes for first is above the edit forms; every time column says UTC.
  const y = async (id) => (await page.locator(id).boundingBox()).y;
  assert.ok((await y('#sessions-h')) < (await y('#edit-h')), 'sessions above the edit form');
  assert.ok((await y('#events-h')) < (await y('#edit-h')), 'login events above the edit form');
  const heads = await page.locator('#sessions thead th').allInnerTexts();
  for (const h of heads.slice(0, 3)) assert.match(h, /\(UTC\)/i, `session column "${h}" names UTC`);
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

  step('a refused edit keeps what was typed and says why in words');
  const userUrl = page.url();
  await page.getByLabel('Group').fill('editors');
  await page.getByLabel('Extra (a JSON object)').fill('{plan: pro}');
  await page.getByRole('button', { name: 'Save changes' }).click();
  const refusal = await page.getByRole('alert').innerText();
  assert.match(refusal, /not valid JSON near line 1, column 2/);
  assert.doesNotMatch(refusal, /key must be a string/, 'no parser jargon');
  assert.equal(await page.getByLabel('Group').inputValue(), 'editors', 'the other fields are kept');
  assert.equal(await page.getByLabel('Extra (a JSON object)').inputValue(), '{plan: pro}');
  assert.equal(await page.getByLabel('Extra (a JSON object)').getAttribute('aria-invalid'), 'true');
  await shot(page, '05b-user-refused-edit');
  await page.goto(userUrl);

  step('deactivate the user: asked first, then the sessions are gone');
  await page.getByRole('button', { name: 'Deactivate user' }).click();
  await page.getByRole('heading', { name: 'Deactivate alice?' }).waitFor();
  assert.match(await page.locator('main').innerText(), /one active session ends at once/);
  assert.equal((await api('/v1/session', { headers: { 'x-session-token': ALICE_TOKEN } })).status, 200, 'asking changed nothing');
  await shot(page, '05c-confirm-deactivate');
  await page.getByRole('button', { name: 'Deactivate the user' }).click();
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
  await page.waitForURL(/\/admin\/keys\?shown=/);
  assert.doesNotMatch(page.url(), /hpk_/, 'the secret is not in the URL');
  const secret = await page.locator('#new-key').inputValue();
  assert.match(secret, /^hpk_/);
  assert.equal((await api('/v1/users?limit=1', { key: secret })).status, 200, 'the new key works');
  const keyRow = page.locator('#keys tbody tr').filter({ hasText: 'made in the browser' });
  assert.match(await keyRow.locator('td[data-label="Status"]').innerText(), /^active$/, 'Status shows a status');
  const lastUsed = (label) =>
    page.locator('#keys tbody tr').filter({ hasText: label }).locator('td[data-label="Last used (UTC)"]').innerText();
  assert.match(await lastUsed('browser test'), /^\d{4}-\d\d-\d\d /, 'the key curl used has a last use');
  assert.equal(await lastUsed('no logins'), 'never');
  await shot(page, '07-key-created');

  step('reloading the page of the new key neither shows it again nor makes another');
  await page.reload();
  assert.equal(await page.locator('#new-key').count(), 0);
  await page.getByRole('status').filter({ hasText: 'not shown again' }).waitFor();
  assert.equal(await keyRow.count(), 1, 'still one key "made in the browser"');
  await shot(page, '07b-key-reloaded');

  step('revoking asks first, naming the key');
  await keyRow.getByRole('button', { name: /Revoke key/ }).click();
  await page.getByRole('heading', { name: /Revoke API key/ }).waitFor();
  const ask = await page.locator('main').innerText();
  assert.match(ask, /made in the browser/);
  assert.match(ask, /scope shop/);
  assert.equal((await api('/v1/users?limit=1', { key: secret })).status, 200, 'asking revoked nothing');
  await shot(page, '07c-confirm-revoke');
  await page.getByRole('button', { name: 'Revoke the key' }).click();
  await page.getByRole('status').filter({ hasText: 'revoked' }).waitFor();
  assert.match(await page.locator('#keys tbody tr').filter({ hasText: 'made in the browser' }).innerText(), /revoked/);
  assert.equal((await api('/v1/users?limit=1', { key: secret })).status, 401, 'the revoked key is refused');
  await shot(page, '08-keys');

  step('audit trail');
  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
  const audit = await page.locator('#audit').innerText();
  for (const words of [`${ADMIN_USER} deactivated alice (shop)`, `${ADMIN_USER} created API key`, `${ADMIN_USER} revoked API key`]) {
    assert.ok(audit.includes(words), `audit says "${words}": ${audit}`);
  }
  for (const code of ['user_deactivate', 'key_create', 'key_revoke', '{']) assert.ok(!audit.includes(code), `no code ${code}`);
  assert.ok(!audit.includes(`${ADMIN_USER} signed in`), 'sign-ins are apart by default');
  assert.ok(!audit.includes(secret), 'the key is not in the audit trail');
  await shot(page, '09-audit');

  step('audit filters: sign-ins on request, by action, and the target linked');
  await page.getByLabel('Include sign-ins and sign-outs').check();
  await page.getByRole('button', { name: 'Filter' }).click();
  assert.ok((await page.locator('#audit').innerText()).includes(`${ADMIN_USER} signed in`));
  await page.getByLabel('Include sign-ins and sign-outs').uncheck();
  await page.getByLabel('Action', { exact: true }).selectOption({ label: 'deactivated a user' });
  await page.getByLabel('Scope', { exact: true }).selectOption('shop');
  await page.getByRole('button', { name: 'Filter' }).click();
  assert.equal(await page.locator('#audit tbody tr').count(), 1);
  await shot(page, '09b-audit-filtered');
  await page.locator('#audit').getByRole('link', { name: 'alice' }).click();
  await page.getByRole('heading', { name: 'alice', exact: true }).waitFor();

  step('phone (375 px): cards instead of wide tables, nothing wider than the screen');
  const narrow = await context.newPage();
  watch(narrow);
  await narrow.setViewportSize({ width: 375, height: 812 });
  const fits = async (name) => {
    const over = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(over <= 1, `${name}: the page scrolls sideways by ${over}px`);
    const wide = await narrow.evaluate(() =>
      [...document.querySelectorAll('main *')]
        // Column heads of a card table are clipped away (read by screen readers only).
        .filter((e) => !e.closest('table.cards thead, .visually-hidden'))
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}`),
    );
    assert.deepEqual(wide, [], `${name}: elements reach past the screen`);
  };
  await narrow.goto(BASE + '/admin/keys');
  const active = narrow.locator('#keys tbody tr').filter({ hasText: 'browser test' });
  const box = await active.boundingBox();
  assert.ok(box.height < 260, `a key card is ${box.height}px tall`);
  const revoke = await active.getByRole('button', { name: /Revoke key/ }).boundingBox();
  assert.ok(revoke.x >= 0 && revoke.x + revoke.width <= 375, 'the Revoke button is on the screen');
  await fits('keys');
  await shot(narrow, '12-phone-keys');
  await active.getByRole('button', { name: /Revoke key/ }).click();
  await narrow.getByRole('heading', { name: /Revoke API key/ }).waitFor();
  assert.match(await narrow.locator('main').innerText(), /only active key of scope shop/);
  await fits('confirm');
  await shot(narrow, '13-phone-confirm');
  await narrow.getByRole('link', { name: 'Cancel' }).click();
  await narrow.waitForURL(BASE + '/admin/keys');
  assert.equal((await api('/v1/users?limit=1')).status, 200, 'cancel revoked nothing');
  await narrow.goto(BASE + '/admin/audit?signins=on');
  await fits('audit');
  await shot(narrow, '14-phone-audit');
  await narrow.goto(page.url());
  await fits('user');
  await shot(narrow, '15-phone-user');
  await narrow.goto(BASE + '/admin/users');
  await fits('users');
  await shot(narrow, '16-phone-users');
  await narrow.goto(BASE + '/admin');
  const clipped = await narrow.evaluate(() => {
    const svg = document.querySelector('svg.chart').getBoundingClientRect();
    return [...document.querySelectorAll('svg.chart text')]
      .map((t) => t.getBoundingClientRect())
      .filter((r) => r.left < svg.left - 0.5 || r.right > svg.right + 0.5 || r.top < svg.top - 0.5 || r.bottom > svg.bottom + 0.5).length;
  });
  assert.equal(clipped, 0, `${clipped} chart labels are clipped on a phone`);
  await fits('dashboard');
  await shot(narrow, '17-phone-dashboard');
  await narrow.goto(BASE + '/admin?scope=quiet');
  await shot(narrow, '18-phone-empty-chart');
  await narrow.close();

  step('add a webhook endpoint: its secret shown once, its delivery log');
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
  await page.getByLabel('Scope').fill('shop');
  await page.getByLabel('URL').fill('http://127.0.0.1:9/hook');
  await page.getByLabel('Description (optional)').fill('browser test');
  await page.getByLabel('user.created').check();
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await page.getByRole('heading', { name: 'Signing secret' }).waitFor();
  assert.match(await page.locator('#new-secret').inputValue(), /^whsec_/);
  await shot(page, '20-webhook');
  await page.getByRole('link', { name: 'Webhooks', exact: true }).first().click();
  await page.locator('#webhooks').getByRole('link', { name: /127\.0\.0\.1:9/ }).waitFor();
  await shot(page, '21-webhooks');

  step('log out');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(BASE + '/admin/login?notice=signed-out');
  await page.getByRole('status').filter({ hasText: 'You are signed out.' }).waitFor();
  await shot(page, '19-signed-out');
  await page.goto(BASE + '/admin');
  assert.equal(new URL(page.url()).pathname, '/admin/login', 'signed out for good');

  // Passkeys are bound to a domain name, so this part opens the page at localhost (an IP
  // address can hold none), with Chromium's virtual authenticator standing in for a
  // security key or a phone.
  step("the admin's own passkey: added on the account page with a virtual authenticator");
  const LOCAL = BASE.replace('127.0.0.1', 'localhost');
  const own = await context.newPage();
  watch(own);
  const cdp = await context.newCDPSession(own);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  const signIn = async () => {
    await own.goto(LOCAL + '/admin/login');
    await own.getByLabel('Username').fill(ADMIN_USER);
    await own.getByLabel('Password').fill(ADMIN_PASSWORD);
    await own.getByRole('button', { name: 'Sign in', exact: true }).click();
  };
  const logOut = async () => {
    await own.getByRole('button', { name: 'Log out' }).click();
    await own.waitForURL(LOCAL + '/admin/login?notice=signed-out');
  };
  const loginPage = await own.goto(LOCAL + '/admin/login');
  assert.match(loginPage.headers()['content-security-policy'], /script-src 'self'/, 'the passkey script may run');
  assert.doesNotMatch(loginPage.headers()['content-security-policy'], /unsafe-inline/);
  await signIn();
  await own.waitForURL(LOCAL + '/admin');
  await own.getByRole('link', { name: ADMIN_USER }).click();
  await own.getByRole('heading', { name: 'Your account' }).waitFor();
  await own.locator('#no-passkeys').waitFor();
  await shot(own, '20-account');
  await own.getByLabel('Name of the new passkey').fill('virtual key');
  await own.getByRole('button', { name: 'Add a passkey' }).click();
  await own.getByRole('status').filter({ hasText: 'Passkey added' }).waitFor();
  assert.match(await own.locator('#passkeys').innerText(), /virtual key/);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'the authenticator holds one credential');
  assert.equal(credentials[0].isResidentCredential, true, 'discoverable, so it signs in without a username');
  await shot(own, '21-account-passkey');

  step('an authenticator app: the code computed here from the key the page shows once');
  await own.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await own.getByRole('heading', { name: 'Set up an authenticator app' }).waitFor();
  await own.getByRole('img', { name: /QR code/ }).waitFor();
  const key = (await own.locator('#totp-secret').innerText()).trim();
  assert.match(key, /^[A-Z2-7]{16,}=*$/);
  await shot(own, '22-totp-setup');
  await own.getByLabel('The code the app shows now').fill(totp(key));
  await own.getByRole('button', { name: 'Turn on' }).click();
  await own.getByRole('heading', { name: 'Your authenticator app is on' }).waitFor();
  const codes = await own.locator('#recovery-codes li').allInnerTexts();
  assert.equal(codes.length, 10, 'ten recovery codes');
  await shot(own, '23-recovery-codes');
  await own.goto(LOCAL + '/admin/account');
  assert.match(await own.locator('#totp-state').innerText(), /^On/);
  assert.ok(!(await own.content()).includes(key), 'the key is not shown again');

  step('signed out, the passkey alone signs the admin in');
  await logOut();
  await own.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await own.waitForURL(LOCAL + '/admin');
  await own.getByRole('heading', { name: 'Dashboard' }).waitFor();

  step('the password, then the passkey as the second factor');
  await logOut();
  await signIn();
  await own.getByRole('heading', { name: 'Second factor' }).waitFor();
  assert.equal(new URL(own.url()).pathname, '/admin/login', 'no session after the password alone');
  assert.equal((await context.cookies(LOCAL)).filter((c) => c.name === 'hallpass_admin').length, 0);
  await shot(own, '24-second-factor');
  await own.getByRole('button', { name: 'Use your passkey' }).click();
  await own.waitForURL(LOCAL + '/admin');

  step('the password, a wrong code refused, then a recovery code');
  await logOut();
  await signIn();
  await own.getByRole('heading', { name: 'Second factor' }).waitFor();
  const near = [-1, 0, 1].map((o) => totp(key, Date.now(), o));
  const wrong = ['111111', '222222', '333333', '444444'].find((c) => !near.includes(c));
  await own.getByLabel('Code from your authenticator app').fill(wrong);
  await own.getByRole('button', { name: 'Verify' }).click();
  await own.getByRole('alert').filter({ hasText: 'did not match' }).waitFor();
  await own.getByText('Use a recovery code').click();
  await own.getByLabel('Recovery code').fill(codes[0]);
  await own.getByRole('button', { name: 'Use recovery code' }).click();
  await own.waitForURL(LOCAL + '/admin');

  step('the audit trail says how the admin signed in and what changed');
  await own.goto(LOCAL + '/admin/audit?signins=on');
  const trail = await own.locator('#audit').innerText();
  for (const words of [
    `${ADMIN_USER} added passkey “virtual key”`, `${ADMIN_USER} turned on their authenticator app`,
    `${ADMIN_USER} signed in with a passkey`, `${ADMIN_USER} signed in with password and passkey`,
    `${ADMIN_USER} signed in with a recovery code`,
  ]) {
    assert.ok(trail.includes(words), `audit says "${words}": ${trail}`);
  }
  for (const c of codes) assert.ok(!trail.includes(c), 'no recovery code in the audit trail');

  step('removing the passkey asks first');
  await own.goto(LOCAL + '/admin/account');
  await own.getByRole('button', { name: 'Remove passkey virtual key' }).click();
  await own.getByRole('heading', { name: /Remove the passkey/ }).waitFor();
  await own.getByRole('button', { name: 'Remove passkey' }).click();
  await own.getByRole('status').filter({ hasText: 'Passkey removed' }).waitFor();
  await own.locator('#no-passkeys').waitFor();
  await shot(own, '25-account-after');
  await own.close();

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
