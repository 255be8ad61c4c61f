// Connectors through nylas.connectors.* (create, list, find, update via PUT,
// destroy) against a real orchard serve.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrchard, stopAndCheck, client, expectApiError } from '../harness.js';

let srv;
let nylas;

before(async () => {
  srv = await startOrchard({ name: 'connectors' });
  nylas = client(srv);
});

after(async () => {
  if (!srv) return;
  await stopAndCheck(srv);
  if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
});

test('a new application has no connectors', async () => {
  const res = await nylas.connectors.list({});
  assert.deepEqual(res.data, []);
  assert.match(res.requestId, /\S/);
});

test('create icloud and imap connectors → 201 with default names', async () => {
  const icloud = await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  assert.equal(icloud.data.provider, 'icloud');
  assert.equal(icloud.data.name, 'iCloud');
  assert.deepEqual(icloud.data.scope, []);
  assert.deepEqual(icloud.data.settings, {});
  assert.match(icloud.requestId, /\S/);

  const imap = await nylas.connectors.create({ requestBody: { provider: 'imap', name: 'Self-hosted IMAP' } });
  assert.equal(imap.data.provider, 'imap');
  assert.equal(imap.data.name, 'Self-hosted IMAP');

  // The SDK hides the status; check it on the wire once.
  const raw = await fetch(`${srv.url}/v3/connectors`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${srv.apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ provider: 'imap' }),
  });
  assert.equal(raw.status, 409, 'duplicate create over plain HTTP');
});

test('creating a duplicate connector → 409 naming the update route', async () => {
  await expectApiError(
    nylas.connectors.create({ requestBody: { provider: 'icloud' } }),
    { status: 409, type: 'conflict_error', message: [/icloud connector already exists/, /\/v3\/connectors\/icloud/] },
    'duplicate icloud',
  );
});

test('list returns both connectors with offset pagination', async () => {
  const all = await nylas.connectors.list({});
  assert.deepEqual(all.data.map((c) => c.provider).sort(), ['icloud', 'imap']);

  const first = await nylas.connectors.list({ queryParams: { limit: 1 } });
  assert.equal(first.data.length, 1);
  const second = await nylas.connectors.list({ queryParams: { limit: 1, offset: 1 } });
  assert.equal(second.data.length, 1);
  assert.notEqual(first.data[0].provider, second.data[0].provider);
  const past = await nylas.connectors.list({ queryParams: { limit: 5, offset: 2 } });
  assert.deepEqual(past.data, []);
});

test('find returns one connector', async () => {
  const c = await nylas.connectors.find({ provider: 'imap' });
  assert.equal(c.data.provider, 'imap');
  assert.equal(c.data.name, 'Self-hosted IMAP');
});

test('update (the SDK sends PUT) changes only the fields given', async () => {
  const upd = await nylas.connectors.update({ provider: 'icloud', requestBody: { name: 'Apple Mail', scope: ['mail'] } });
  assert.equal(upd.data.provider, 'icloud');
  assert.equal(upd.data.name, 'Apple Mail');
  assert.deepEqual(upd.data.scope, ['mail']);

  const upd2 = await nylas.connectors.update({ provider: 'icloud', requestBody: { settings: { note: 'x' } } });
  assert.equal(upd2.data.name, 'Apple Mail', 'name kept when not sent');
  assert.deepEqual(upd2.data.scope, ['mail'], 'scope kept when not sent');
  assert.deepEqual(upd2.data.settings, { note: 'x' });

  const found = await nylas.connectors.find({ provider: 'icloud' });
  assert.equal(found.data.name, 'Apple Mail', 'update persisted');
});

test('update with an empty name → 400', async () => {
  await expectApiError(
    nylas.connectors.update({ provider: 'icloud', requestBody: { name: '  ' } }),
    { status: 400, type: 'invalid_request_error', message: /name must not be empty/ },
    'empty name',
  );
});

test('update cannot change the provider → 400', async () => {
  await expectApiError(
    nylas.connectors.update({ provider: 'imap', requestBody: { provider: 'icloud' } }),
    { status: 400, type: 'invalid_request_error', message: /provider of a connector cannot change/ },
    'provider change',
  );
});

test('create with an unknown provider → 400 listing the supported ones', async () => {
  await expectApiError(
    nylas.connectors.create({ requestBody: { provider: 'google' } }),
    { status: 400, type: 'invalid_request_error', message: [/unknown provider "google"/, /icloud/, /imap/] },
    'google connector',
  );
});

test('destroy, then find → 404; destroy again → 404', async () => {
  const del = await nylas.connectors.destroy({ provider: 'imap' });
  assert.match(del.requestId, /\S/);

  await expectApiError(
    nylas.connectors.find({ provider: 'imap' }),
    { status: 404, type: 'not_found_error', message: /connector imap not found/ },
    'find after destroy',
  );

  await expectApiError(nylas.connectors.destroy({ provider: 'imap' }), { status: 404, type: 'not_found_error' }, 'destroy twice');
  await expectApiError(
    nylas.connectors.update({ provider: 'imap', requestBody: { name: 'x' } }),
    { status: 404, type: 'not_found_error' },
    'update after destroy',
  );

  const list = await nylas.connectors.list({});
  assert.deepEqual(list.data.map((c) => c.provider), ['icloud']);
});

test('a destroyed connector can be created again', async () => {
  const again = await nylas.connectors.create({ requestBody: { provider: 'imap' } });
  assert.equal(again.data.provider, 'imap');
  assert.equal(again.data.name, 'IMAP', 'a new connector, not the old one');
});
