// nylas.threads.list/find on conversations Orchard builds from
// Message-ID / In-Reply-To / References.
//
// The run's messages (run tag in Subject and Message-ID):
//   L1 → L2 → L3   "lunch": message, reply, reply to the reply (APPENDed,
//                  base, base+1m, base+2m; L1 \Seen, L2 \Flagged)
//   DECOY          same subject as L1 but no references (base+3m): its own thread
//   O3, O1, O2     "order": a thread that arrives backwards: the reply to the
//                  reply is in INBOX before the grant exists (initial sync),
//                  its parents come later through Postfix (IDLE)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startOrchard, stopAndCheck, client, expectApiError, connectMailbox, smtpInject, buildMessage, runTag,
  imapSession, waitFor, listAll, removeTagged, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test';
const TAG = runTag('thr');
const ANN = `ann.${TAG}@a.example`;
const DAVE = `dave.${TAG}@d.example`;
const EVE = `eve.${TAG}@e.example`;
const mid = (n) => `<${n.toLowerCase()}.${TAG}@sdk.test>`;

const base = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * 3600e3);
const at = (min) => new Date(base.getTime() + min * 60e3);
const stamp = (d) => Math.floor(d.getTime() / 1000);

let srv;
let nylas;
let grant;
let inbox;
const ids = {}; // message name → id
const nameOf = {}; // message id → name
let lunch; // the L1-L3 thread as listed
let order; // the O1-O3 thread as listed
let decoy;

const threads = (queryParams = {}) => nylas.threads.list({ identifier: grant.id, queryParams: { subject: TAG, limit: 50, ...queryParams } });
const msgNames = (messageIds) => messageIds.map((id) => nameOf[id] ?? `foreign:${id}`).sort();
const threadNames = (res) => res.data.map((t) => (t.id === lunch.id ? 'lunch' : t.id === order.id ? 'order' : t.id === decoy.id ? 'decoy' : `foreign:${t.subject}`));

async function findMessage(name, subject) {
  const res = await nylas.messages.list({ identifier: grant.id, queryParams: { subject, fields: 'include_basic_headers' } });
  return res.data.find((m) => m.headers.some((h) => h.name.toLowerCase() === 'message-id' && h.value === mid(name)));
}

const orderMsgs = {
  O3: { from: EVE, to: CAROL, subject: `Re: Re: ${TAG} order`, inReplyTo: mid('O2'), references: [mid('O1'), mid('O2')], text: 'third' },
  O1: { from: EVE, to: CAROL, subject: `${TAG} order`, text: 'first' },
  O2: { from: CAROL, to: EVE, subject: `Re: ${TAG} order`, inReplyTo: mid('O1'), references: [mid('O1')], text: 'second' },
};

before(async () => {
  srv = await startOrchard({ name: 'threads', env: MAIL_ENV });
  nylas = client(srv);

  const im = await imapSession(CAROL);
  try {
    await im.append('INBOX', buildMessage({ messageId: mid('O3'), ...orderMsgs.O3 }));
    grant = await connectMailbox(srv, nylas, CAROL);
    inbox = (await nylas.folders.list({ identifier: grant.id })).data.find((f) => f.name === 'INBOX');
    ids.O3 = (await findMessage('O3', `${TAG} order`))?.id;
    assert.ok(ids.O3, 'O3 is in the initial sync');

    for (const n of ['O1', 'O2']) await smtpInject({ rcpts: [CAROL], data: buildMessage({ messageId: mid(n), ...orderMsgs[n] }) });
    const put = (date, flags, fields) => im.append('INBOX', buildMessage({ date, ...fields }), { date, flags });
    await put(at(0), ['\\Seen'], { from: { name: 'Ann', email: ANN }, to: CAROL, subject: `${TAG} lunch`, messageId: mid('L1'), text: 'Lunch on Friday?' });
    await put(at(1), ['\\Flagged'], {
      from: { name: 'Dave', email: DAVE }, to: [ANN, CAROL], subject: `Re: ${TAG} lunch`, messageId: mid('L2'),
      inReplyTo: mid('L1'), references: [mid('L1')], text: 'Count me in.',
    });
    await put(at(2), [], {
      from: { name: 'Ann', email: ANN }, to: [DAVE], cc: CAROL, subject: `Re: Re: ${TAG} lunch`, messageId: mid('L3'),
      inReplyTo: mid('L2'), references: [mid('L1'), mid('L2')], text: 'Great, 12:30 then.',
    });
    await put(at(3), ['\\Seen'], { from: EVE, to: CAROL, subject: `${TAG} lunch`, messageId: mid('DECOY'), text: 'An unrelated lunch.' });
  } finally {
    await im.close();
  }

  for (const name of ['O1', 'O2', 'L1', 'L2', 'L3', 'DECOY']) {
    const m = await waitFor(() => findMessage(name, TAG), { timeout: 15000, what: `${name} synced` });
    ids[name] = m.id;
  }
  for (const [n, id] of Object.entries(ids)) nameOf[id] = n;

  const all = (await threads()).data;
  lunch = all.find((t) => t.messageIds.includes(ids.L1));
  order = all.find((t) => t.messageIds.includes(ids.O1));
  decoy = all.find((t) => t.messageIds.includes(ids.DECOY));
  assert.ok(lunch && order && decoy, `the three threads are listed: ${JSON.stringify(all.map((t) => [t.subject, t.messageIds]))}`);
});

after(async () => {
  if (srv) {
    await stopAndCheck(srv);
    if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
  }
  await removeTagged(CAROL, TAG);
});

test('a message, its reply and the reply to the reply share one thread', async () => {
  assert.deepEqual(msgNames(lunch.messageIds), ['L1', 'L2', 'L3']);
  for (const n of ['L1', 'L2', 'L3']) {
    const m = await nylas.messages.find({ identifier: grant.id, messageId: ids[n] });
    assert.equal(m.data.threadId, lunch.id, `${n}.thread_id`);
  }
  const inThread = await nylas.messages.list({ identifier: grant.id, queryParams: { threadId: lunch.id } });
  assert.deepEqual(inThread.data.map((m) => nameOf[m.id]), ['L3', 'L2', 'L1'], 'messages.list thread_id=, newest first');
});

test('same subject without references is another thread', () => {
  assert.notEqual(decoy.id, lunch.id);
  assert.deepEqual(msgNames(decoy.messageIds), ['DECOY']);
});

test('a thread that arrives backwards (reply to the reply first) still comes together', () => {
  assert.deepEqual(msgNames(order.messageIds), ['O1', 'O2', 'O3'],
    `O1..O3 in one thread; threads: ${JSON.stringify([order.messageIds.map((i) => nameOf[i])])}`);
});

test('thread object: subject, participants, dates, flags, folders, latest_draft_or_message', () => {
  assert.equal(lunch.object, 'thread');
  assert.equal(lunch.grantId, grant.id);
  assert.match(lunch.subject, new RegExp(`${TAG} lunch$`));
  assert.deepEqual(lunch.participants.map((p) => p.email).sort(), [ANN, CAROL, DAVE].sort());
  assert.equal(lunch.earliestMessageDate, stamp(at(0)));
  assert.equal(lunch.latestMessageReceivedDate, stamp(at(2)));
  assert.equal(lunch.unread, true, 'L2 and L3 are unread');
  assert.equal(lunch.starred, true, 'L2 is flagged');
  assert.equal(lunch.hasAttachments, false);
  assert.deepEqual(lunch.draftIds, []);
  assert.deepEqual(lunch.folders, [inbox.id]);
  const latest = lunch.latestDraftOrMessage;
  assert.ok(latest, 'latest_draft_or_message is set');
  assert.equal(latest.id, ids.L3);
  assert.equal(latest.object, 'message');
  assert.equal(latest.threadId, lunch.id);
  assert.equal(latest.subject, `Re: Re: ${TAG} lunch`);
  assert.match(lunch.snippet, /12:30/, 'snippet of the latest message');
  assert.equal(decoy.unread, false);
  assert.equal(decoy.starred, false);
});

test('threads.find returns the listed thread; unknown id → 404', async () => {
  const res = await nylas.threads.find({ identifier: grant.id, threadId: lunch.id });
  assert.deepEqual(res.data, lunch);
  const sel = await nylas.threads.find({ identifier: grant.id, threadId: lunch.id, queryParams: { select: 'id,message_ids' } });
  assert.deepEqual(Object.keys(sel.data).sort(), ['id', 'messageIds']);
  await expectApiError(nylas.threads.find({ identifier: grant.id, threadId: 'nosuchthread00000000000000' }),
    { status: 404, type: 'not_found_error', message: /nosuchthread/ }, 'unknown thread');
});

test('threads.list: newest first, filters', async () => {
  const all = await threads();
  assert.deepEqual(threadNames(all), ['order', 'decoy', 'lunch'], 'by latest message, newest first');
  assert.deepEqual(threadNames(await threads({ subject: `${TAG} lunch` })).sort(), ['decoy', 'lunch']);
  assert.deepEqual(threadNames(await threads({ anyEmail: [DAVE] })), ['lunch']);
  assert.deepEqual(threadNames(await threads({ anyEmail: [DAVE, EVE] })), ['order', 'decoy', 'lunch']);
  assert.deepEqual(threadNames(await threads({ starred: true })), ['lunch']);
  assert.deepEqual(threadNames(await threads({ unread: false })), ['decoy']);
  assert.deepEqual(threadNames(await threads({ in: ['INBOX'] })), ['order', 'decoy', 'lunch']);
  assert.deepEqual(threadNames(await threads({ in: ['Archive'] })), []);
  assert.deepEqual(threadNames(await threads({ latestMessageBefore: stamp(at(2)) + 30 })), ['lunch']);
  assert.deepEqual(threadNames(await threads({ latestMessageAfter: stamp(at(2)) + 30, latestMessageBefore: stamp(at(3)) + 30 })), ['decoy']);
});

test('threads.list: from, to, cc and has_attachment filters', async () => {
  const got = {
    from: threadNames(await threads({ from: [DAVE] })),
    to: threadNames(await threads({ to: [DAVE] })),
    cc: threadNames(await threads({ cc: [CAROL] })),
    hasAttachment: threadNames(await threads({ hasAttachment: true })),
  };
  // Regression (fixed): GET /v3/grants/{g}/threads used to ignore from=, to=, cc= and
  // has_attachment= (Nylas documents them for threads): every thread of the
  // run comes back for each.
  assert.deepEqual(got, { from: ['lunch'], to: ['lunch'], cc: ['lunch'], hasAttachment: [] });
});

test('threads.list: limit 1 pages through every thread once', async () => {
  const { items, pages } = await listAll(nylas.threads, { identifier: grant.id, queryParams: { subject: TAG, limit: 1 } });
  assert.deepEqual(pages.map((p) => p.data.length), [1, 1, 1]);
  assert.deepEqual(items.map((t) => t.id), [order.id, decoy.id, lunch.id]);
});

test('threads.list: select and bad parameters', async () => {
  const sel = await threads({ select: 'id,subject' });
  for (const t of sel.data) assert.deepEqual(Object.keys(t).sort(), ['id', 'subject']);
  await expectApiError(threads({ limit: 'many' }), { status: 400, type: 'invalid_request_error', message: /limit/ }, 'limit=many');
  await expectApiError(threads({ unread: 'perhaps' }), { status: 400, type: 'invalid_request_error', message: /unread/ }, 'unread');
  await expectApiError(threads({ pageToken: 'bm9wZQ' }), { status: 400, type: 'invalid_request_error', message: /page_token/ }, 'page_token');
});

test('threads.update applies to every message of the thread', async () => {
  const res = await nylas.threads.update({ identifier: grant.id, threadId: lunch.id, requestBody: { starred: true, unread: false } });
  assert.equal(res.data.id, lunch.id);
  assert.equal(res.data.starred, true);
  assert.equal(res.data.unread, false);
  for (const mid of lunch.messageIds) {
    const m = (await nylas.messages.find({ identifier: grant.id, messageId: mid })).data;
    assert.equal(m.starred, true, `${nameOf[mid]} starred`);
    assert.equal(m.unread, false, `${nameOf[mid]} read`);
  }
  await expectApiError(nylas.threads.update({ identifier: grant.id, threadId: 'nosuchthread00000000000000', requestBody: { unread: false } }),
    { status: 404, type: 'not_found_error' }, 'update unknown thread');
});
