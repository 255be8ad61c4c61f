// nylas.auth.customAuthentication for iCloud (username + app password,
// servers from ORCHARD_ICLOUD_*) and for IMAP with explicit host settings,
// against the test env's real Dovecot and Postfix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startOrchard, stopAndCheck, client, testEnv, allPasswords, assertNoSecrets } from '../harness.js';

const env = testEnv();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';

let srv;
let nylas;

before(async () => {
  srv = await startOrchard({ name: 'custom-auth' });
  nylas = client(srv);
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  await nylas.connectors.create({ requestBody: { provider: 'imap' } });
});

after(async () => {
  if (!srv) return;
  await stopAndCheck(srv);
  // Credentials are sealed at rest: no password in any file of the data dir.
  for (const f of fs.readdirSync(srv.dataDir)) {
    const p = path.join(srv.dataDir, f);
    if (fs.statSync(p).isFile()) assertNoSecrets(fs.readFileSync(p).toString('latin1'), allPasswords(), `data dir file ${f}`);
  }
  if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
});

function assertGrant(g, { provider, email }) {
  assert.match(g.id, /\S/, 'grant id');
  assert.equal(g.provider, provider);
  assert.equal(g.grantStatus, 'valid');
  assert.equal(g.email, email);
  assert.deepEqual(g.scope, []);
  assert.equal(typeof g.createdAt, 'number');
  assert.ok(g.createdAt > 1.6e9 && g.createdAt < 1e10, `createdAt ${g.createdAt} is Unix seconds`);
  assert.ok(g.updatedAt >= g.createdAt, 'updatedAt >= createdAt');
  assertNoSecrets(JSON.stringify(g), allPasswords(), 'grant object');
}

let aliceGrant;

test('icloud: username + app-specific password → valid grant', async () => {
  const res = await nylas.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } },
  });
  assert.match(res.requestId, /\S/);
  assert.equal(res.headers.xRequestId, res.requestId, 'X-Request-Id header equals body request_id');
  assertGrant(res.data, { provider: 'icloud', email: ALICE });
  assert.equal(res.data.settings.username, ALICE);
  assert.equal(res.data.settings.imapUsername, ALICE, 'Dovecot accepts the full address');
  assert.equal(res.data.userAgent, 'Nylas Node SDK v8.4.0', 'user agent recorded');
  assert.equal(res.data.ip, '127.0.0.1');
  aliceGrant = res.data;
});

test('icloud: authenticating again returns the SAME grant id', async () => {
  const res = await nylas.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] }, state: 'again' },
  });
  assertGrant(res.data, { provider: 'icloud', email: ALICE });
  assert.equal(res.data.id, aliceGrant.id);
  assert.equal(res.data.createdAt, aliceGrant.createdAt, 'createdAt kept on re-auth');
  assert.equal(res.data.state, 'again', 'state echoed');

  const list = await nylas.grants.list({ queryParams: { email: ALICE } });
  assert.equal(list.data.length, 1, 'still one grant for alice');
});

test('wire format: 201, X-Request-Id = request_id, snake_case grant without secrets', async () => {
  const r = await fetch(`${srv.url}/v3/connect/custom`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${srv.apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } }),
  });
  const text = await r.text();
  assert.equal(r.status, 201, text);
  const j = JSON.parse(text);
  assert.equal(j.request_id, r.headers.get('x-request-id'));
  assert.equal(j.data.id, aliceGrant.id);
  assert.equal(j.data.grant_status, 'valid');
  assert.equal(typeof j.data.created_at, 'number');
  assertNoSecrets(text, allPasswords(), 'raw custom auth response');
});

test('icloud: the address matches case-insensitively on re-auth (same grant)', async () => {
  // The test env's Dovecot accepts the mixed-case login; the grant must be
  // alice's existing one, not a second grant.
  const res = await nylas.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: 'Alice@Example.TEST', password: env.users[ALICE] } },
  });
  assert.equal(res.data.id, aliceGrant.id, 'mixed-case address re-authenticates the same grant');
  assert.equal(res.data.email, ALICE, 'grant email unchanged');
  const list = await nylas.grants.list({});
  assert.equal(list.data.filter((g) => g.email.toLowerCase() === ALICE).length, 1);
});

let bobGrant;

test('imap: explicit host/port/username/password for bob → valid grant', async () => {
  const res = await nylas.auth.customAuthentication({
    requestBody: {
      provider: 'imap',
      settings: {
        imapUsername: BOB,
        imapPassword: env.users[BOB],
        imapHost: env.imap.host,
        imapPort: env.imap.port,
        smtpHost: env.smtp.host,
        smtpPort: env.smtp.port,
      },
    },
  });
  assertGrant(res.data, { provider: 'imap', email: BOB });
  assert.deepEqual(res.data.settings, {
    imapHost: env.imap.host,
    imapPort: env.imap.port,
    imapUsername: BOB,
    smtpHost: env.smtp.host,
    smtpPort: env.smtp.port,
    smtpUsername: BOB,
  });
  assert.notEqual(res.data.id, aliceGrant.id);
  bobGrant = res.data;
});

test('imap: ports as strings (OpenAPI example form) and explicit SMTP credentials are accepted; same grant', async () => {
  const res = await nylas.auth.customAuthentication({
    requestBody: {
      provider: 'imap',
      settings: {
        imapUsername: BOB,
        imapPassword: env.users[BOB],
        imapHost: env.imap.host,
        imapPort: String(env.imap.port),
        smtpHost: env.smtp.host,
        smtpPort: String(env.smtp.port),
        smtpUsername: BOB,
        smtpPassword: env.users[BOB],
      },
    },
  });
  assertGrant(res.data, { provider: 'imap', email: BOB });
  assert.equal(res.data.id, bobGrant.id);
  assert.equal(res.data.settings.imapPort, env.imap.port, 'port normalised to a number');
});

let carolId;

test('concurrent custom auth for a new mailbox → one grant, every caller gets its id', async () => {
  const settings = {
    imapUsername: CAROL, imapPassword: env.users[CAROL], imapHost: env.imap.host, imapPort: env.imap.port,
    smtpHost: env.smtp.host, smtpPort: env.smtp.port,
  };
  const results = await Promise.allSettled(
    [1, 2, 3, 4].map(() => nylas.auth.customAuthentication({ requestBody: { provider: 'imap', settings } })),
  );
  const ids = results.map((r) => (r.status === 'fulfilled' ? r.value.data.id : `error ${r.reason?.statusCode}: ${r.reason?.message}`));
  assert.equal(new Set(ids).size, 1, `all concurrent calls must return the same grant: ${ids.join(', ')}`);
  carolId = ids[0];
  const list = await nylas.grants.list({ queryParams: { email: CAROL } });
  assert.deepEqual(list.data.map((g) => g.id), [carolId], 'exactly one grant for carol');
});

test('imap: explicit settings.email names the grant (re-authenticates carol)', async () => {
  const res = await nylas.auth.customAuthentication({
    requestBody: {
      provider: 'imap',
      settings: {
        email: CAROL,
        imapUsername: CAROL,
        imapPassword: env.users[CAROL],
        imapHost: env.imap.host,
        imapPort: env.imap.port,
        smtpHost: env.smtp.host,
        smtpPort: env.smtp.port,
      },
    },
  });
  assertGrant(res.data, { provider: 'imap', email: CAROL });
  assert.equal(res.data.id, carolId);
});

test('grants created by custom auth are listed and findable', async () => {
  const list = await nylas.grants.list({});
  assert.deepEqual(list.data.map((g) => g.email).sort(), [ALICE, BOB, CAROL]);
  for (const g of list.data) assertNoSecrets(JSON.stringify(g), allPasswords(), `listed grant ${g.email}`);
  const found = await nylas.grants.find({ grantId: bobGrant.id });
  assert.equal(found.data.id, bobGrant.id);
  assert.equal(found.data.provider, 'imap');
});
