// nylas.messages.list/find on mail Orchard synced from carol's mailbox:
// every list filter, select, fields (headers, raw MIME), cursor pagination
// with the SDK's iterator, native IMAP search, the initial sync and new
// mail over IDLE, and 400s for bad query parameters.
//
// The run's messages (all with the run tag in Subject and Message-ID):
//   PRE       APPENDed to INBOX before the grant exists (initial sync), \Seen, now-5h
//   ARCH      APPENDed to Archive before the grant exists, now-4h
//   P1..P7    APPENDed after the initial sync, now-3h + N minutes;
//             P2 \Seen, P3 \Seen \Flagged, P5 \Flagged
//   A, B, C   delivered by Postfix after the initial sync, unread
// The server polls other folders only every 60 s (the default), so mail
// that shows up within seconds came through IDLE on INBOX.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startOrchard, stopAndCheck, client, expectApiError, connectMailbox, smtpInject, buildMessage, encodeWord, runTag,
  imapSession, waitFor, listAll, removeTagged, testEnv, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test';
const BOB = 'bob@example.test';
const TAG = runTag('msg');
const HOUR = 3600e3;
const NOTES = 'some notes\r\n.a line starting with a dot\r\n..and two\r\n.\r\nend';

let srv;
let nylas;
let grant;
let folders; // name → folder
let inbox;
let archive;
const raws = {}; // name → the RFC 5322 text handed to Postfix / APPEND
const byName = {}; // name → message as listed
const nameOf = {}; // id → name
let arrivalMs;
let initialIds; // ids listed right after the initial sync
let injectedAt; // Unix seconds just before A, B, C were handed to Postfix
const stamp = (d) => Math.floor(d.getTime() / 1000);

const addr = (local, domain) => `${local}.${TAG}@${domain}`;
const ANN = addr('ann', 'a.example');
const BO = addr('bo', 'b.example');
const TEAM = addr('team', 't.example');
const OTHER = addr('other', 'o.example');
const CC = addr('cc', 'c.example');
const PAGER = addr('pager', 'p.example');

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const pageDate = (n) => new Date(now.getTime() - 3 * HOUR + n * 60e3);

function mail(name, fields) {
  raws[name] = buildMessage({ messageId: `<${name.toLowerCase()}.${TAG}@sdk.test>`, ...fields });
  return raws[name];
}

const list = (queryParams = {}) => nylas.messages.list({ identifier: grant.id, queryParams: { subject: TAG, limit: 50, ...queryParams } });
/** The run's message names a list returned, in order. */
const names = (res) => res.data.map((m) => nameOf[m.id] ?? `foreign:${m.subject}`);
const sorted = (a) => [...a].sort();

before(async () => {
  srv = await startOrchard({ name: 'messages', apps: ['sdk-test', 'other-app'], env: MAIL_ENV });
  nylas = client(srv);

  const im = await imapSession(CAROL);
  try {
    await im.append('INBOX', mail('PRE', { from: PAGER, to: CAROL, subject: `${TAG} presync`, date: new Date(now - 5 * HOUR), text: 'synced at start' }),
      { date: new Date(now - 5 * HOUR), flags: ['\\Seen'] });
    await im.append('Archive', mail('ARCH', { from: PAGER, to: CAROL, subject: `${TAG} archived`, date: new Date(now - 4 * HOUR), text: 'in the archive' }),
      { date: new Date(now - 4 * HOUR) });
    grant = await connectMailbox(srv, nylas, CAROL);
    initialIds = new Set((await list()).data.map((m) => m.id));

    const flags = { 2: ['\\Seen'], 3: ['\\Seen', '\\Flagged'], 5: ['\\Flagged'] };
    for (let n = 1; n <= 7; n++) {
      const date = pageDate(n);
      await im.append('INBOX', mail(`P${n}`, { from: { name: 'Pager', email: PAGER }, to: CAROL, subject: `${TAG} page ${n}`, date, text: `page message ${n}` }),
        { date, flags: flags[n] ?? [] });
    }
  } finally {
    await im.close();
  }

  mail('A', {
    from: { name: 'Ann Tester', email: ANN }, to: CAROL, cc: CC, subject: `${TAG} alpha Grüße`,
    text: 'Hello Carol,\nbye', html: '<p>Hello <b>Carol</b></p>',
  });
  mail('B', {
    from: BO, to: TEAM, subject: `${TAG} beta 100%_off with attachment`, text: 'see attached',
    // 7bit, so that lines starting with dots reach SMTP as they are (dot-stuffing).
    attachments: [{ contentType: 'text/plain; charset=UTF-8', disposition: 'attachment; filename="notes.txt"', encoding: '7bit', data: Buffer.from(NOTES) }],
  });
  mail('C', { from: ANN, to: [TEAM, OTHER], subject: `${TAG} gamma`, text: 'third' });
  injectedAt = Math.floor(Date.now() / 1000);
  for (const n of ['A', 'B', 'C']) await smtpInject({ from: 'sender@example.org', rcpts: [CAROL], data: raws[n] });
  const t0 = Date.now(); // Postfix accepted all three
  let seen = [];
  await waitFor(async () => {
    seen = (await list()).data;
    return seen.length >= Object.keys(raws).length;
  }, { timeout: 15000, what: () => `all ${Object.keys(raws).length} messages; listed: ${seen.map((m) => m.subject)}` });
  arrivalMs = Date.now() - t0;

  const withHeaders = await listAll(nylas.messages, { identifier: grant.id, queryParams: { subject: TAG, limit: 200, fields: 'include_basic_headers' } });
  for (const m of withHeaders.items) {
    const mid = m.headers?.find((h) => h.name.toLowerCase() === 'message-id')?.value ?? '';
    const name = new RegExp(`^<([a-z0-9]+)\\.${TAG}@sdk\\.test>$`).exec(mid)?.[1]?.toUpperCase();
    assert.ok(name, `message ${m.id} (${m.subject}) has Message-ID ${JSON.stringify(mid)}`);
    assert.equal(byName[name], undefined, `${name} listed twice`);
    const { headers, ...plain } = m;
    byName[name] = plain;
    nameOf[m.id] = name;
  }
  assert.deepEqual(sorted(Object.keys(byName)), sorted(Object.keys(raws)), 'every message of the run was synced once');

  folders = Object.fromEntries((await nylas.folders.list({ identifier: grant.id })).data.map((f) => [f.name, f]));
  inbox = folders.INBOX;
  archive = folders.Archive;
  assert.ok(inbox && archive, `INBOX and Archive in ${Object.keys(folders)}`);
});

after(async () => {
  if (srv) {
    await stopAndCheck(srv);
    if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
  }
  await removeTagged(CAROL, TAG, ['INBOX', 'Archive', 'Deleted Messages']);
});

test('initial sync: messages already in INBOX and Archive are listed as soon as initial_sync_done, with flags and INTERNALDATE', async () => {
  assert.ok(initialIds.has(byName.PRE.id) && initialIds.has(byName.ARCH.id), 'PRE and ARCH listed right after the initial sync');
  assert.equal(byName.ARCH.date, stamp(new Date(now - 4 * HOUR)));
  assert.equal(byName.ARCH.unread, true);
  const pre = byName.PRE;
  assert.equal(pre.subject, `${TAG} presync`);
  assert.equal(pre.unread, false, '\\Seen → unread false');
  assert.equal(pre.starred, false);
  assert.equal(pre.date, stamp(new Date(now - 5 * HOUR)), 'date is the INTERNALDATE');
  assert.deepEqual(pre.folders, [inbox.id]);
});

test('new mail after the initial sync appears within a few seconds (IDLE)', () => {
  assert.ok(arrivalMs < 5000, `A, B, C took ${arrivalMs} ms from Postfix's 250 to the API`);
  for (const n of ['A', 'B', 'C']) {
    const m = byName[n];
    assert.equal(m.unread, true, `${n} unread`);
    assert.ok(m.date >= injectedAt - 1 && m.date <= Math.ceil(Date.now() / 1000), `${n} date ${m.date} ~ delivery time ${injectedAt}`);
  }
});

test('message object: decoded subject, participants, folders, body, snippet, thread_id', async () => {
  const a = byName.A;
  assert.equal(a.object, 'message');
  assert.equal(a.grantId, grant.id);
  assert.match(a.id, /^[a-z0-9]+$/);
  assert.equal(a.subject, `${TAG} alpha Grüße`, 'RFC 2047 subject decoded');
  assert.deepEqual(a.from, [{ name: 'Ann Tester', email: ANN }]);
  assert.deepEqual(a.to.map((p) => p.email), [CAROL]);
  assert.deepEqual(a.cc.map((p) => p.email), [CC]);
  assert.deepEqual(a.bcc, []);
  assert.deepEqual(a.replyTo, []);
  assert.deepEqual(a.folders, [inbox.id]);
  assert.equal(a.starred, false);
  assert.match(a.body, /Hello <b>Carol<\/b>/, 'the html alternative is the body');
  assert.match(a.snippet, /Hello Carol/);
  assert.ok(a.snippet.length <= 100);
  assert.match(a.threadId, /\S/);
  assert.deepEqual(a.attachments, []);
  assert.deepEqual(a.metadata, {});
  assert.deepEqual(byName.ARCH.folders, [archive.id]);
  assert.equal(byName.B.attachments.length, 1);
  assert.equal(byName.B.attachments[0].filename, 'notes.txt');
  assert.equal(byName.B.attachments[0].size, NOTES.length);
});

test('list: subject filter is a case-insensitive substring; % and _ are literal', async () => {
  assert.deepEqual(names(await list({ subject: `${TAG} alpha` })), ['A']);
  assert.deepEqual(names(await list({ subject: `${TAG} beta 100%_off` })), ['B']);
  assert.deepEqual(names(await list({ subject: `${TAG} beta 1_0%` })), [], '_ and % are no wildcards');
  assert.deepEqual(names(await list({ subject: `${TAG} ALPHA grüße` })), ['A']);
  assert.deepEqual(names(await list({ subject: `${TAG} nothing like this` })), []);
  assert.equal((await list()).data.length, 12, 'subject=TAG: all 12 of the run');
});

test('list: from, to, cc (repeated params) and any_email (comma-joined by the SDK)', async () => {
  assert.deepEqual(sorted(names(await list({ from: [ANN] }))), ['A', 'C']);
  assert.deepEqual(sorted(names(await list({ from: [ANN, BO] }))), ['A', 'B', 'C'], 'from=a&from=b: either');
  assert.deepEqual(sorted(names(await list({ from: [ANN.toUpperCase()] }))), ['A', 'C'], 'addresses compare case-insensitively');
  assert.deepEqual(sorted(names(await list({ to: [TEAM] }))), ['B', 'C']);
  assert.deepEqual(names(await list({ to: [OTHER] })), ['C']);
  assert.deepEqual(names(await list({ cc: [CC] })), ['A']);
  assert.deepEqual(names(await list({ to: [ANN] })), [], 'ann only sent');
  assert.deepEqual(names(await list({ anyEmail: [CC] })), ['A'], 'any_email matches cc');
  assert.deepEqual(sorted(names(await list({ anyEmail: [BO, OTHER] }))), ['B', 'C'], 'any_email=a,b: either');
  assert.deepEqual(names(await list({ from: [ANN], to: [OTHER] })), ['C'], 'filters combine with AND');
});

test('list: unread, starred and has_attachment', async () => {
  assert.deepEqual(sorted(names(await list({ unread: true }))), ['A', 'ARCH', 'B', 'C', 'P1', 'P4', 'P5', 'P6', 'P7']);
  assert.deepEqual(sorted(names(await list({ unread: false }))), ['P2', 'P3', 'PRE'], 'unread=false: none of the new mail');
  assert.deepEqual(sorted(names(await list({ starred: true }))), ['P3', 'P5'], '\\Flagged → starred');
  assert.equal((await list({ starred: false })).data.length, 10);
  assert.deepEqual(names(await list({ hasAttachment: true })), ['B']);
  assert.equal((await list({ hasAttachment: false })).data.length, 11);
  assert.deepEqual(names(await list({ unread: true, starred: true })), ['P5']);
  assert.equal(byName.P3.starred, true);
  assert.equal(byName.P3.unread, false);
});

test('list: received_after / received_before (Unix seconds)', async () => {
  const mid4 = stamp(pageDate(4)) + 30;
  assert.deepEqual(names(await list({ subject: `${TAG} page`, receivedAfter: mid4 })), ['P7', 'P6', 'P5']);
  assert.deepEqual(sorted(names(await list({ receivedBefore: mid4 }))), ['ARCH', 'P1', 'P2', 'P3', 'P4', 'PRE']);
  assert.deepEqual(names(await list({ receivedAfter: stamp(pageDate(2)) + 30, receivedBefore: stamp(pageDate(5)) - 30 })), ['P4', 'P3']);
  assert.deepEqual(sorted(names(await list({ receivedAfter: injectedAt - 2 }))), ['A', 'B', 'C']);
});

test('list: in= folder id, INBOX by name, Archive; thread_id', async () => {
  const inInbox = names(await list({ in: [inbox.id] }));
  assert.equal(inInbox.length, 11);
  assert.ok(!inInbox.includes('ARCH'));
  assert.deepEqual(names(await list({ in: ['INBOX'] })), inInbox, 'in=INBOX by name');
  assert.deepEqual(names(await list({ in: [archive.id] })), ['ARCH']);
  assert.deepEqual(names(await list({ in: [folders.Junk.id] })), []);
  assert.deepEqual(names(await list({ in: ['no-such-folder'] })), [], 'an unknown folder matches nothing');
  assert.deepEqual(names(await list({ threadId: byName.C.threadId })), ['C']);
  assert.deepEqual(names(await list({ threadId: byName.C.threadId, unread: false })), []);
});

test('list: newest first; select=id,subject returns only those keys', async () => {
  const res = await list();
  const dates = res.data.map((m) => m.date);
  assert.deepEqual(dates, [...dates].sort((x, y) => y - x), 'date descending');
  assert.deepEqual(names(res).slice(-2), ['ARCH', 'PRE']);

  const sel = await list({ select: 'id,subject' });
  assert.equal(sel.data.length, 12);
  for (const m of sel.data) assert.deepEqual(Object.keys(m).sort(), ['id', 'subject']);
  assert.deepEqual(sel.data.map((m) => m.id), res.data.map((m) => m.id));
  const one = await nylas.messages.find({ identifier: grant.id, messageId: byName.A.id, queryParams: { select: 'id,subject' } });
  assert.deepEqual(one.data, { id: byName.A.id, subject: byName.A.subject });
});

async function pageThrough(extra, label) {
  const { items, pages } = await listAll(nylas.messages, { identifier: grant.id, queryParams: { subject: `${TAG} page`, limit: 3, ...extra } });
  assert.deepEqual(pages.map((p) => p.data.length), [3, 3, 1], `${label}: page sizes`);
  assert.ok(!pages.at(-1).nextCursor, `${label}: no next_cursor on the last page`);
  for (const p of pages.slice(0, -1)) assert.match(p.nextCursor ?? '', /\S/, `${label}: next_cursor on a full page`);
  assert.deepEqual(items.map((m) => nameOf[m.id]), ['P7', 'P6', 'P5', 'P4', 'P3', 'P2', 'P1'], `${label}: each once, newest first`);
}

test('pagination: limit 3 over 7 messages with the async iterator (three query shapes)', async () => {
  await pageThrough({}, 'subject only');
  await pageThrough({ in: [inbox.id] }, 'in=INBOX');
  await pageThrough({ from: [PAGER] }, 'from=pager');
});

test('pagination: next() and page_token by hand; limit ≥ count gives one page', async () => {
  const first = await nylas.messages.list({ identifier: grant.id, queryParams: { subject: `${TAG} page`, limit: 3 } });
  assert.deepEqual(first.data.map((m) => nameOf[m.id]), ['P7', 'P6', 'P5']);
  const second = await first.next();
  assert.deepEqual(second.value.data.map((m) => nameOf[m.id]), ['P4', 'P3', 'P2']);
  const manual = await nylas.messages.list({ identifier: grant.id, queryParams: { subject: `${TAG} page`, limit: 2, pageToken: first.nextCursor } });
  assert.deepEqual(manual.data.map((m) => nameOf[m.id]), ['P4', 'P3'], 'a cursor works with another limit');
  const all = await nylas.messages.list({ identifier: grant.id, queryParams: { subject: `${TAG} page`, limit: 7 } });
  assert.equal(all.data.length, 7);
  assert.ok(!all.nextCursor, 'no next_cursor when nothing follows');
});

test('fields=include_headers / include_basic_headers', async () => {
  const full = await nylas.messages.find({ identifier: grant.id, messageId: byName.A.id, queryParams: { fields: 'include_headers' } });
  const hs = full.data.headers;
  assert.ok(Array.isArray(hs), 'headers array');
  const get = (n) => hs.filter((h) => h.name.toLowerCase() === n.toLowerCase()).map((h) => h.value);
  assert.deepEqual(get('Message-ID'), [`<a.${TAG}@sdk.test>`]);
  assert.deepEqual(get('Subject'), [encodeWord(`${TAG} alpha Grüße`)], 'as sent: RFC 2047, not decoded');
  assert.match(get('Subject')[0], /^=\?UTF-8\?B\?/);
  assert.ok(get('Received').length >= 2, `the Received headers of Postfix and LMTP, duplicates kept: ${JSON.stringify(get('Received'))}`);
  for (const v of get('Received')) assert.ok(!/[\r\n]/.test(v), 'folded headers come unfolded');
  assert.deepEqual(get('Delivered-To'), [CAROL]);
  assert.equal(full.data.subject, byName.A.subject, 'the rest of the message is still there');

  const basic = await nylas.messages.find({ identifier: grant.id, messageId: byName.A.id, queryParams: { fields: 'include_basic_headers' } });
  assert.deepEqual(basic.data.headers.map((h) => h.name.toLowerCase()), ['message-id']);

  const plain = await nylas.messages.find({ identifier: grant.id, messageId: byName.A.id });
  assert.equal(plain.data.headers, undefined, 'no headers without fields');

  const listed = await list({ subject: `${TAG} gamma`, fields: 'include_headers' });
  assert.ok(listed.data[0].headers.some((h) => h.name.toLowerCase() === 'message-id' && h.value === `<c.${TAG}@sdk.test>`), 'list with include_headers');
});

test('fields=raw_mime: base64url of the message as delivered', async () => {
  const res = await nylas.messages.find({ identifier: grant.id, messageId: byName.A.id, queryParams: { fields: 'raw_mime' } });
  assert.deepEqual(Object.keys(res.data).sort(), ['grantId', 'id', 'object', 'rawMime']);
  assert.equal(res.data.id, byName.A.id);
  assert.equal(res.data.grantId, grant.id);
  assert.match(res.data.rawMime, /^[A-Za-z0-9_-]+=*$/, 'base64url alphabet');
  const raw = Buffer.from(res.data.rawMime, 'base64url').toString('utf8');
  assert.ok(raw.endsWith(raws.A), `the delivered message ends with what was sent:\n${raw.slice(0, 2000)}`);
  assert.match(raw.slice(0, raw.length - raws.A.length), /^Return-Path: /, 'only trace headers in front');
  const rawB = Buffer.from((await nylas.messages.find({ identifier: grant.id, messageId: byName.B.id, queryParams: { fields: 'raw_mime' } })).data.rawMime, 'base64url').toString('utf8');
  assert.ok(rawB.endsWith(raws.B), 'lines starting with dots come back as sent (dot-stuffing undone)');
  assert.match(rawB, /\r\n\.\.and two\r\n\.\r\nend/);

  const appended = await list({ subject: `${TAG} page 4`, fields: 'raw_mime' });
  assert.equal(appended.data.length, 1);
  assert.equal(Buffer.from(appended.data[0].rawMime, 'base64url').toString('utf8'), raws.P4, 'APPENDed message byte for byte');
});

test('search_query_native runs an IMAP SEARCH in the folder', async () => {
  const native = (q, extra = {}) => nylas.messages.list({ identifier: grant.id, queryParams: { searchQueryNative: q, limit: 50, ...extra } });
  assert.deepEqual(names(await native(`SUBJECT "${TAG} alpha"`, { in: ['INBOX'] })), ['A']);
  assert.deepEqual(names(await native(`SUBJECT "${TAG} alpha"`)), ['A'], 'INBOX by default');
  assert.deepEqual(sorted(names(await native(`FROM "${ANN}"`, { in: [inbox.id] }))), ['A', 'C']);
  assert.deepEqual(names(await native(`SUBJECT "${TAG}"`, { in: [archive.id] })), ['ARCH']);
  assert.deepEqual(sorted(names(await native(`SUBJECT "${TAG}" FLAGGED`, { in: ['INBOX'] }))), ['P3', 'P5']);
  assert.deepEqual(names(await native(`SUBJECT "${TAG}" FLAGGED`, { in: ['INBOX'], unread: true })), ['P5'], 'combined with a filter');
  assert.deepEqual(names(await native(`SUBJECT "${TAG}-absent"`, { in: ['INBOX'] })), []);
  const bad = (q, message, label) => expectApiError(native(q), { status: 400, type: 'invalid_request_error', message }, label);
  await bad('ALL\r\nX1 LOGOUT', /search_query_native/, 'CRLF cannot smuggle a second IMAP command');
  await bad('FOO BAR', /search_query_native/, 'unknown search key');
  await bad(`SUBJECT "${TAG}`, /search_query_native/, 'unterminated string');
});

test('find by id, via the grant email too; unknown id → 404', async () => {
  const res = await nylas.messages.find({ identifier: grant.id, messageId: byName.B.id });
  assert.match(res.requestId, /\S/);
  assert.deepEqual(res.data, byName.B);
  const byEmail = await nylas.messages.find({ identifier: CAROL, messageId: byName.B.id });
  assert.equal(byEmail.data.id, byName.B.id);
  await expectApiError(nylas.messages.find({ identifier: grant.id, messageId: 'nosuchmessage0000000000000' }),
    { status: 404, type: 'not_found_error', message: /nosuchmessage/ }, 'unknown message');
});

test('bad query parameters → 400 invalid_request_error naming the parameter', async () => {
  const bad = (queryParams, message, label) =>
    expectApiError(nylas.messages.list({ identifier: grant.id, queryParams }), { status: 400, type: 'invalid_request_error', message }, label);
  await bad({ limit: 'abc' }, /limit/, 'limit=abc');
  await bad({ limit: 0 }, /limit/, 'limit=0');
  await bad({ limit: 201 }, /limit/, 'limit=201');
  await bad({ unread: 'maybe' }, /unread must be true or false/, 'unread=maybe');
  await bad({ starred: 'yes please' }, /starred/, 'starred');
  await bad({ hasAttachment: 'sometimes' }, /has_attachment/, 'has_attachment');
  await bad({ receivedAfter: 'yesterday' }, /received_after/, 'received_after');
  await bad({ receivedBefore: '1.5' }, /received_before/, 'received_before');
  await bad({ fields: 'bogus' }, /fields must be one of/, 'fields=bogus');
  await bad({ pageToken: 'garbage!!' }, /page_token/, 'page_token=garbage');
  await bad({ pageToken: Buffer.from('not json').toString('base64url') }, /page_token/, 'page_token=base64 of junk');
  // Regression (fixed): more than 1000 values in one list filter used to reach the store's limit
  // and come back as 500 internal_error ("store: list messages: more than
  // 1000 values in a filter") instead of a 400.
  await bad({ to: Array.from({ length: 1001 }, (_, i) => `r${i}@x.example`) }, /\bto\b/, '1001 to= values');
  await expectApiError(nylas.messages.find({ identifier: grant.id, messageId: byName.A.id, queryParams: { fields: 'bogus' } }),
    { status: 400, type: 'invalid_request_error', message: /fields/ }, 'find fields=bogus');
});

test('another application cannot read the grant; another grant cannot read its messages', async () => {
  const other = client(srv, srv.apps[1].apiKey);
  await expectApiError(other.messages.list({ identifier: grant.id, queryParams: { subject: TAG } }), { status: 404, type: 'not_found_error' }, 'other app: list');
  await expectApiError(other.messages.find({ identifier: grant.id, messageId: byName.A.id }), { status: 404, type: 'not_found_error' }, 'other app: find');

  const env = testEnv();
  const bob = (await nylas.auth.customAuthentication({
    requestBody: { provider: 'imap', settings: { imapUsername: BOB, imapPassword: env.users[BOB], imapHost: env.imap.host, imapPort: env.imap.port, smtpHost: env.smtp.host, smtpPort: env.smtp.port } },
  })).data;
  assert.deepEqual((await nylas.messages.list({ identifier: bob.id, queryParams: { subject: TAG } })).data, [], "bob's grant lists none of carol's mail");
  await expectApiError(nylas.messages.find({ identifier: bob.id, messageId: byName.A.id }), { status: 404, type: 'not_found_error' }, "carol's message through bob's grant");
  await expectApiError(nylas.messages.find({ identifier: bob.id, messageId: byName.A.id, queryParams: { fields: 'raw_mime' } }),
    { status: 404, type: 'not_found_error' }, "carol's raw message through bob's grant");
});

test('messages.update marks read and starred on the server, and the next read agrees', async () => {
  const a = (await nylas.messages.find({ identifier: grant.id, messageId: byName.A.id })).data;
  assert.equal(a.unread, true, 'A starts unread');
  const im = await imapSession(CAROL);
  try {
    const before = await im.status('INBOX');
    const updated = (await nylas.messages.update({ identifier: grant.id, messageId: a.id, requestBody: { unread: false, starred: true } })).data;
    assert.equal(updated.id, a.id, 'same id');
    assert.equal(updated.unread, false);
    assert.equal(updated.starred, true);
    const after = await im.status('INBOX');
    assert.equal(after.unseen, before.unseen - 1, 'one fewer unseen message on the IMAP server');
    const again = (await nylas.messages.find({ identifier: grant.id, messageId: a.id })).data;
    assert.equal(again.unread, false);
    assert.equal(again.starred, true);
    assert.ok(!names(await list({ unread: true })).includes('A'), 'unread=true no longer lists A');
    await expectApiError(nylas.messages.update({ identifier: grant.id, messageId: 'no-such-message', requestBody: { unread: false } }),
      { status: 404, type: 'not_found_error' }, 'update unknown message');
  } finally {
    await im.close();
  }
});

test('messages.update moves and messages.destroy trashes, keeping the id, checked on the server', async () => {
  const b = byName.B;
  const im = await imapSession(CAROL);
  try {
    const moved = (await nylas.messages.update({ identifier: grant.id, messageId: b.id, requestBody: { folders: [archive.id] } })).data;
    assert.equal(moved.id, b.id, 'a move keeps the id');
    assert.deepEqual(moved.folders, [archive.id]);
    assert.deepEqual(await im.search('INBOX', `${TAG} beta`), [], 'gone from INBOX on the server');
    assert.equal((await im.search('Archive', `${TAG} beta`)).length, 1, 'in Archive on the server');

    await nylas.messages.destroy({ identifier: grant.id, messageId: b.id });
    const trash = folders['Deleted Messages'];
    const trashed = (await nylas.messages.find({ identifier: grant.id, messageId: b.id })).data;
    assert.deepEqual(trashed.folders, [trash.id], 'destroy moves to Trash first');
    assert.equal((await im.search('Deleted Messages', `${TAG} beta`)).length, 1, 'in Trash on the server');

    await nylas.messages.destroy({ identifier: grant.id, messageId: b.id });
    assert.deepEqual(await im.search('Deleted Messages', `${TAG} beta`), [], 'removed for good from Trash');
    await expectApiError(nylas.messages.find({ identifier: grant.id, messageId: b.id }), { status: 404, type: 'not_found_error' }, 'find after destroy');
    await expectApiError(nylas.messages.update({ identifier: grant.id, messageId: byName.C.id, requestBody: { folders: ['no-such-folder'] } }),
      { status: 400, type: 'invalid_request_error', message: /folder/ }, 'move to an unknown folder');
  } finally {
    await im.close();
  }
});
