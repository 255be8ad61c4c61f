// nylas.messages.send against carol's mailbox (imap grant, the test env's
// Postfix for SMTP): every send is checked where it lands, over IMAP —
// the recipients' INBOX (subject, attachment bytes, inline image
// Content-ID, no Bcc header) and carol's "Sent Messages" (exactly one
// copy, with Bcc) — not only in the API's answer.
//
//   JSON send        html body, a binary attachment (non-ASCII name) and an
//                    inline image; to bob, bcc alice
//   multipart send   3.5 MiB attachment + inline image: the SDK switches to
//                    chunked multipart/form-data (seen on the wire); its
//                    retry (new boundary) is replayed
//   reply            reply_to_message_id → In-Reply-To, References, thread
//   Idempotency-Key  a retry replays the first answer and sends nothing;
//                    the key with another body → 409; another key sends
//   bad input        400 with the field and the problem, nothing sent
//   limits           a second server with ORCHARD_SEND_LIMITS=icloud=2/0/2/200000
//                    and an icloud grant: 400 / 413 / 429 + Retry-After
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startOrchard, stopAndCheck, client, expectApiError, connectMailbox, runTag, imapSession, imapFetch, parseMime, mimeLeaves,
  waitFor, removeTagged, syncStatus, testEnv, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test'; // the grant: sender
const BOB = 'bob@example.test';
const ALICE = 'alice@example.test';
const TAG = runTag('snd');
const SENT = 'Sent Messages';
const FOLDERS = ['INBOX', SENT, 'Drafts'];

// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
/** Bytes that break careless encoders: every byte value, CR, LF, NUL, lone dots at line starts. */
const binary = (n) => {
  const b = crypto.randomBytes(n);
  for (let i = 0; i < 256; i++) b[i] = i;
  b.write('\r\n.\r\n..\n.\r\0', 256, 'latin1');
  return b;
};
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv;
let nylas;
let grant;
let folders; // name → folder

const send = (requestBody, overrides) => nylas.messages.send({ identifier: grant.id, requestBody, overrides });

/** UIDs of user's folder whose Subject contains text (cheap: no bodies). */
async function uids(user, folder, text) {
  const im = await imapSession(user);
  try {
    return await im.search(folder, text);
  } finally {
    await im.close();
  }
}

/** Waits until user's folder holds n messages with text in the Subject, then reads them. */
async function arrived(user, folder, text, n = 1) {
  let got = [];
  await waitFor(async () => (got = await uids(user, folder, text)).length >= n,
    { timeout: 20000, interval: 250, what: () => `${n} message(s) "${text}" in ${user}'s ${folder}, found ${got.length}` });
  return imapFetch(user, folder, text);
}

const header = (msg, name) => msg.header(name);
const leafWith = (msg, pred, what) => {
  const leaf = mimeLeaves(msg).find(pred);
  assert.ok(leaf, `${what} in ${JSON.stringify(mimeLeaves(msg).map((l) => [l.type, l.filename, l.cid]))}`);
  return leaf;
};

/** Records the Content-Type of every request the SDK makes while fn runs. */
async function recordingRequests(fn) {
  const seen = [];
  const orig = globalThis.fetch;
  globalThis.fetch = (req, init) => {
    seen.push({ method: req.method, url: req.url, contentType: req.headers.get('content-type'), length: req.headers.get('content-length') });
    return orig(req, init);
  };
  try {
    return { result: await fn(), seen };
  } finally {
    globalThis.fetch = orig;
  }
}

before(async () => {
  srv = await startOrchard({ name: 'send', env: MAIL_ENV });
  nylas = client(srv);
  grant = await connectMailbox(srv, nylas, CAROL);
  folders = Object.fromEntries((await nylas.folders.list({ identifier: grant.id })).data.map((f) => [f.name, f]));
  assert.ok(folders[SENT], `a "${SENT}" folder in ${Object.keys(folders)}`);
});

after(async () => {
  if (srv) {
    await stopAndCheck(srv);
    if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
  }
  await removeTagged(CAROL, TAG, FOLDERS);
  await removeTagged(BOB, TAG);
  await removeTagged(ALICE, TAG);
});

test('messages.send (JSON): html, an attachment and an inline image reach bob and the bcc; Sent Messages holds one copy', async () => {
  const subject = `${TAG} json Grüße`;
  const file = binary(48 * 1024);
  const cid = `logo.${TAG}@sdk.test`;
  const res = await send({
    to: [{ name: 'Bob Tester', email: BOB }],
    bcc: [{ email: ALICE }],
    subject,
    body: `<p>Hello <b>Bob</b></p><p><img src="cid:${cid}" alt="logo"></p>`,
    attachments: [
      { filename: 'Bericht-Grüße.bin', contentType: 'application/octet-stream', content: file.toString('base64'), size: file.length },
      { filename: 'logo.png', contentType: 'image/png', content: PNG, size: PNG.length, contentId: cid, isInline: true, contentDisposition: 'inline' },
    ],
  });

  // The answer: {request_id, grant_id, data: Message} with the Sent folder.
  assert.match(res.requestId, /\S/);
  assert.equal(res.grantId, grant.id, 'grant_id next to data');
  const m = res.data;
  assert.equal(m.object, 'message');
  assert.equal(m.grantId, grant.id);
  assert.match(m.id, /\S/);
  assert.equal(m.subject, subject);
  assert.deepEqual(m.from.map((p) => p.email), [CAROL], 'from defaults to the grant');
  assert.deepEqual(m.to, [{ name: 'Bob Tester', email: BOB }]);
  assert.deepEqual(m.bcc.map((p) => p.email), [ALICE], 'the sender sees the bcc');
  assert.ok(m.folders.includes(folders[SENT].id), `data.folders ${JSON.stringify(m.folders)} has ${SENT} (${folders[SENT].id})`);
  const files = Object.fromEntries(m.attachments.map((a) => [a.filename, a]));
  assert.deepEqual(Object.keys(files).sort(), ['Bericht-Grüße.bin', 'logo.png'], JSON.stringify(m.attachments));
  assert.equal(files['Bericht-Grüße.bin'].size, file.length);
  assert.equal(files['logo.png'].contentId, cid);
  assert.equal(files['logo.png'].isInline, true);

  // Bob's INBOX: one message, subject decoded, bytes intact, no Bcc.
  const [bob, ...more] = await arrived(BOB, 'INBOX', `${TAG} json`);
  assert.equal(more.length, 0, 'bob got it once');
  const got = parseMime(bob.raw);
  assert.equal(header(got, 'subject'), subject);
  assert.match(header(got, 'from'), new RegExp(CAROL.replace('.', '\\.')));
  assert.match(header(got, 'to'), /Bob Tester.*<bob@example\.test>/);
  assert.equal(got.headers.bcc, undefined, 'no Bcc header travels to the recipients');
  assert.ok(!bob.raw.toString('latin1').includes(ALICE), 'the bcc address appears nowhere in bob\'s copy');
  assert.match(header(got, 'message-id') ?? '', /^<[^<>@\s]+@[^<>\s]+>$/, 'a Message-ID');
  const att = leafWith(got, (l) => l.filename === 'Bericht-Grüße.bin', 'the attachment');
  assert.equal(att.disposition, 'attachment');
  assert.equal(att.type, 'application/octet-stream');
  assert.equal(sha(att.body), sha(file), 'attachment bytes intact');
  const img = leafWith(got, (l) => l.cid === cid, `a part with Content-ID <${cid}>`);
  assert.equal(img.type, 'image/png');
  assert.ok(img.body.equals(PNG), 'inline image bytes intact');
  assert.notEqual(img.disposition, 'attachment', 'the image is inline');
  const html = leafWith(got, (l) => l.type === 'text/html', 'the html body');
  assert.match(html.body.toString('utf8'), new RegExp(`<img src="cid:${cid.replace(/\./g, '\\.')}"`));
  const related = (function find(n) {
    return n.type === 'multipart/related' ? n : n.parts.map(find).find(Boolean);
  })(got);
  assert.ok(related && mimeLeaves(related).includes(img) && mimeLeaves(related).includes(html), 'html and image share a multipart/related');

  // The bcc got it too.
  const [ali] = await arrived(ALICE, 'INBOX', `${TAG} json`);
  assert.equal(parseMime(ali.raw).header('subject'), subject);
  assert.equal(parseMime(ali.raw).headers.bcc, undefined);

  // Carol's Sent Messages: exactly one copy, \Seen, with the Bcc and the same Message-ID.
  const sent = await imapFetch(CAROL, SENT, `${TAG} json`);
  assert.equal(sent.length, 1, `one copy in ${SENT}, found ${sent.length}`);
  assert.ok(sent[0].flags.includes('\\Seen'), `Sent copy flags ${sent[0].flags}`);
  const copy = parseMime(sent[0].raw);
  assert.equal(copy.header('subject'), subject);
  assert.match(copy.header('bcc') ?? '', /alice@example\.test/, 'the sender\'s copy keeps Bcc');
  assert.equal(copy.header('message-id'), header(got, 'message-id'), 'Sent copy and delivered message are one message');
  assert.equal(sha(leafWith(copy, (l) => l.filename === 'Bericht-Grüße.bin', 'the attachment in Sent').body), sha(file));
  assert.deepEqual(await uids(CAROL, 'INBOX', `${TAG} json`), [], 'nothing in carol\'s INBOX');

  // The API knows the message where it is: in Sent.
  const found = (await nylas.messages.find({ identifier: grant.id, messageId: m.id })).data;
  assert.equal(found.subject, subject);
  assert.deepEqual(found.folders, [folders[SENT].id]);
});

test('messages.send with a 3.5 MiB attachment: the SDK sends chunked multipart/form-data, the bytes arrive intact, a retry is replayed', async () => {
  const subject = `${TAG} bigfile`;
  const big = binary(3.5 * 1024 * 1024);
  const cid = `chart.${TAG}@sdk.test`;
  const body = {
    to: [{ email: BOB }],
    subject,
    body: `<p>the numbers</p><img src="cid:${cid}">`,
    attachments: [
      { filename: 'big.bin', contentType: 'application/octet-stream', content: big, size: big.length },
      { filename: 'chart.png', contentType: 'image/png', content: PNG, size: PNG.length, contentId: cid, isInline: true },
    ],
  };
  const overrides = { headers: { 'Idempotency-Key': `big-${TAG}` } };
  const { result: res, seen } = await recordingRequests(() => send(body, overrides));
  assert.equal(seen.length, 1, JSON.stringify(seen));
  assert.match(seen[0].contentType ?? '', /^multipart\/form-data; boundary=/, 'the SDK used its form path');
  assert.equal(seen[0].length, null, 'chunked: no Content-Length');
  // A retry gets another multipart boundary: still the same request.
  const retry = await recordingRequests(() => send(body, overrides));
  assert.notEqual(retry.seen[0].contentType, seen[0].contentType, 'a new boundary');
  assert.equal(retry.result.rawHeaders['idempotent-replayed'], 'true', 'the multipart retry is replayed');
  assert.equal(retry.result.data.id, res.data.id);

  const m = res.data;
  assert.equal(m.subject, subject);
  assert.ok(m.folders.includes(folders[SENT].id));
  const files = Object.fromEntries(m.attachments.map((a) => [a.filename, a]));
  assert.equal(files['big.bin']?.size, big.length, JSON.stringify(m.attachments));
  assert.equal(files['chart.png']?.contentId, cid, 'the part named by its content id is the inline image');

  const [bob, ...more] = await arrived(BOB, 'INBOX', subject);
  assert.equal(more.length, 0);
  await sleep(1000);
  assert.equal((await uids(BOB, 'INBOX', subject)).length, 1, 'delivered once: the retry sent nothing');
  const got = parseMime(bob.raw);
  assert.equal(got.header('subject'), subject);
  const att = leafWith(got, (l) => l.filename === 'big.bin', 'big.bin');
  assert.equal(att.body.length, big.length);
  assert.equal(sha(att.body), sha(big), '3.5 MiB intact');
  const img = leafWith(got, (l) => l.cid === cid, `Content-ID <${cid}>`);
  assert.ok(img.body.equals(PNG));
  assert.equal(img.type, 'image/png');

  const sent = await imapFetch(CAROL, SENT, subject);
  assert.equal(sent.length, 1, `one copy in ${SENT}`);
  assert.equal(sha(leafWith(parseMime(sent[0].raw), (l) => l.filename === 'big.bin', 'big.bin in Sent').body), sha(big));
});

test('reply_to_message_id: the reply carries In-Reply-To and References and joins the thread', async () => {
  const subject = `${TAG} ask`;
  const orig = (await send({ to: [{ email: BOB }], subject, body: '<p>question?</p>' })).data;
  const reply = (await send({ to: [{ email: BOB }], subject: `Re: ${subject}`, body: '<p>and the answer</p>', replyToMessageId: orig.id })).data;
  assert.equal(reply.threadId, orig.threadId, 'one thread');
  const got = await arrived(BOB, 'INBOX', subject, 2);
  const bySubject = Object.fromEntries(got.map((m) => parseMime(m.raw)).map((p) => [p.header('subject'), p]));
  const first = bySubject[subject];
  const second = bySubject[`Re: ${subject}`];
  assert.ok(first && second, `both arrived: ${Object.keys(bySubject)}`);
  const mid = first.header('message-id');
  assert.equal(second.header('in-reply-to'), mid);
  assert.equal(second.header('references'), mid);
  const thread = (await nylas.threads.find({ identifier: grant.id, threadId: orig.threadId })).data;
  assert.deepEqual([...thread.messageIds].sort(), [orig.id, reply.id].sort());
  await expectApiError(send({ to: [{ email: BOB }], subject: `${subject} orphan`, body: 'x', replyToMessageId: `nosuch${TAG}` }),
    { status: 400, type: 'invalid_request_error', message: /reply_to_message_id/ }, 'unknown reply_to_message_id');
});

test('Idempotency-Key: a retry replays the first answer and sends nothing; the key with another body → 409', async () => {
  const subject = `${TAG} idem`;
  const key = `key-${TAG}`;
  const body = { to: [{ email: BOB }], subject, body: '<p>once</p>', attachments: [{ filename: 'a.txt', contentType: 'text/plain', content: Buffer.from('once\n'), size: 5 }] };
  const withKey = (k) => ({ headers: { 'Idempotency-Key': k } });

  const first = await send(body, withKey(key));
  assert.equal(first.rawHeaders['idempotent-replayed'], undefined, 'the first request runs');
  const again = await send(body, withKey(key));
  assert.equal(again.rawHeaders['idempotent-replayed'], 'true', 'Idempotent-Replayed: true on the retry');
  assert.deepEqual(again.data, first.data, 'the retry gets the first answer');
  assert.equal(again.data.id, first.data.id);

  const delivered = await arrived(BOB, 'INBOX', subject);
  await sleep(2000); // a second send would be delivered by now
  assert.equal((await uids(BOB, 'INBOX', subject)).length, 1, 'bob got one message from two requests');
  assert.equal(delivered.length, 1);
  assert.equal((await imapFetch(CAROL, SENT, subject)).length, 1, `one copy in ${SENT}`);

  await expectApiError(send({ ...body, subject: `${subject} changed` }, withKey(key)),
    { status: 409, type: 'conflict_error', message: [/Idempotency-Key/, new RegExp(key)] }, 'same key, other body');
  await sleep(1000);
  assert.deepEqual(await uids(BOB, 'INBOX', `${subject} changed`), [], 'the 409 sent nothing');
  assert.deepEqual(await uids(CAROL, SENT, `${subject} changed`), []);

  // Another key is another request: it sends again.
  const other = await send(body, withKey(`${key}-2`));
  assert.equal(other.rawHeaders['idempotent-replayed'], undefined);
  assert.equal(other.data.id !== first.data.id, true, 'a new message');
  await arrived(BOB, 'INBOX', subject, 2);
  assert.equal((await imapFetch(CAROL, SENT, subject)).length, 2, 'two sends, two Sent copies');
});

test('bad input → 400 invalid_request_error naming the field; nothing is sent', async () => {
  const subject = `${TAG} bad`;
  const ok = { to: [{ email: BOB }], subject, body: 'x' };
  const cases = [
    ['no recipients', { ...ok, to: [] }, [/at least one recipient is required in to, cc or bcc/]],
    ['malformed address', { ...ok, to: [{ email: 'bob-at-example.test' }] }, [/to\[0\]\.email/, /"bob-at-example\.test" is not a valid email address/]],
    ['malformed cc', { ...ok, cc: [{ email: BOB }, { email: 'Bob <bob@example.test>' }] }, [/cc\[1\]\.email/, /not a valid email address/]],
    ['CR/LF in subject', { ...ok, subject: `${subject} crlf\r\nBcc: ${ALICE}` }, [/subject: must not contain line breaks/]],
    ['LF in subject', { ...ok, subject: `${subject} lf\nX-Evil: 1` }, [/subject: must not contain line breaks/]],
    ['protected custom header', { ...ok, customHeaders: [{ name: 'X-Fine', value: '1' }, { name: 'Message-ID', value: `<forged.${TAG}@sdk.test>` }] },
      [/custom_headers\[1\]\.name/, /"Message-ID" is set by Orchard and cannot be overridden/]],
    ['bad base64 attachment', { ...ok, attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', content: 'this is *not* base64!', size: 10 }] },
      [/attachments\[0\]\.content is not valid base64/]],
  ];
  for (const [label, body, message] of cases) {
    const err = await expectApiError(send(body), { status: 400, type: 'invalid_request_error', message }, label);
    assert.ok(err.message.length < 500, `${label}: a short message, got ${err.message.length} characters`);
  }
  await sleep(1500);
  assert.deepEqual(await uids(BOB, 'INBOX', subject), [], 'nothing reached bob');
  assert.deepEqual(await uids(ALICE, 'INBOX', subject), [], 'nothing reached alice (no header injection)');
  assert.deepEqual(await uids(CAROL, SENT, subject), [], `nothing in ${SENT}`);
});

test('sending limits (ORCHARD_SEND_LIMITS=icloud=2/0/2/200000): 400 over recipients per message, 413 over size, 429 with Retry-After over the day', async (t) => {
  const env = testEnv();
  const lim = await startOrchard({ name: 'send-limits', env: { ...MAIL_ENV, ORCHARD_SEND_LIMITS: 'icloud=2/0/2/200000' } });
  t.after(async () => {
    await stopAndCheck(lim);
    if (!process.env.ORCHARD_SDK_KEEP) lim.cleanup();
  });
  const ny = client(lim);
  await ny.connectors.create({ requestBody: { provider: 'icloud' } });
  const g = (await ny.auth.customAuthentication({ requestBody: { provider: 'icloud', settings: { username: CAROL, password: env.users[CAROL] } } })).data;
  assert.equal(g.provider, 'icloud');
  let st;
  await waitFor(async () => (st = await syncStatus(lim, g.id)).initial_sync_done && st.state === 'idle',
    { timeout: 15000, what: () => `the initial sync: ${JSON.stringify(st)}` });
  const sendL = (requestBody) => ny.messages.send({ identifier: g.id, requestBody });
  const subject = `${TAG} limit`;

  await expectApiError(sendL({ to: [{ email: BOB }, { email: ALICE }], cc: [{ email: CAROL }], subject: `${subject} three`, body: 'x' }),
    { status: 400, type: 'invalid_request_error', message: [/3 recipients/, /at most 2 per message/] }, '3 recipients');
  const fat = crypto.randomBytes(180 * 1024); // ~246 KB once base64-encoded
  const tooBig = await expectApiError(sendL({ to: [{ email: BOB }], subject: `${subject} fat`, body: 'x',
    attachments: [{ filename: 'fat.bin', contentType: 'application/octet-stream', content: fat, size: fat.length }] }),
  { status: 413, type: 'request_too_large', message: [/at most 200000/] }, 'over the size limit');
  assert.equal(tooBig.headers['retry-after'], undefined, 'no Retry-After for a message that will never fit');

  // The refusals did not count: two messages go out, the third is refused for the day.
  const one = await sendL({ to: [{ email: BOB }], subject: `${subject} one`, body: 'first' });
  const two = await sendL({ to: [{ email: BOB }, { email: ALICE }], subject: `${subject} two`, body: 'second' });
  assert.equal(one.data.subject, `${subject} one`);
  assert.equal(two.data.subject, `${subject} two`);
  for (let i = 0; i < 2; i++) {
    const err = await expectApiError(sendL({ to: [{ email: BOB }], subject: `${subject} third`, body: 'third' }),
      { status: 429, type: 'rate_limit_error', message: [/2 messages a day/, /retry in/] }, `third message of the day (try ${i + 1})`);
    const retry = err.headers['retry-after'];
    assert.match(retry ?? '', /^\d+$/, `Retry-After is whole seconds: ${retry}`);
    assert.ok(Number(retry) > 0 && Number(retry) <= 86400, `Retry-After ${retry} within the rolling day`);
  }
  // The other server (no limits configured for imap grants) still sends for carol.
  assert.equal((await send({ to: [{ email: BOB }], subject: `${subject} unlimited`, body: 'x' })).data.subject, `${subject} unlimited`);

  await arrived(BOB, 'INBOX', `${subject} two`);
  await arrived(ALICE, 'INBOX', `${subject} two`);
  await arrived(BOB, 'INBOX', `${subject} unlimited`);
  await sleep(1000);
  const atBob = (await imapFetch(BOB, 'INBOX', subject)).map((m) => parseMime(m.raw).header('subject')).sort();
  assert.deepEqual(atBob, [`${subject} one`, `${subject} two`, `${subject} unlimited`], 'only the sends within the limits arrived');
  const inSent = (await imapFetch(CAROL, SENT, subject)).map((m) => parseMime(m.raw).header('subject')).sort();
  assert.deepEqual(inSent, [`${subject} one`, `${subject} two`, `${subject} unlimited`], `one ${SENT} copy per message that went out`);
});
