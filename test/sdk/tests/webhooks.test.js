// nylas.webhooks.* and the webhook deliveries, end to end: a receiver on
// 127.0.0.1 (node:http) answers the challenge, checks the signature of
// every POST with node:crypto (HMAC-SHA256 of the raw body with the
// webhook secret) and counts deliveries by notification id.
//
// Webhooks of the run (URLs under /<run tag>/ on the receiver):
//   main    grant.created, grant.deleted, message.created, message.updated
//   paused  message.created (its URL has a query string); updated, paused,
//           re-activated, destroyed
//   gzip    message.created with compressed_delivery; moved to gzip2, destroyed
//   other   every trigger, of a second application: hears nothing of the first
// Real events come from carol@example.test's mailbox: a grant connected
// after the webhooks exist (grant.created), mail handed to Postfix
// (message.created), a flag set and cleared by another IMAP client
// (message.updated), the grant destroyed (grant.deleted). PRE is APPENDed
// before the grant exists: the initial sync is history, so it notifies
// nothing. Every message carries the run tag; `after` deletes them and the
// webhooks.
//
// Orchard runs with ORCHARD_WEBHOOK_TIMEOUT=1s and
// ORCHARD_SYNC_POLL_INTERVAL=1s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import {
  startOrchard, stopAndCheck, client, expectApiError, connectMailbox, smtpInject, buildMessage, runTag, imapSession,
  waitFor, removeTagged, allPasswords, freePort, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test';
const TAG = runTag('hook');
const MOCK_SECRET = 'mock-webhook-secret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowSec = () => Math.floor(Date.now() / 1000);

let srv;
let nylas;
let other; // a client of the second application
let rcv;
let grant;
let inboxId;
const hooks = {}; // name → webhook as created (with its secret)
const created = new Map(); // id → SDK client, of webhooks this run created (for `after`)
const secrets = []; // every webhook secret shown: none may appear in the server's log
const subjects = {}; // message name → Subject
let replayed; // notification id delivered twice on purpose (replay)

// ---------------------------------------------------------------------------
// The receiver

const hmacHex = (secret, body) => crypto.createHmac('sha256', secret).update(body).digest('hex');

/** Whether sig is the lowercase hex HMAC-SHA256 of body keyed with secret (constant time). */
function signedWith(secret, body, sig) {
  if (!secret || typeof sig !== 'string') return false;
  const want = Buffer.from(hmacHex(secret, body));
  const got = Buffer.from(sig);
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * An application's webhook endpoint. Routes are path names under /<TAG>/:
 *   challenge: 'echo' (200 with exactly the challenge, read with the SDK's
 *              extractChallengeParameter), 'wrong' (200, another body),
 *              'quoted' (200, the challenge as a JSON string), 'fail' (500)
 *   post:      'verify' (check the signature, 200; 401 if it is wrong),
 *              'fail' (500)
 * A route's secret is set after create/rotate answers; POSTs arriving in
 * between wait for it, so no race makes a good signature look bad.
 */
async function startReceiver() {
  const routes = new Map();
  const byId = new Map(); // notification id → number of POSTs
  const problems = []; // bad signatures, unknown paths, bodies that are not JSON
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks), res).catch((e) => {
      problems.push(`${req.method} ${req.url}: receiver error ${e.stack}`);
      res.writeHead(500).end();
    }));
  });
  server.keepAliveTimeout = 60000;

  async function handle(req, raw, res) {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const route = routes.get(url.pathname);
    if (!route) {
      problems.push(`${req.method} ${req.url}: no such route`);
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'GET' && url.searchParams.has('challenge')) {
      const challenge = nylas.webhooks.extractChallengeParameter(url.href);
      route.challenges.push({ url: url.href, challenge, at: Date.now() });
      const answers = {
        echo: [200, challenge], wrong: [200, 'not the challenge'], quoted: [200, JSON.stringify(challenge)], fail: [500, 'no'],
      };
      const [status, body] = answers[route.challenge];
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(body);
      return;
    }
    if (req.method !== 'POST') {
      problems.push(`${req.method} ${req.url}: unexpected method`);
      res.writeHead(405).end();
      return;
    }
    if (route.post === 'fail') {
      route.posts.push({ at: Date.now(), url: url.href, headers: req.headers, raw, rejected: 500 });
      res.writeHead(500).end('receiver is down');
      return;
    }
    let timer;
    const ready = await Promise.race([route.ready.promise, new Promise((r) => (timer = setTimeout(() => r(false), 10000)))]);
    clearTimeout(timer);
    const sig = req.headers['x-nylas-signature'];
    const post = { at: Date.now(), url: url.href, headers: req.headers, raw, sig };
    route.posts.push(post);
    if (!ready) {
      problems.push(`POST ${req.url}: arrived while the route's secret was unknown for 10 s`);
      res.writeHead(401).end();
      return;
    }
    post.signedWith = signedWith(route.secret, raw, sig) ? 'current' : route.retired.some((s) => signedWith(s, raw, sig)) ? 'retired' : null;
    let text = raw;
    if (req.headers['content-encoding'] === 'gzip') {
      try {
        text = zlib.gunzipSync(raw);
      } catch (e) {
        problems.push(`POST ${req.url}: Content-Encoding gzip, but ${e.message}`);
      }
    }
    try {
      post.json = JSON.parse(text.toString('utf8'));
    } catch (e) {
      problems.push(`POST ${req.url}: body is not JSON (${e.message}): ${text.toString('utf8').slice(0, 200)}`);
    }
    post.id = post.json?.id;
    post.type = post.json?.type;
    post.attempt = post.json?.webhook_delivery_attempt;
    post.object = post.json?.data?.object;
    if (post.signedWith !== 'current') {
      problems.push(`POST ${req.url} ${post.type} ${post.id}: X-Nylas-Signature ${JSON.stringify(sig)} ` +
        (post.signedWith === 'retired' ? 'is signed with a rotated-out secret' : 'matches no secret of the webhook'));
      res.writeHead(401).end();
      return;
    }
    byId.set(post.id, (byId.get(post.id) ?? 0) + 1);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;

  const r = {
    base,
    byId,
    problems,
    /** Adds a route; returns its URL (with query, if given). */
    route(name, { challenge = 'echo', post = 'verify', secret, query = '' } = {}) {
      const pathname = `/${TAG}/${name}`;
      const route = { name, challenge, post, challenges: [], posts: [], secret: undefined, retired: [], ready: deferred() };
      routes.set(pathname, route);
      if (secret) r.setSecret(name, secret);
      return `${base}${pathname}${query}`;
    },
    get(name) {
      return routes.get(`/${TAG}/${name}`);
    },
    /** POSTs wait from now until setSecret: call before create or rotate. */
    expectSecret(name) {
      const route = r.get(name);
      route.ready = deferred();
    },
    /** The webhook's secret from now on; the one before is retired. */
    setSecret(name, secret) {
      const route = r.get(name);
      if (route.secret) route.retired.push(route.secret);
      route.secret = secret;
      route.ready.resolve(true);
    },
    /** The verified notifications a route got. */
    notifications(name) {
      return r.get(name).posts.filter((p) => p.signedWith === 'current' && p.json);
    },
    /** Waits for a verified notification of type on route name that match(object, post) accepts. */
    async wait(name, type, match = () => true, timeout = 20000) {
      return waitFor(() => r.notifications(name).find((p) => p.type === type && match(p.object ?? {}, p)), {
        timeout,
        interval: 50,
        what: () => `a ${type} notification at ${name}; it got: ${JSON.stringify(r.get(name).posts.map((p) => [p.type, p.object?.subject ?? p.object?.grant_id, p.signedWith]))}; problems: ${problems.join('; ')}`,
      });
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return r;
}

// ---------------------------------------------------------------------------
// Helpers

/** A raw API call with the app's key (for endpoints the SDK lacks): {status, body, headers}. */
async function api(method, path, body) {
  const r = await fetch(`${srv.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${srv.apiKey}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    assert.fail(`${method} ${path} → ${r.status} answered no JSON: ${text.slice(0, 300)}`);
  }
  return { status: r.status, body: json, headers: r.headers };
}

/** Asserts an API error answer: status, error.type and a message matching re. */
function assertApiError(res, status, re, what, type = status === 404 ? 'not_found_error' : 'invalid_request_error') {
  const desc = `${what}: ${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, desc);
  assert.equal(res.body.error?.type, type, desc);
  if (re) assert.match(res.body.error.message, re, desc);
  assert.equal(res.headers.get('x-request-id'), res.body.request_id, `${desc}: X-Request-Id`);
}

/** The webhook as find/list must show it: the create answer without the secret. */
function withoutSecret(h) {
  const { webhookSecret, ...rest } = h;
  return rest;
}

async function createHook(name, requestBody, sdk = nylas) {
  rcv.expectSecret(name);
  const res = await sdk.webhooks.create({ requestBody });
  created.set(res.data.id, sdk);
  secrets.push(res.data.webhookSecret);
  rcv.setSecret(name, res.data.webhookSecret);
  hooks[name] = res.data;
  return res;
}

function mail(name, text, html = `<p>${text}</p>`) {
  subjects[name] = `${TAG} ${name} message`;
  return buildMessage({
    from: { name: 'Hook Sender', email: `sender.${TAG}@example.org` }, to: CAROL, subject: subjects[name],
    messageId: `<${name.toLowerCase()}.${TAG}@sdk.test>`, text, html,
  });
}

async function inject(name, text = `body of ${name}`, html) {
  await smtpInject({ from: `sender.${TAG}@example.org`, rcpts: [CAROL], data: mail(name, text, html) });
}

/** Sets (+) or clears (-) \Flagged on message name from another IMAP client. */
async function flag(name, op) {
  const im = await imapSession(CAROL);
  try {
    const uids = await im.search('INBOX', subjects[name]);
    assert.equal(uids.length, 1, `${name} in carol's INBOX`);
    await im.store('INBOX', uids[0], `${op}FLAGS.SILENT (\\Flagged)`);
  } finally {
    await im.close();
  }
}

const isMsg = (name) => (o) => o.subject === subjects[name];

// ---------------------------------------------------------------------------

before(async () => {
  srv = await startOrchard({
    name: 'webhooks', apps: ['sdk-test', 'other-app'], env: { ...MAIL_ENV, ORCHARD_WEBHOOK_TIMEOUT: '1s', ORCHARD_SYNC_POLL_INTERVAL: '1s' },
  });
  nylas = client(srv);
  other = client(srv, srv.apps[1].apiKey);
  rcv = await startReceiver();
  rcv.route('main');
  rcv.route('paused', { query: `?run=${TAG}&x=1` });
  rcv.route('gzip');
  rcv.route('gzip2');
  rcv.route('other');
  rcv.route('wrong', { challenge: 'wrong' });
  rcv.route('quoted', { challenge: 'quoted' });
  rcv.route('down', { challenge: 'fail', post: 'fail' });
  rcv.route('test', { secret: MOCK_SECRET });
  // Mail from before the grant: the initial sync must not notify it.
  const im = await imapSession(CAROL);
  try {
    await im.append('INBOX', mail('PRE', 'synced at start'));
  } finally {
    await im.close();
  }
});

after(async () => {
  if (srv) {
    for (const [id, sdk] of created) {
      try {
        await sdk.webhooks.destroy({ webhookId: id });
      } catch {
        /* destroyed by a test */
      }
    }
    await stopAndCheck(srv, [...allPasswords(), ...secrets]);
    if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
  }
  await rcv?.close();
  await removeTagged(CAROL, TAG, ['INBOX']);
});

const MAIN_TRIGGERS = ['grant.created', 'grant.deleted', 'message.created', 'message.updated'];

test('webhooks.create: the URL must echo the challenge; the answer carries the secret, once', async () => {
  const t0 = nowSec();
  const main = (await createHook('main', {
    description: `${TAG} main`, triggerTypes: ['message.updated', 'grant.created', 'message.created', 'grant.deleted', 'message.created'],
    webhookUrl: `${rcv.base}/${TAG}/main`, notificationEmailAddresses: ['ops@example.test'],
  })).data;
  assert.match(main.id, /\S/);
  assert.equal(typeof main.webhookSecret, 'string');
  assert.ok(main.webhookSecret.length >= 16, `secret ${main.webhookSecret} is long enough`);
  assert.deepEqual(main.triggerTypes, MAIN_TRIGGERS, 'trigger types sorted, duplicates dropped');
  assert.equal(main.webhookUrl, `${rcv.base}/${TAG}/main`);
  assert.equal(main.description, `${TAG} main`);
  assert.equal(main.status, 'active');
  assert.deepEqual(main.notificationEmailAddresses, ['ops@example.test']);
  assert.equal(main.compressedDelivery, false);
  for (const k of ['createdAt', 'updatedAt', 'statusUpdatedAt']) {
    assert.ok(main[k] >= t0 - 1 && main[k] <= nowSec() + 1, `${k} ${main[k]} is now`);
  }
  const ch = rcv.get('main').challenges;
  assert.equal(ch.length, 1, 'one challenge GET before the webhook was created');
  assert.match(ch[0].challenge, /^\S{8,}$/);

  const paused = (await createHook('paused', {
    description: `${TAG} paused`, triggerTypes: ['message.created'], webhookUrl: `${rcv.base}/${TAG}/paused?run=${TAG}&x=1`,
  })).data;
  assert.equal(paused.webhookUrl, `${rcv.base}/${TAG}/paused?run=${TAG}&x=1`);
  assert.deepEqual(paused.notificationEmailAddresses, []);
  const q = new URL(rcv.get('paused').challenges[0].url).searchParams;
  assert.deepEqual([q.get('run'), q.get('x')], [TAG, '1'], 'the challenge keeps the URL\'s own query');
  const gz = (await createHook('gzip', {
    description: `${TAG} gzip`, triggerTypes: ['message.created'], webhookUrl: `${rcv.base}/${TAG}/gzip`, compressedDelivery: true,
  })).data;
  assert.equal(gz.compressedDelivery, true);
  assert.equal(new Set([main.webhookSecret, paused.webhookSecret, gz.webhookSecret]).size, 3, 'each webhook has its own secret');
  // The other application's webhook, for every trigger: it must hear nothing of this application.
  const all = ['grant.created', 'grant.updated', 'grant.deleted', 'grant.expired', 'message.created', 'message.updated',
    'folder.created', 'folder.updated', 'folder.deleted', 'calendar.created', 'event.created'];
  const oh = (await createHook('other', { description: `${TAG} other app`, triggerTypes: all, webhookUrl: `${rcv.base}/${TAG}/other` }, other)).data;
  assert.deepEqual(oh.triggerTypes, [...all].sort());

  const bad = (requestBody, message, label) => expectApiError(nylas.webhooks.create({ requestBody }),
    { status: 400, type: 'invalid_request_error', message }, label);
  const url = (name) => `${rcv.base}/${TAG}/${name}`;
  await bad({ triggerTypes: ['message.created'], webhookUrl: url('wrong') }, [/challenge/, /exactly/], 'a URL answering another body');
  assert.equal(rcv.get('wrong').challenges.length, 1, 'the wrong URL got the challenge');
  await bad({ triggerTypes: ['message.created'], webhookUrl: url('quoted') }, /challenge/, 'a URL answering the challenge in quotes');
  await bad({ triggerTypes: ['message.created'], webhookUrl: url('down') }, [/challenge/, /500/], 'a URL answering 500');
  await bad({ triggerTypes: ['message.created'], webhookUrl: `http://127.0.0.1:${await freePort()}/hook` }, /challenge/, 'a URL nobody listens on');
  await bad({ triggerTypes: ['message.nope'], webhookUrl: url('main') }, [/trigger_types/, /message\.nope/], 'an unknown trigger');
  await bad({ triggerTypes: ['message.created', 'contact.created'], webhookUrl: url('main') }, /contact\.created/, 'a trigger Orchard does not send');
  await bad({ triggerTypes: [], webhookUrl: url('main') }, /trigger_types/, 'no trigger');
  await bad({ webhookUrl: url('main') }, /trigger_types/, 'trigger_types missing');
  await bad({ triggerTypes: ['message.created'] }, /webhook_url/, 'webhook_url missing');
  await bad({ triggerTypes: ['message.created'], webhookUrl: 'ftp://127.0.0.1/x' }, /webhook_url/, 'not an http URL');
  assert.equal(rcv.get('main').challenges.length, 1, 'invalid requests are refused before any challenge');

  const ids = (await nylas.webhooks.list()).data.map((h) => h.id).sort();
  assert.deepEqual(ids, [main.id, paused.id, gz.id].sort(), 'the refused creates left no webhook');
});

test('webhooks.list and webhooks.find never show the secret; find of an unknown id is a 404', async () => {
  const list = await nylas.webhooks.list();
  assert.equal(list.data.length, 3, 'the three of this application');
  for (const h of list.data) {
    assert.ok(!('webhookSecret' in h), `list shows no secret: ${JSON.stringify(h)}`);
    const name = Object.keys(hooks).find((n) => hooks[n].id === h.id);
    assert.deepEqual(h, withoutSecret(hooks[name]), `list: ${name}`);
  }
  for (const [name, h] of Object.entries(hooks)) {
    const found = await created.get(h.id).webhooks.find({ webhookId: h.id });
    assert.ok(!('webhookSecret' in found.data), `find shows no secret: ${JSON.stringify(found.data)}`);
    assert.deepEqual(found.data, withoutSecret(h), `find ${name}`);
  }
  const raw = await api('GET', `/v3/webhooks/${hooks.main.id}`);
  assert.equal(raw.status, 200);
  assert.ok(!('webhook_secret' in raw.body.data), `raw find: ${JSON.stringify(raw.body.data)}`);
  await expectApiError(nylas.webhooks.find({ webhookId: 'nosuchwebhook' }), { status: 404, type: 'not_found_error', message: /nosuchwebhook/ }, 'find unknown');

  // Applications see only their own webhooks.
  assert.deepEqual((await other.webhooks.list()).data, [withoutSecret(hooks.other)], 'the other application lists only its webhook');
  const id = hooks.main.id;
  const nf = { status: 404, type: 'not_found_error' };
  await expectApiError(other.webhooks.find({ webhookId: id }), nf, 'find of another application\'s webhook');
  await expectApiError(nylas.webhooks.find({ webhookId: hooks.other.id }), nf, 'find of the other application\'s webhook');
  await expectApiError(other.webhooks.update({ webhookId: id, requestBody: { description: 'taken' } }), nf, 'update of another application\'s webhook');
  await expectApiError(other.webhooks.rotateSecret({ webhookId: id }), nf, 'rotate of another application\'s webhook');
  await expectApiError(other.webhooks.destroy({ webhookId: id }), nf, 'destroy of another application\'s webhook');
  const r = await fetch(`${srv.url}/v3/webhooks/${id}/deliveries`, { headers: { Authorization: `Bearer ${srv.apps[1].apiKey}` } });
  assert.equal(r.status, 404, 'deliveries of another application\'s webhook');
  assert.deepEqual((await nylas.webhooks.find({ webhookId: id })).data, withoutSecret(hooks.main), 'untouched');
});

test('webhooks.ipAddresses and webhooks.extractChallengeParameter', async () => {
  const ips = await nylas.webhooks.ipAddresses();
  assert.ok(Array.isArray(ips.data.ipAddresses), JSON.stringify(ips.data));
  assert.ok(Math.abs(ips.data.updatedAt - nowSec()) < 3600 * 24 * 365 * 10, `updatedAt ${ips.data.updatedAt}`);
  assert.match(ips.requestId, /\S/);

  // The receiver read each challenge with the SDK helper; here it is on its own.
  const { url, challenge } = rcv.get('paused').challenges[0];
  assert.equal(nylas.webhooks.extractChallengeParameter(url), challenge);
  assert.equal(new URL(url).searchParams.get('challenge'), challenge);
  assert.throws(() => nylas.webhooks.extractChallengeParameter(`${rcv.base}/${TAG}/main?run=1`), /challenge/);
});

test('POST /v3/webhooks/mock-payload: an example notification of each trigger type', async () => {
  const codes = { 'grant.created': 25012, 'grant.updated': 25014, 'grant.deleted': 25013, 'grant.expired': 25009 };
  const types = ['grant.created', 'grant.updated', 'grant.deleted', 'grant.expired', 'message.created', 'message.updated',
    'message.created.truncated', 'folder.created', 'folder.deleted', 'calendar.updated', 'event.created', 'event.deleted'];
  for (const type of types) {
    const res = await api('POST', '/v3/webhooks/mock-payload', { trigger_type: type });
    assert.equal(res.status, 200, `${type}: ${JSON.stringify(res.body)}`);
    const p = res.body.data;
    assert.equal(p.specversion, '1.0', type);
    assert.equal(p.type, type);
    assert.match(p.id, /\S/, `${type} id`);
    assert.match(p.source, /^\//, `${type} source`);
    assert.ok(Number.isInteger(p.time) && Math.abs(p.time - nowSec()) < 600, `${type} time ${p.time}`);
    assert.equal(p.webhook_delivery_attempt, 1, type);
    assert.match(p.data.application_id, /\S/, type);
    const o = p.data.object;
    assert.equal(typeof o, 'object', type);
    const [kind, action] = type.split('.');
    if (kind === 'grant') {
      assert.equal(o.code, codes[type], `${type} code`);
      assert.equal(p.source, '/nylas/system');
      assert.match(o.grant_id, /\S/);
      assert.match(o.email, /@/);
    } else if (action === 'deleted') {
      assert.equal(o.object, kind, `${type}: a deleted object is minimal`);
      assert.match(o.id, /\S/);
    } else {
      assert.equal(o.object, kind, `${type} object`);
    }
    if (type === 'message.created') {
      assert.match(o.subject, /\S/);
      assert.match(o.body, /\S/);
      assert.equal(o.unread, true);
    }
    if (type === 'message.created.truncated') {
      assert.ok(!('body' in o), `a truncated message has no body: ${JSON.stringify(o)}`);
      assert.match(o.subject, /\S/);
    }
  }
  const a = (await api('POST', '/v3/webhooks/mock-payload', { trigger_type: 'message.created' })).body.data;
  const b = (await api('POST', '/v3/webhooks/mock-payload', { trigger_type: 'message.created' })).body.data;
  assert.notEqual(a.id, b.id, 'each example has its own notification id');

  assertApiError(await api('POST', '/v3/webhooks/mock-payload', { trigger_type: 'message.nope' }), 400, /message\.nope/, 'unknown trigger');
  assertApiError(await api('POST', '/v3/webhooks/mock-payload', {}), 400, /trigger_type/, 'no trigger');
  assertApiError(await api('POST', '/v3/webhooks/mock-payload', '{"trigger_type":'), 400, /JSON/, 'broken JSON', 'api.invalid_request_payload');
});

test('POST /v3/webhooks/send-test-event: a mock notification POSTed to the URL, signed with "mock-webhook-secret"', async () => {
  const url = `${rcv.base}/${TAG}/test`;
  for (const type of ['grant.created', 'message.created']) {
    const before = rcv.get('test').posts.length;
    const res = await api('POST', '/v3/webhooks/send-test-event', { trigger_type: type, webhook_url: url });
    assert.equal(res.status, 200, `${type}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.data, 'success');
    const posts = rcv.get('test').posts.slice(before);
    assert.equal(posts.length, 1, `${type}: one POST, before the API answered`);
    const p = posts[0];
    assert.equal(p.signedWith, 'current', `${type}: X-Nylas-Signature ${p.sig} is the HMAC with "mock-webhook-secret"`);
    assert.equal(p.sig, hmacHex(MOCK_SECRET, p.raw), 'lowercase hex');
    assert.match(p.headers['content-type'], /^application\/json/);
    assert.equal(p.type, type);
    assert.equal(p.attempt, 1);
    assert.equal(p.json.specversion, '1.0');
    assert.equal(typeof p.object, 'object');
  }
  assertApiError(await api('POST', '/v3/webhooks/send-test-event', { trigger_type: 'grant.created', webhook_url: `${rcv.base}/${TAG}/down` }),
    400, /500/, 'a URL answering 500');
  assert.equal(rcv.get('down').posts.length, 1, 'the failing URL got the POST');
  assertApiError(await api('POST', '/v3/webhooks/send-test-event', { trigger_type: 'grant.created', webhook_url: `http://127.0.0.1:${await freePort()}/x` }),
    400, null, 'a URL nobody listens on');
  const n = rcv.get('test').posts.length;
  assertApiError(await api('POST', '/v3/webhooks/send-test-event', { trigger_type: 'message.nope', webhook_url: url }), 400, /message\.nope/, 'unknown trigger');
  assertApiError(await api('POST', '/v3/webhooks/send-test-event', { trigger_type: 'grant.created' }), 400, /webhook_url/, 'no webhook_url');
  assert.equal(rcv.get('test').posts.length, n, 'refused requests POST nothing');
});

test('a mailbox grant connected after the webhook exists → grant.created', async () => {
  const t0 = nowSec();
  grant = await connectMailbox(srv, nylas, CAROL);
  inboxId = (await nylas.folders.list({ identifier: grant.id })).data.find((f) => f.name === 'INBOX')?.id;
  assert.ok(inboxId, 'INBOX folder');
  const p = await rcv.wait('main', 'grant.created', (o) => o.grant_id === grant.id);
  const n = p.json;
  assert.equal(n.specversion, '1.0');
  assert.equal(n.source, '/nylas/system');
  assert.match(n.id, /^[0-9a-f-]{36}$/);
  assert.ok(n.time >= t0 - 1 && n.time <= nowSec() + 1, `time ${n.time}`);
  assert.equal(n.webhook_delivery_attempt, 1);
  assert.equal(n.data.application_id, srv.appId);
  assert.equal(n.data.grant_id, grant.id);
  assert.equal(p.object.code, 25012);
  assert.equal(p.object.provider, 'imap');
  assert.equal(p.object.email, CAROL);
  assert.match(p.headers['content-type'], /^application\/json/);
  assert.equal(p.sig, hmacHex(hooks.main.webhookSecret, p.raw), 'X-Nylas-Signature is lowercase hex HMAC-SHA256 of the body');
});

test('mail delivered into carol\'s INBOX → message.created with the full message (and nothing for mail the initial sync found)', async () => {
  const t0 = nowSec();
  await inject('M1', 'Hello from the first webhook message', '<p>Hello from the first <b>webhook</b> message</p>');
  const p = await rcv.wait('main', 'message.created', isMsg('M1'));
  const o = p.object;
  assert.equal(p.json.source, '/imap/emails/realtime');
  assert.equal(p.json.data.grant_id, grant.id);
  assert.equal(o.object, 'message');
  assert.equal(o.grant_id, grant.id);
  assert.equal(o.subject, subjects.M1);
  assert.deepEqual(o.from, [{ name: 'Hook Sender', email: `sender.${TAG}@example.org` }]);
  assert.deepEqual(o.to.map((x) => x.email), [CAROL]);
  assert.match(o.body, /<p>Hello from the first <b>webhook<\/b> message<\/p>/, 'the html body');
  assert.match(o.snippet, /Hello from the first webhook message/);
  assert.deepEqual(o.folders, [inboxId]);
  assert.equal(o.unread, true);
  assert.equal(o.starred, false);
  assert.ok(o.date >= t0 - 5 && o.date <= nowSec() + 1, `date ${o.date}`);
  // data.object is the object the REST API returns.
  const rest = await api('GET', `/v3/grants/${grant.id}/messages/${o.id}`);
  assert.equal(rest.status, 200);
  assert.deepEqual(o, rest.body.data, 'data.object equals GET /messages/{id}');
  const sdk = await nylas.messages.find({ identifier: grant.id, messageId: o.id });
  assert.equal(sdk.data.subject, o.subject);

  // The other webhook subscribed to message.created got it too, under its own notification id.
  const q = await rcv.wait('paused', 'message.created', isMsg('M1'));
  assert.notEqual(q.id, p.id, 'each webhook has its own notification id');
  assert.deepEqual(q.object, o);
  assert.match(q.url, new RegExp(`\\?run=${TAG}&x=1$`), 'POSTed to the URL with its query');
  assert.equal(q.sig, hmacHex(hooks.paused.webhookSecret, q.raw));

  // compressed_delivery: gzip body, Content-Encoding gzip, the signature covers the compressed bytes.
  const z = await rcv.wait('gzip', 'message.created', isMsg('M1'));
  assert.equal(z.headers['content-encoding'], 'gzip');
  assert.deepEqual([...z.raw.subarray(0, 2)], [0x1f, 0x8b], 'gzip magic');
  assert.equal(z.sig, hmacHex(hooks.gzip.webhookSecret, z.raw), 'signature of the compressed bytes');
  assert.deepEqual(z.object, o);

  for (const name of ['main', 'paused', 'gzip']) {
    const pre = rcv.notifications(name).filter((x) => x.object?.subject === subjects.PRE);
    assert.deepEqual(pre.map((x) => x.type), [], `${name}: PRE was found by the initial sync and notifies nothing`);
  }
});

test('a flag set and cleared by another IMAP client → message.updated', async () => {
  const m1 = (await rcv.wait('main', 'message.created', isMsg('M1'))).object;
  await flag('M1', '+');
  const p = await rcv.wait('main', 'message.updated', (o) => o.id === m1.id && o.starred === true);
  assert.equal(p.object.subject, subjects.M1);
  assert.equal(p.object.grant_id, grant.id);
  assert.match(p.object.body, /first <b>webhook<\/b>/, 'message.updated carries the full message too');
  assert.equal(p.attempt, 1);
});

test('webhooks.update: description and trigger types; bad values are refused; paused webhooks receive nothing until active again', async () => {
  const id = hooks.paused.id;
  const upd = (requestBody) => nylas.webhooks.update({ webhookId: id, requestBody });
  let h = (await upd({ description: `${TAG} paused, renamed` })).data;
  assert.deepEqual(h, { ...withoutSecret(hooks.paused), description: `${TAG} paused, renamed`, updatedAt: h.updatedAt });
  assert.ok(h.updatedAt >= hooks.paused.updatedAt);
  h = (await upd({ triggerTypes: ['message.created', 'grant.deleted'] })).data;
  assert.deepEqual(h.triggerTypes, ['grant.deleted', 'message.created']);
  assert.equal(h.description, `${TAG} paused, renamed`, 'fields left out stay');
  assert.deepEqual((await nylas.webhooks.find({ webhookId: id })).data, h, 'find shows the update');

  const bad = (requestBody, message, label) => expectApiError(upd(requestBody), { status: 400, type: 'invalid_request_error', message }, label);
  await bad({ status: 'failed' }, /status/, 'status failed');
  await bad({ status: 'bogus' }, /status/, 'status bogus');
  await bad({ triggerTypes: ['message.nope'] }, /message\.nope/, 'unknown trigger');
  await bad({ triggerTypes: [] }, /trigger_types/, 'no trigger');
  await bad({ webhookUrl: `${rcv.base}/${TAG}/wrong` }, /challenge/, 'a new URL that does not echo the challenge');
  assert.deepEqual((await nylas.webhooks.find({ webhookId: id })).data, h, 'refused updates change nothing');
  await expectApiError(nylas.webhooks.update({ webhookId: 'nosuchwebhook', requestBody: { description: 'x' } }),
    { status: 404, type: 'not_found_error' }, 'update unknown');

  // Pause: M2 reaches main, not the paused webhook.
  h = (await upd({ status: 'pause' })).data;
  assert.equal(h.status, 'pause');
  assert.ok(h.statusUpdatedAt >= hooks.paused.statusUpdatedAt);
  assert.equal((await nylas.webhooks.find({ webhookId: id })).data.status, 'pause');
  const pausedAt = Date.now();
  const deliveriesBefore = (await api('GET', `/v3/webhooks/${id}/deliveries`)).body.data.length;
  await inject('M2');
  await rcv.wait('main', 'message.created', isMsg('M2'));
  await rcv.wait('gzip', 'message.created', isMsg('M2'));
  await sleep(2000);
  const during = rcv.get('paused').posts.filter((p) => p.at >= pausedAt);
  assert.deepEqual(during.map((p) => [p.type, p.object?.subject]), [], 'a paused webhook receives nothing');
  assert.equal((await api('GET', `/v3/webhooks/${id}/deliveries`)).body.data.length, deliveriesBefore, 'nor is anything queued for it');

  // Active again: M3 arrives; M2 (from the pause) never does.
  h = (await upd({ status: 'active' })).data;
  assert.equal(h.status, 'active');
  await inject('M3');
  const m3 = await rcv.wait('paused', 'message.created', isMsg('M3'));
  assert.equal(m3.attempt, 1);
  await rcv.wait('main', 'message.created', isMsg('M3'));
  await sleep(1000);
  assert.deepEqual(rcv.notifications('paused').filter(isMsgPost('M2')).map((p) => p.type), [], 'what happened during the pause is not replayed');
});

const isMsgPost = (name) => (p) => p.object?.subject === subjects[name];

test('webhooks.rotateSecret: the old secret stops, the next delivery is signed with the new one (also PUT …/rotate-secret)', async () => {
  const id = hooks.main.id;
  const old = hooks.main.webhookSecret;
  const m1 = (await rcv.wait('main', 'message.created', isMsg('M1'))).object;

  rcv.expectSecret('main');
  const res = await nylas.webhooks.rotateSecret({ webhookId: id });
  const fresh = res.data.webhookSecret;
  secrets.push(fresh);
  rcv.setSecret('main', fresh);
  assert.equal(typeof fresh, 'string');
  assert.ok(fresh.length >= 16);
  assert.notEqual(fresh, old);
  assert.equal(res.data.id, id);
  assert.deepEqual(res.data.triggerTypes, MAIN_TRIGGERS);
  assert.ok(!('webhookSecret' in (await nylas.webhooks.find({ webhookId: id })).data), 'find shows no secret after rotate');

  const t = Date.now();
  await flag('M1', '-');
  const p = await rcv.wait('main', 'message.updated', (o, post) => o.id === m1.id && o.starred === false && post.at >= t);
  assert.equal(p.sig, hmacHex(fresh, p.raw), 'signed with the new secret');
  assert.notEqual(p.sig, hmacHex(old, p.raw), 'not with the old one');

  // Python's form of the rotate: PUT /v3/webhooks/{id}/rotate-secret.
  rcv.expectSecret('main');
  const put = await api('PUT', `/v3/webhooks/${id}/rotate-secret`, {});
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const third = put.body.data.webhook_secret;
  secrets.push(third);
  rcv.setSecret('main', third);
  assert.ok(typeof third === 'string' && third !== fresh && third !== old, 'a new secret');
  assert.equal(put.body.data.id, id);
  const t2 = Date.now();
  await flag('M1', '+');
  const p2 = await rcv.wait('main', 'message.updated', (o, post) => o.id === m1.id && o.starred === true && post.at >= t2);
  assert.equal(p2.sig, hmacHex(third, p2.raw), 'signed with the newest secret');
  assert.ok(rcv.get('main').posts.filter((x) => x.at >= t).every((x) => x.signedWith === 'current'), 'no delivery after a rotate used a retired secret');

  await expectApiError(nylas.webhooks.rotateSecret({ webhookId: 'nosuchwebhook' }), { status: 404, type: 'not_found_error' }, 'rotate unknown');
  assert.equal((await api('PUT', '/v3/webhooks/nosuchwebhook/rotate-secret', {})).status, 404);
});

test('GET /v3/webhooks/{id}/deliveries: every notification the receiver got, with its attempts; replay sends one again under the same id', async () => {
  const id = hooks.main.id;
  const res = await api('GET', `/v3/webhooks/${id}/deliveries`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const ds = res.body.data;
  const byId = new Map(ds.map((d) => [d.id, d]));
  const got = rcv.notifications('main');
  assert.ok(got.length >= 6, `main got ${got.length} notifications`);
  for (const p of got) {
    const d = byId.get(p.id);
    assert.ok(d, `delivery ${p.id} (${p.type}) is listed`);
    assert.equal(d.type, p.type);
    assert.equal(d.grant_id, grant.id);
    assert.equal(d.state, 'delivered');
    assert.equal(d.attempts.length, 1, JSON.stringify(d));
    const a = d.attempts[0];
    assert.equal(a.attempt, 1);
    assert.equal(a.status_code, 200);
    assert.ok(Number.isInteger(a.latency_ms) && a.latency_ms >= 0, `latency ${a.latency_ms}`);
    assert.ok(!a.error, `no error: ${a.error}`);
    assert.ok(Number.isInteger(d.created_at) && d.finished_at >= d.created_at, JSON.stringify(d));
    assert.ok(!('next_attempt_at' in d), 'a delivered notification has no next attempt');
  }
  assert.equal(ds.length, got.length, 'nothing listed that the receiver did not get');
  for (let i = 1; i < ds.length; i++) assert.ok(ds[i - 1].created_at >= ds[i].created_at, 'newest first');
  const two = await api('GET', `/v3/webhooks/${id}/deliveries?limit=2`);
  assert.deepEqual(two.body.data.map((d) => d.id), ds.slice(0, 2).map((d) => d.id), 'limit=2: the two newest');
  assertApiError(await api('GET', `/v3/webhooks/${id}/deliveries?limit=0`), 400, /limit/, 'limit=0');
  assertApiError(await api('GET', `/v3/webhooks/${id}/deliveries?limit=abc`), 400, /limit/, 'limit=abc');
  assertApiError(await api('GET', '/v3/webhooks/nosuchwebhook/deliveries'), 404, null, 'deliveries of an unknown webhook');

  // Replay M1's message.created: the same notification again, attempt 2.
  const first = await rcv.wait('main', 'message.created', isMsg('M1'));
  replayed = first.id;
  const r = await api('POST', `/v3/webhooks/${id}/deliveries/${first.id}/replay`, {});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const again = await rcv.wait('main', 'message.created', (o, p) => p.id === first.id && p.attempt === 2);
  assert.deepEqual({ ...again.json, webhook_delivery_attempt: 1 }, first.json, 'the same notification, only the attempt number differs');
  await waitFor(async () => (await api('GET', `/v3/webhooks/${id}/deliveries`)).body.data.find((d) => d.id === first.id)?.attempts.length === 2,
    { timeout: 5000, what: 'the replay in the delivery\'s attempts' });
  const pausedDelivery = (await api('GET', `/v3/webhooks/${hooks.paused.id}/deliveries`)).body.data[0];
  assertApiError(await api('POST', `/v3/webhooks/${id}/deliveries/${pausedDelivery.id}/replay`, {}), 404, null, 'replay of another webhook\'s delivery');
  assertApiError(await api('POST', `/v3/webhooks/${id}/deliveries/nosuchdelivery/replay`, {}), 404, null, 'replay of an unknown delivery');
});

test('webhooks.destroy: gone from find and list, and receives nothing more', async () => {
  // First the gzip webhook moves: the new URL must answer the challenge too.
  const moved = (await nylas.webhooks.update({ webhookId: hooks.gzip.id, requestBody: { webhookUrl: `${rcv.base}/${TAG}/gzip2` } })).data;
  assert.equal(moved.webhookUrl, `${rcv.base}/${TAG}/gzip2`);
  assert.equal(rcv.get('gzip2').challenges.length, 1, 'the new URL got the challenge');
  assert.equal(moved.compressedDelivery, true);
  rcv.setSecret('gzip2', hooks.gzip.webhookSecret);
  for (const name of ['paused', 'gzip']) {
    const res = await nylas.webhooks.destroy({ webhookId: hooks[name].id });
    assert.equal(res.data?.status, 'success', JSON.stringify(res));
    assert.match(res.requestId, /\S/);
    await expectApiError(nylas.webhooks.find({ webhookId: hooks[name].id }), { status: 404, type: 'not_found_error' }, `find ${name} after destroy`);
    await expectApiError(nylas.webhooks.destroy({ webhookId: hooks[name].id }), { status: 404, type: 'not_found_error' }, `destroy ${name} again`);
  }
  assert.deepEqual((await nylas.webhooks.list()).data.map((h) => h.id), [hooks.main.id]);
  const goneAt = Date.now();
  await inject('M4');
  await rcv.wait('main', 'message.created', isMsg('M4'));
  await sleep(1500);
  for (const name of ['paused', 'gzip', 'gzip2']) {
    assert.deepEqual(rcv.get(name).posts.filter((p) => p.at >= goneAt).map((p) => p.type), [], `${name} receives nothing after destroy`);
  }
});

test('the grant destroyed → grant.deleted', async () => {
  const t = Date.now();
  await nylas.grants.destroy({ grantId: grant.id });
  const p = await rcv.wait('main', 'grant.deleted', (o) => o.grant_id === grant.id);
  assert.equal(p.object.code, 25013);
  assert.equal(p.object.email, CAROL);
  assert.equal(p.object.provider, 'imap');
  assert.equal(p.json.source, '/nylas/system');
  assert.equal(p.json.data.application_id, srv.appId);
  assert.equal(p.attempt, 1);
  await sleep(1000);
  assert.deepEqual(rcv.get('paused').posts.filter((x) => x.at >= t).map((x) => x.type), [], 'the destroyed webhook that subscribed to grant.deleted got nothing');
});

// Both found by this file and fixed: HTML-escaped objects, and a
// message.updated after every message.created.
test('message bodies go out as they are: no \\u003c for every < of an HTML body', async () => {
  const p = await rcv.wait('main', 'message.created', isMsg('M1'));
  const raw = p.raw.toString('utf8');
  assert.ok(raw.includes('<p>Hello from the first <b>webhook</b> message</p>'), `raw body: ${raw.slice(raw.indexOf('"body"'), raw.indexOf('"body"') + 120)}`);
});

test('a new message notifies message.created only: no message.updated when nothing changed', async () => {
  const never = ['M2', 'M3', 'M4'].map((n) => subjects[n]); // never flagged or otherwise changed
  const updates = rcv.notifications('main').filter((p) => p.type === 'message.updated' && never.includes(p.object?.subject));
  assert.deepEqual(updates.map((p) => p.object.subject), [], 'message.updated for messages that never changed');
});

test('the receiver: every signature verified, every notification delivered once, only subscribed types', async () => {
  assert.deepEqual(rcv.problems, []);
  const counts = Object.fromEntries([...rcv.byId].filter(([id, n]) => n !== (id === replayed ? 2 : 1)));
  assert.deepEqual(counts, {}, 'notification ids delivered more (or less) than once');
  const subscribed = { main: MAIN_TRIGGERS, paused: ['message.created'], gzip: ['message.created'], gzip2: ['message.created'], test: ['grant.created', 'message.created'] };
  for (const [name, types] of Object.entries(subscribed)) {
    const posts = rcv.notifications(name);
    assert.deepEqual(posts.filter((p) => !types.includes(p.type)).map((p) => p.type), [], `${name}: only subscribed types`);
    const extra = posts.filter((p) => p.attempt !== (p.id === replayed && p !== posts.find((x) => x.id === replayed) ? 2 : 1));
    assert.deepEqual(extra.map((p) => [p.type, p.attempt]), [], `${name}: every notification arrived at the first attempt`);
  }
  assert.deepEqual(rcv.get('other').posts.map((p) => [p.type, p.object?.grant_id]), [],
    'the other application\'s webhook (all triggers) got none of this application\'s notifications');
});
