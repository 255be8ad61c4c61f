// The browser side of Orchard, driven in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core): hosted authentication
// (GET/POST /v3/connect/auth, the iCloud login page against the test env's
// Dovecot) followed by the SDK's code exchange, refresh, token info and
// revocation; the login page's refusals (wrong password, unregistered
// redirect URI, missing CSRF token); and the operator dashboard at
// /dashboard (admin and API-key sign-in, connectors, redirect URIs,
// webhooks, grants with re-authentication and delete, API keys).
//
// The application's redirect target is a node:http server on 127.0.0.1
// that records every request and answers 200 "done". Screenshots go to
// ORCHARD_SCREENSHOT_DIR, default test/sdk/screenshots/ (gitignored).
//
// Users: alice signs in through the hosted page (app "browser-hosted"),
// bob is the one whose form loses its CSRF token (no grant may appear),
// carol is connected with custom auth to the dashboard's app
// ("browser-dash"). The one message delivered to alice carries the run tag
// and is deleted in `after`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Nylas, { NylasOAuthError } from 'nylas';
import { chromium } from 'playwright-core';
import {
  startOrchard, stopAndCheck, client, testEnv, allPasswords, expectApiError, smtpInject, buildMessage, runTag,
  waitFor, removeTagged, assertNoSecrets, BAD_PASSWORDS, MAIL_ENV,
} from '../harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = testEnv();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';
const TAG = runTag('brws');
const ADMIN_PASSWORD = `adm-${crypto.randomBytes(12).toString('hex')}`;
const SHOTS = process.env.ORCHARD_SCREENSHOT_DIR || path.resolve(here, '..', 'screenshots');
const CHROMIUM = process.env.ORCHARD_CHROMIUM || '/usr/bin/chromium';
const REFUSED = 'Apple refused this password — use an app-specific password, not your Apple ID password';

let srv;
let hosted; // {name, appId, apiKey}: the app alice signs in to
let dash; // the app the dashboard test operates
let nylas; // client of `hosted`
let browser;
let cb; // the application's redirect target
let redirectUri;
const servers = []; // receivers to close in `after`
const secrets = [ADMIN_PASSWORD]; // also none of these may appear in the server's log

// ---------------------------------------------------------------------------
// Helpers

/**
 * An HTTP server on 127.0.0.1 that records every request ({method, path,
 * query, headers, body}) and answers with handler(req, res, url, body), or
 * 200 "done".
 */
async function startReceiver(handler) {
  const hits = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://127.0.0.1');
      const body = Buffer.concat(chunks);
      hits.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body, at: Date.now() });
      if (handler) handler(req, res, url, body);
      else res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('done');
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const r = {
    url: `http://127.0.0.1:${server.address().port}`,
    hits,
    /** Requests other than the browser's own /favicon.ico. */
    requests: () => hits.filter((h) => h.path !== '/favicon.ico'),
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
  servers.push(r);
  return r;
}

/** A fresh browser context (own cookies) and page; closed by the caller. */
async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  const page = await context.newPage();
  return { context, page };
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

/** The hosted-auth URL for user (icloud, PKCE S256, offline) and its verifier. */
function authURL({ user = ALICE, state = crypto.randomBytes(12).toString('base64url'), redirect = redirectUri, clientId = hosted.appId } = {}) {
  const { url, secret, secretHash } = nylas.auth.urlForOAuth2PKCE({
    clientId, redirectUri: redirect, provider: 'icloud', loginHint: user, state, accessType: 'offline',
  });
  return { url, secret, secretHash, state };
}

/**
 * Opens the login page for user, types password and signs in; waits until
 * the browser arrives at the redirect target. Returns {code, state,
 * secret, hit} (hit: the request the target received).
 */
async function signIn(page, { user = ALICE, password = env.users[user] } = {}) {
  const a = authURL({ user });
  const resp = await page.goto(a.url);
  assert.equal(resp.status(), 200, `GET ${a.url}: ${await resp.text()}`);
  const seen = cb.requests().length;
  await page.getByLabel('App-specific password').fill(password);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${cb.url}/`)),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const hits = cb.requests().slice(seen);
  assert.equal(hits.length, 1, `one request at the redirect target, got ${JSON.stringify(hits.map((h) => h.path))}`);
  const [hit] = hits;
  secrets.push(hit.query.code);
  return { code: hit.query.code, state: a.state, secret: a.secret, hit };
}

/** Awaits promise, which must reject with NylasOAuthError `error`; returns it. */
async function expectOAuthError(promise, { error, status = 400, description }, label) {
  let err;
  try {
    const res = await promise;
    assert.fail(`${label}: expected NylasOAuthError ${error}, got success: ${JSON.stringify(res).slice(0, 300)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.ok(err instanceof NylasOAuthError, `${label}: expected NylasOAuthError, got ${err?.constructor?.name}: ${err?.message}`);
  const desc = `${label}: [${err.statusCode} ${err.error}] ${err.errorDescription}`;
  assert.equal(err.error, error, `${desc}: error`);
  assert.equal(err.statusCode, status, `${desc}: statusCode`);
  assert.equal(err.errorCode, status, `${desc}: errorCode`);
  assert.ok(typeof err.errorDescription === 'string' && err.errorDescription.length > 10, `${desc}: errorDescription must say why`);
  assert.equal(err.message, err.errorDescription, `${desc}: message`);
  if (description) assert.match(err.errorDescription, description, `${desc}: errorDescription`);
  return err;
}

/** The grants of the hosted app whose email is user. */
async function grantsOf(user, c = nylas) {
  return (await c.grants.list({ queryParams: { limit: 200 } })).data.filter((g) => g.email === user);
}

// ---------------------------------------------------------------------------

before(async () => {
  srv = await startOrchard({
    name: 'browser', apps: ['browser-hosted', 'browser-dash'],
    env: { ...MAIL_ENV, ORCHARD_ADMIN_PASSWORD: ADMIN_PASSWORD },
  });
  [hosted, dash] = srv.apps;
  nylas = client(srv, hosted.apiKey);
  cb = await startReceiver();
  redirectUri = `${cb.url}/callback`;
  await nylas.applications.redirectUris.create({ requestBody: { url: redirectUri, platform: 'web' } });
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => s.close()));
  await removeTagged(ALICE, TAG);
  if (!srv) return;
  await stopAndCheck(srv, [...allPasswords(), ...secrets.filter(Boolean)]);
  if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
});

// ---------------------------------------------------------------------------
// 1. The whole hosted flow

test('hosted auth: iCloud sign-in in the browser → code → tokens that read alice\'s mail; refresh; revoke', async () => {
  const { context, page } = await newPage();
  try {
    const a = authURL({ user: ALICE });
    const resp = await page.goto(a.url);
    assert.equal(resp.status(), 200);
    assert.equal(new URL(page.url()).origin, srv.url, 'the login page is Orchard\'s');
    await page.getByRole('heading', { name: 'Sign in with iCloud' }).waitFor();
    assert.equal(await page.title(), 'Sign in with iCloud');
    const email = page.getByLabel('iCloud email address', { exact: true });
    assert.equal(await email.inputValue(), ALICE, 'the address is pre-filled from login_hint');
    const password = page.getByLabel('App-specific password');
    assert.equal(await password.getAttribute('type'), 'password');
    assert.equal(await password.inputValue(), '');
    // The stylesheet loaded and applies (the card has its border and background).
    const card = await page.locator('.card').evaluate((el) => {
      const s = getComputedStyle(el);
      return { bg: s.backgroundColor, border: s.borderTopStyle };
    });
    assert.deepEqual(card, { bg: 'rgb(255, 255, 255)', border: 'solid' }, 'style.css applies to the login card');

    await password.fill(env.users[ALICE]);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`)), password.press('Enter')]);
    assert.equal(await page.locator('body').innerText(), 'done');

    const hits = cb.requests();
    assert.equal(hits.length, 1, `one request at the redirect target: ${JSON.stringify(hits.map((h) => h.path))}`);
    const [hit] = hits;
    assert.equal(hit.method, 'GET');
    assert.equal(hit.path, '/callback');
    assert.equal(hit.query.state, a.state, 'state comes back unchanged');
    assert.match(hit.query.code ?? '', /^\S{20,}$/, 'a code');
    assert.deepEqual(Object.keys(hit.query).sort(), ['code', 'state']);
    assert.equal(hit.headers.referer, undefined, 'no Referer leaks the login page to the application');
    secrets.push(hit.query.code);

    const tok = await nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri, codeVerifier: a.secret, code: hit.query.code });
    secrets.push(tok.accessToken, tok.refreshToken);
    assert.match(tok.grantId ?? '', /\S/, 'grantId');
    assert.equal(tok.email, ALICE);
    assert.match(tok.accessToken ?? '', /^\S{20,}$/, 'accessToken');
    assert.match(tok.refreshToken ?? '', /^\S{20,}$/, 'access_type=offline gives a refreshToken');
    assert.equal(tok.tokenType, 'Bearer');
    assert.ok(tok.expiresIn > 60, `expiresIn ${tok.expiresIn}`);
    assert.equal(tok.provider, 'icloud');

    const grant = (await nylas.grants.find({ grantId: tok.grantId })).data;
    assert.equal(grant.email, ALICE);
    assert.equal(grant.provider, 'icloud');
    assert.equal(grant.grantStatus, 'valid');
    assert.match(grant.userAgent ?? '', /Chrome\//, 'the grant records the browser\'s user agent');

    // The access token reads alice's mailbox as identifier "me".
    const subject = `${TAG} hosted sign-in`;
    await smtpInject({
      rcpts: [ALICE],
      data: buildMessage({ from: 'sdk-tests@example.org', to: ALICE, subject, messageId: `<${TAG}.1@sdk.example.org>`, text: 'for the access token' }),
    });
    const me = new Nylas({ apiKey: tok.accessToken, apiUri: srv.url, timeout: 30 });
    let last;
    const found = await waitFor(async () => {
      last = await me.messages.list({ identifier: 'me', queryParams: { subject: TAG } });
      return last.data.length > 0 && last.data;
    }, { timeout: 30000, interval: 250, what: () => `the message in alice's INBOX through the access token; listed ${JSON.stringify(last?.data.map((m) => m.subject))}` });
    assert.equal(found.length, 1);
    assert.equal(found[0].subject, subject);
    assert.equal(found[0].grantId, tok.grantId, 'the message is of the token\'s grant');

    const info = (await nylas.auth.accessTokenInfo(tok.accessToken)).data;
    assert.equal(info.sub, tok.grantId, 'tokeninfo sub');
    assert.equal(info.email, ALICE);
    assert.equal(info.aud, hosted.appId);
    assert.ok(info.exp > info.iat, `exp ${info.exp} > iat ${info.iat}`);

    const refreshed = await nylas.auth.refreshAccessToken({ clientId: hosted.appId, redirectUri, refreshToken: tok.refreshToken });
    secrets.push(refreshed.accessToken);
    assert.notEqual(refreshed.accessToken, tok.accessToken, 'a new access token');
    assert.equal(refreshed.grantId, tok.grantId);
    const me2 = new Nylas({ apiKey: refreshed.accessToken, apiUri: srv.url, timeout: 30 });
    assert.equal((await me2.messages.list({ identifier: 'me', queryParams: { subject: TAG } })).data.length, 1, 'the refreshed token works');

    assert.equal(await nylas.auth.revoke(tok.accessToken), true);
    await expectApiError(me.messages.list({ identifier: 'me' }), { status: 401 }, 'the revoked access token');
    await expectApiError(me2.messages.list({ identifier: 'me' }), { status: 401 }, 'the access token refreshed from the same family');
    await expectOAuthError(nylas.auth.refreshAccessToken({ clientId: hosted.appId, redirectUri, refreshToken: tok.refreshToken }),
      { error: 'invalid_grant' }, 'refresh with the revoked family\'s refresh token');
    // The SDK's error class for tokeninfo is checked in the last test of this file.
    const infoErr = await nylas.auth.accessTokenInfo(tok.accessToken).then(() => null, (e) => e);
    assert.equal(infoErr?.statusCode, 401, `tokeninfo of the revoked token: ${infoErr}`);
    // Revoking a token is not deleting the grant.
    assert.equal((await nylas.grants.find({ grantId: tok.grantId })).data.grantStatus, 'valid', 'the grant stays');
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------
// 2. Wrong password

test('hosted auth: a refused password shows the app-password hint, keeps the address, empties the password; then the right one works', async () => {
  const grantsBefore = await grantsOf(ALICE);
  const { context, page } = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  try {
    const a = authURL({ user: ALICE });
    await page.goto(a.url);
    const email = page.getByLabel('iCloud email address', { exact: true });
    const password = page.getByLabel('App-specific password');
    await shot(page, 'login-phone.png');
    // Readable on a phone: nothing wider than the screen, a 16 px font for inputs (no zoom on focus).
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      inputFont: getComputedStyle(document.querySelector('#password')).fontSize,
    }));
    assert.ok(layout.scrollWidth <= 390, `the page is ${layout.scrollWidth} px wide on a 390 px phone`);
    assert.equal(layout.inputFont, '16px');

    await password.fill(BAD_PASSWORDS.icloud);
    const seen = cb.requests().length;
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${srv.url}/v3/connect/auth`)),
      page.getByRole('button', { name: 'Sign in' }).tap(),
    ]);
    assert.equal(resp.status(), 401, 'a refused password answers 401');
    await page.waitForLoadState();
    const alert = page.locator('#login-error');
    await alert.waitFor();
    assert.equal(await alert.getAttribute('role'), 'alert');
    assert.equal((await alert.innerText()).trim().replace(/\.$/, ''), REFUSED);
    assert.equal(await page.getByRole('alert').count(), 1);
    assert.equal(new URL(page.url()).origin, srv.url, 'the browser stays on Orchard');
    assert.equal(await email.inputValue(), ALICE, 'the address is kept');
    assert.equal(await password.inputValue(), '', 'the password is not put back');
    assert.ok(!(await page.content()).includes(BAD_PASSWORDS.icloud), 'the refused password is nowhere in the page');
    assert.equal(cb.requests().length, seen, 'nothing reached the redirect target');
    await shot(page, 'login-refused.png');
    // A wrong password for alice's address does not touch her grant.
    assert.deepEqual((await grantsOf(ALICE)).map((g) => [g.id, g.grantStatus]), grantsBefore.map((g) => [g.id, g.grantStatus]),
      'alice\'s grants are unchanged after a refused sign-in');

    // The refused page carries the request on: the right password now ends at the target with the same state.
    await password.fill(env.users[ALICE]);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`)), password.press('Enter')]);
    const hits = cb.requests().slice(seen);
    assert.equal(hits.length, 1);
    assert.equal(hits[0].query.state, a.state, 'state survives the refusal');
    secrets.push(hits[0].query.code);
    const tok = await nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri, codeVerifier: a.secret, code: hits[0].query.code });
    secrets.push(tok.accessToken, tok.refreshToken);
    assert.equal(tok.email, ALICE, 'the PKCE challenge survives the refusal too');
    assert.equal(tok.grantId, grantsBefore[0]?.id ?? tok.grantId, 'the same grant as before');
  } finally {
    await context.close();
  }
});

test('hosted auth: the clean login page, desktop (screenshot)', async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(authURL({ user: ALICE }).url);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // The steps link to Apple and open in a new tab without an opener.
    const apple = page.getByRole('link', { name: 'appleid.apple.com' });
    assert.equal(await apple.getAttribute('href'), 'https://appleid.apple.com/account/manage');
    assert.match(await apple.getAttribute('rel'), /noopener/);
    await shot(page, 'login.png');
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------
// 3. Unregistered redirect URI

test('hosted auth: an unregistered redirect URI or unknown client ends on Orchard\'s error page, never at the target', async () => {
  const stranger = await startReceiver();
  const { context, page } = await newPage();
  try {
    const cases = [
      ['unregistered host', authURL({ redirect: `${stranger.url}/callback` }).url],
      ['registered URI with another path', authURL({ redirect: `${redirectUri}/../evil` }).url],
      ['registered URI with a query added', authURL({ redirect: `${redirectUri}?next=${encodeURIComponent(stranger.url)}` }).url],
      ['unknown client_id', authURL({ clientId: 'no-such-application', redirect: `${stranger.url}/callback` }).url],
    ];
    for (const [what, url] of cases) {
      const resp = await page.goto(url);
      assert.equal(resp.status(), 400, `${what}: status`);
      assert.equal(new URL(page.url()).origin, srv.url, `${what}: the browser stays on Orchard's origin`);
      await page.getByRole('heading', { name: 'This sign-in link is not valid' }).waitFor();
      assert.equal(await page.getByLabel('App-specific password').count(), 0, `${what}: no login form`);
      assert.equal(await page.locator(`a[href^="${stranger.url}"]`).count(), 0, `${what}: no link to the target`);
      if (what === 'unregistered host') await shot(page, 'login-invalid-link.png');
    }

    // A form whose redirect_uri was changed after the page was served is refused too, even with the right password.
    const before = (await grantsOf(BOB)).length;
    await page.goto(authURL({ user: BOB }).url);
    await page.locator('input[name="redirect_uri"]').evaluate((el, v) => (el.value = v), `${stranger.url}/callback`);
    await page.getByLabel('App-specific password').fill(env.users[BOB]);
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    assert.equal(resp.status(), 400, 'tampered redirect_uri: status');
    await page.getByRole('heading', { name: 'This sign-in link is not valid' }).waitFor();
    assert.equal(new URL(page.url()).origin, srv.url);
    assert.equal((await grantsOf(BOB)).length, before, 'no grant for bob from a tampered form');

    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(stranger.hits.map((h) => `${h.method} ${h.path}`), [], 'the would-be target received nothing');
    assert.equal(cb.requests().filter((h) => h.path !== '/callback').length, 0, 'nothing went to other paths of the registered target');
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------
// 4. Codes are single use and bound to the verifier; the form needs its CSRF token

test('code exchange: a reused code and a wrong verifier are invalid_grant (NylasOAuthError)', async () => {
  const { context, page } = await newPage();
  try {
    const first = await signIn(page);
    const tok = await nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri, codeVerifier: first.secret, code: first.code });
    secrets.push(tok.accessToken, tok.refreshToken);
    assert.equal(tok.email, ALICE);
    await expectOAuthError(nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri, codeVerifier: first.secret, code: first.code }),
      { error: 'invalid_grant', description: /used|unknown|expired/ }, 'the same code again');

    const second = await signIn(page);
    await expectOAuthError(nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri, codeVerifier: first.secret, code: second.code }),
      { error: 'invalid_grant', description: /verifier/ }, 'the verifier of another sign-in');
    // A code tried with a wrong verifier is spent.
    await expectOAuthError(nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri, codeVerifier: second.secret, code: second.code }),
      { error: 'invalid_grant' }, 'the right verifier after a wrong one');

    const third = await signIn(page);
    await expectOAuthError(nylas.auth.exchangeCodeForToken({ clientId: hosted.appId, redirectUri: `${redirectUri}x`, codeVerifier: third.secret, code: third.code }),
      { error: 'invalid_grant', description: /redirect_uri/ }, 'another redirect_uri');
  } finally {
    await context.close();
  }
});

test('hosted auth: the login form without its CSRF token is 403 "This form has expired" and connects nothing', async () => {
  assert.deepEqual(await grantsOf(BOB), [], 'bob has no grant yet');
  const { context, page } = await newPage();
  try {
    // In the browser: the hidden field removed before submitting the right password.
    await page.goto(authURL({ user: BOB }).url);
    await page.locator('input[name="csrf_token"]').evaluate((el) => el.remove());
    await page.getByLabel('App-specific password').fill(env.users[BOB]);
    const seen = cb.requests().length;
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    assert.equal(resp.status(), 403);
    await page.getByRole('heading', { name: 'This form has expired' }).waitFor();
    assert.equal(new URL(page.url()).origin, srv.url);
    assert.equal(cb.requests().length, seen, 'nothing reached the redirect target');
    await shot(page, 'login-expired.png');

    // From Node: the cookie without the token, and the token without its cookie.
    const a = authURL({ user: BOB });
    const r = await fetch(a.url);
    assert.equal(r.status, 200);
    const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0];
    assert.match(cookie, /^orchard_csrf=/, 'the login page sets the CSRF cookie');
    const html = await r.text();
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(token, 'the form carries a token');
    const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&')]));
    const post = (body, headers = {}) => fetch(`${srv.url}/v3/connect/auth`, {
      method: 'POST', redirect: 'manual', body: new URLSearchParams(body),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    });
    const form = { ...fields, email: BOB, password: env.users[BOB] };
    const { csrf_token: _, ...noToken } = form;
    for (const [what, res] of [
      ['no token', await post(noToken, { Cookie: cookie })],
      ['no cookie', await post(form)],
      ['a token of another cookie', await post(form, { Cookie: 'orchard_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })],
    ]) {
      const text = await res.text();
      assert.equal(res.status, 403, `${what}: status; ${text.slice(0, 300)}`);
      assert.equal(res.headers.get('location'), null, `${what}: no redirect`);
      assert.match(text, /<h1>This form has expired<\/h1>/, `${what}: page`);
    }
    // The same form with its token and cookie is accepted: the 403s were the CSRF check.
    const ok = await post(form, { Cookie: cookie });
    assert.equal(ok.status, 303, `with token and cookie: ${(await ok.text()).slice(0, 300)}`);
    const loc = new URL(ok.headers.get('location'));
    assert.equal(`${loc.origin}${loc.pathname}`, redirectUri);
    assert.equal(loc.searchParams.get('state'), a.state);
    secrets.push(loc.searchParams.get('code'));
    const grants = await grantsOf(BOB);
    assert.equal(grants.length, 1, 'exactly one grant for bob: only the accepted form made one');
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------
// 5. The operator dashboard

/** Skips t when /dashboard is not served; true when it is. */
async function dashboardMounted(t) {
  const probe = await fetch(`${srv.url}/dashboard`, { redirect: 'manual' });
  await probe.arrayBuffer();
  if (probe.status === 404) {
    t.skip('dashboard not mounted: /dashboard answered 404');
    return false;
  }
  return true;
}

/** Signs page in to the dashboard with the admin password or an API key. */
async function dashboardSignIn(page, { password, apiKey }) {
  await page.goto(`${srv.url}/dashboard/login`);
  if (password) await page.getByLabel('Admin password').fill(password);
  if (apiKey) await page.getByLabel('API key', { exact: true }).fill(apiKey);
  await Promise.all([page.waitForURL((u) => u.pathname === '/dashboard'), page.getByRole('button', { name: 'Sign in' }).click()]);
}

const appPath = (app, ...segs) => `/dashboard/apps/${[app.appId, ...segs].map(encodeURIComponent).join('/')}`;

test('dashboard: admin sign-in; connectors, redirect URIs, webhooks (secret once), grants with re-authentication and delete', async (t) => {
  if (!(await dashboardMounted(t))) return;
  const dnylas = client(srv, dash.apiKey);
  const hookPosts = [];
  const receiver = await startReceiver((req, res, url, body) => {
    if (req.method === 'GET' && url.searchParams.has('challenge')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(url.searchParams.get('challenge'));
      return;
    }
    if (req.method === 'POST') hookPosts.push({ headers: req.headers, body, json: JSON.parse(body) });
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('done');
  });
  const hookURL = `${receiver.url}/${TAG}/hook`;
  const dashRedirect = `${receiver.url}/${TAG}/dash-callback`;
  const { context, page } = await newPage();
  const status = async (action) => {
    const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), action()]);
    await page.waitForLoadState();
    return resp.status();
  };
  try {
    // Signed out: /dashboard sends the browser to the sign-in page.
    await page.goto(`${srv.url}/dashboard`);
    assert.equal(new URL(page.url()).pathname, '/dashboard/login');

    // A wrong admin password: an error, no session.
    await page.getByLabel('Admin password').fill(`wrong-${ADMIN_PASSWORD}`);
    assert.equal(await status(() => page.getByRole('button', { name: 'Sign in' }).click()), 401);
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /wrong/i);
    await shot(page, 'dashboard-login-refused.png');
    assert.equal(await page.getByLabel('Admin password').inputValue(), '', 'the password is not put back');
    assert.deepEqual((await context.cookies()).map((c) => c.name).filter((n) => n !== 'orchard_csrf'), [], 'no session cookie');
    await page.goto(`${srv.url}${appPath(dash, 'connectors')}`);
    assert.equal(new URL(page.url()).pathname, '/dashboard/login', 'still signed out');

    // The admin password: every application is listed.
    await dashboardSignIn(page, { password: ADMIN_PASSWORD });
    await page.getByText('Signed in as administrator').waitFor();
    assert.equal(await page.getByRole('link', { name: 'browser-hosted', exact: true }).count(), 1, 'the other application is listed too');
    await Promise.all([page.waitForURL((u) => u.pathname === appPath(dash)), page.getByRole('link', { name: 'browser-dash', exact: true }).click()]);
    const tab = (name) => page.getByRole('navigation').getByRole('link', { name, exact: true });
    const open = async (name, suffix) => {
      await Promise.all([page.waitForURL((u) => u.pathname === appPath(dash, suffix)), tab(name).click()]);
      assert.equal(await tab(name).getAttribute('aria-current'), 'page', `tab ${name} is marked current`);
    };
    for (const name of ['API keys', 'Connectors', 'Redirect URIs', 'Grants', 'Webhooks']) assert.equal(await tab(name).count(), 1, `tab ${name}`);

    // Connectors: add iCloud.
    await open('Connectors', 'connectors');
    await Promise.all([page.waitForURL((u) => u.pathname === appPath(dash, 'connectors')), page.getByRole('button', { name: 'Add iCloud connector' }).click()]);
    await page.getByRole('cell', { name: 'icloud', exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add iCloud connector' }).count(), 0, 'the button is gone once the connector exists');
    assert.deepEqual((await dnylas.connectors.list({})).data.map((c) => c.provider), ['icloud'], 'the API sees the connector');
    assert.deepEqual((await nylas.connectors.list({})).data.map((c) => c.provider), ['icloud'], 'the other application is unchanged');
    await shot(page, 'dashboard-connectors.png');

    // Redirect URIs: add the application's callback.
    await open('Redirect URIs', 'redirect-uris');
    await page.getByLabel('URL', { exact: true }).fill(dashRedirect);
    await page.getByLabel('Platform').selectOption('web');
    assert.ok((await status(() => page.getByRole('button', { name: 'Add redirect URI' }).click())) < 400);
    await page.getByRole('cell', { name: dashRedirect, exact: true }).waitFor();
    assert.deepEqual((await dnylas.applications.redirectUris.list()).data.map((u) => [u.url, u.platform]), [[dashRedirect, 'web']], 'the API sees the redirect URI');

    // Webhooks: create one; Orchard checks the URL's challenge; the secret is shown once.
    await open('Webhooks', 'webhooks');
    await page.getByLabel('Webhook URL').fill(hookURL);
    await page.getByLabel('Description').fill(`browser test ${TAG}`);
    await page.getByRole('checkbox', { name: 'grant.created' }).check();
    // Post/redirect/get: the POST answers 303 and the secret comes with the GET that follows.
    assert.equal(await status(() => page.getByRole('button', { name: 'Create webhook' }).click()), 303);
    const secretBox = page.locator('.secret');
    assert.equal(await secretBox.count(), 1, 'one secret shown');
    const hookSecret = (await secretBox.innerText()).trim();
    secrets.push(hookSecret);
    assert.match(hookSecret, /^\S{16,}$/, 'a webhook secret');
    assert.equal(receiver.hits.filter((h) => h.method === 'GET' && h.query.challenge).length, 1, 'Orchard verified the URL with one challenge');
    const hooks = (await dnylas.webhooks.list()).data;
    assert.deepEqual(hooks.map((h) => [h.webhookUrl, h.triggerTypes, h.status]), [[hookURL, ['grant.created'], 'active']], 'the API sees the webhook');
    assert.ok(!JSON.stringify(hooks).includes(hookSecret), 'the API does not show the secret again');
    await shot(page, 'dashboard-webhooks.png');
    // Reloading the page neither creates a second webhook nor shows the secret again.
    await page.reload();
    await page.getByRole('link', { name: hookURL }).waitFor();
    assert.equal((await dnylas.webhooks.list()).data.length, 1, 'a reload created no second webhook');
    assert.equal(await page.locator('.secret').count(), 0, 'the secret is not shown again');
    assert.ok(!(await page.content()).includes(hookSecret), 'nor anywhere in the page');

    // Pause and activate from the list.
    const hookRow = page.getByRole('row').filter({ hasText: hookURL });
    await status(() => hookRow.getByRole('button', { name: 'Pause' }).click());
    await page.getByRole('row').filter({ hasText: hookURL }).getByRole('button', { name: 'Activate' }).waitFor();
    assert.equal((await dnylas.webhooks.find({ webhookId: hooks[0].id })).data.status, 'pause', 'paused through the dashboard');
    await status(() => page.getByRole('row').filter({ hasText: hookURL }).getByRole('button', { name: 'Activate' }).click());
    await page.getByRole('row').filter({ hasText: hookURL }).getByRole('button', { name: 'Pause' }).waitFor();
    assert.equal((await dnylas.webhooks.find({ webhookId: hooks[0].id })).data.status, 'active', 'active again');

    // Send test event from the webhook's page: a POST signed with mock-webhook-secret.
    await Promise.all([page.waitForURL((u) => u.pathname === appPath(dash, 'webhooks', hooks[0].id)), page.getByRole('link', { name: hookURL }).click()]);
    await page.getByLabel('Trigger type').selectOption('message.created');
    assert.ok((await status(() => page.getByRole('button', { name: 'Send test event' }).click())) < 400);
    await page.getByText('The test event was delivered.').waitFor();
    const testPost = hookPosts.find((p) => p.json.type === 'message.created');
    assert.ok(testPost, `the receiver got the test event: ${JSON.stringify(hookPosts.map((p) => p.json.type))}`);
    assert.equal(testPost.headers['x-nylas-signature'], crypto.createHmac('sha256', 'mock-webhook-secret').update(testPost.body).digest('hex'));

    // Grants: carol connected with custom auth (through the connector added above) is listed.
    const grant = (await dnylas.auth.customAuthentication({
      requestBody: { provider: 'icloud', settings: { username: CAROL, password: env.users[CAROL] } },
    })).data;
    await open('Grants', 'grants');
    const row = page.getByRole('row').filter({ hasText: CAROL });
    assert.equal(await row.count(), 1, 'carol is listed once');
    assert.match(await row.innerText(), /iCloud/);
    assert.match(await row.innerText(), /valid/);
    assert.equal(await page.getByRole('row').filter({ hasText: ALICE }).count(), 0, 'grants of the other application are not listed');
    await shot(page, 'dashboard-grants.png');

    // The secret shown once is the one deliveries are signed with (grant.created for carol).
    const created = await waitFor(() => hookPosts.find((p) => p.json.type === 'grant.created'),
      { timeout: 15000, what: 'grant.created at the webhook made in the dashboard' });
    assert.equal(created.json.data.object.grant_id ?? created.json.data.object.id, grant.id);
    assert.equal(created.headers['x-nylas-signature'], crypto.createHmac('sha256', hookSecret).update(created.body).digest('hex'),
      'signed with the secret the dashboard showed');

    // The grant's page: its re-authentication link signs carol in again, to the same grant.
    await Promise.all([page.waitForURL((u) => u.pathname === appPath(dash, 'grants', grant.id)), row.getByRole('link', { name: CAROL }).click()]);
    await shot(page, 'dashboard-grant.png');
    const reauth = page.getByRole('link', { name: 'Re-authenticate' });
    const reauthURL = new URL(await reauth.getAttribute('href'));
    assert.equal(`${reauthURL.origin}${reauthURL.pathname}`, `${srv.url}/v3/connect/auth`);
    assert.equal(reauthURL.searchParams.get('redirect_uri'), dashRedirect);
    await reauth.click();
    await page.getByRole('heading', { name: 'Sign in with iCloud' }).waitFor();
    assert.equal(await page.getByLabel('iCloud email address', { exact: true }).inputValue(), CAROL, 'the link names carol');
    await page.getByLabel('App-specific password').fill(env.users[CAROL]);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(`${dashRedirect}?`)), page.getByRole('button', { name: 'Sign in' }).click()]);
    const code = new URL(page.url()).searchParams.get('code');
    secrets.push(code);
    const tok = await dnylas.auth.exchangeCodeForToken({ clientId: dash.appId, redirectUri: dashRedirect, code });
    secrets.push(tok.accessToken);
    assert.equal(tok.grantId, grant.id, 're-authentication revives the same grant');
    assert.equal(tok.email, CAROL);

    // Delete grant: needs the confirmation box.
    await page.goto(`${srv.url}${appPath(dash, 'grants', grant.id)}`);
    await page.getByRole('checkbox', { name: /I understand/ }).check();
    assert.ok((await status(() => page.getByRole('button', { name: 'Delete grant' }).click())) < 400);
    await page.getByText('The grant is deleted.').waitFor();
    assert.equal(await page.getByRole('row').filter({ hasText: CAROL }).count(), 0, 'carol is no longer listed');
    assert.deepEqual((await dnylas.grants.list()).data.map((g) => g.email), [], 'the API sees no grant');

    assertNoSecrets(await page.content(), [ADMIN_PASSWORD, dash.apiKey, hosted.apiKey, hookSecret, env.users[CAROL]], 'a dashboard page');
  } finally {
    await context.close();
    for (const h of (await dnylas.webhooks.list()).data) await dnylas.webhooks.destroy({ webhookId: h.id });
  }
});

test('dashboard: an API key made in the dashboard (shown once) signs an operator in to its application only', async (t) => {
  if (!(await dashboardMounted(t))) return;
  const admin = await newPage();
  const operator = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  try {
    await dashboardSignIn(admin.page, { password: ADMIN_PASSWORD });
    await admin.page.goto(`${srv.url}${appPath(dash, 'keys')}`);
    await admin.page.getByLabel('Name', { exact: true }).fill('browser operator');
    await admin.page.getByRole('button', { name: 'Create API key' }).click();
    await admin.page.locator('.secret').waitFor();
    const key = (await admin.page.locator('.secret').innerText()).trim();
    secrets.push(key);
    assert.match(key, /^ork_\S{16,}$/, 'an API key');
    assert.equal((await client(srv, key).grants.list()).data.length, 0, 'the new key works with the API');

    const { page } = operator;
    await dashboardSignIn(page, { apiKey: key });
    await page.getByText('Signed in with an API key').waitFor();
    assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /browser-dash/, 'the key\'s application');
    assert.equal(await page.getByRole('link', { name: 'Applications' }).count(), 0, 'no list of all applications');
    await shot(page, 'dashboard-apikey-phone.png');
    const other = await page.goto(`${srv.url}${appPath(hosted, 'grants')}`);
    assert.equal(other.status(), 404, 'another application\'s pages are 404');
    assert.ok(!(await page.content()).includes(ALICE), 'nothing of the other application shows');

    // Revoking the key ends the operator's session.
    await admin.page.goto(`${srv.url}${appPath(dash, 'keys')}`);
    await admin.page.getByRole('button', { name: /Revoke API key browser operator/ }).click();
    await admin.page.waitForLoadState();
    await page.goto(`${srv.url}${appPath(dash)}`);
    assert.equal(new URL(page.url()).pathname, '/dashboard/login', 'the revoked key\'s session is over');
  } finally {
    await admin.context.close();
    await operator.context.close();
  }
});

// ---------------------------------------------------------------------------

test('tokeninfo: errors come in the OAuth shape, so the SDK\'s NylasOAuthError says what is wrong', async () => {
  // The Nylas API reference documents tokeninfo's errors as {error, error_description, error_uri, error_code}.
  const err = await nylas.auth.accessTokenInfo('ora_not-a-token-of-this-orchard').then(() => null, (e) => e);
  assert.ok(err instanceof NylasOAuthError, `NylasOAuthError, got ${err?.constructor?.name}`);
  assert.ok([400, 401].includes(err.statusCode), `statusCode ${err.statusCode}`);
  assert.equal(typeof err.error, 'string', `error is an OAuth error code, got ${JSON.stringify(err.error)}`);
  assert.match(err.errorDescription ?? '', /token/, 'errorDescription says what is wrong');
  assert.equal(err.message, err.errorDescription);
});
