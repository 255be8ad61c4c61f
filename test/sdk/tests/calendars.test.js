// nylas.calendars.* and nylas.events.* on an icloud grant whose CalDAV is
// the test env's Radicale (ORCHARD_ICLOUD_CALDAV_URL): every write is
// checked where it lands, on Radicale over CalDAV (PROPFIND, GET of the
// .ics, with the test CA), not only in the API's answer.
//
//   calendars   create (name, description, timezone, hex_color) / list /
//               find (and 'primary') / update / destroy → displayname,
//               calendar-description, calendar-color, calendar-timezone
//   events      a timespan across two time zones, a weekly series with an
//               EXDATE across the DST change of 2026-10-25 in Europe/Berlin,
//               an all-day datespan (end_date inclusive); list with and
//               without expand_recurring; find; update one occurrence by
//               its instance id (RECURRENCE-ID override), then the series
//               (override kept); destroy one occurrence (EXDATE), then the
//               series (gone)
//   free/busy   the grant's own address: its busy time; another address:
//               an error entry
//   conflicts   an event changed on Radicale by another client (PUT with
//               If-Match) → the stale update/destroy is a 409, nothing is
//               overwritten; after the sync the update goes through
//   errors      IMAP grant, no calendar_id, unknown calendar/event, end
//               before start, unknown time zone, …
//
// The calendars live in carol's Radicale account, which other runs may
// use too: every calendar this file makes has the run tag in its name,
// tests only look at those (free/busy uses a random day), and `after`
// deletes the run's calendars directly on Radicale, also when a test
// failed midway. Calendars of crashed runs (tag older than an hour) are
// swept in `before`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import {
  startOrchard, stopAndCheck, client, expectApiError, runTag, testEnv, waitFor, syncStatus, listAll, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test'; // the icloud grant, and the Radicale account
const BOB = 'bob@example.test'; // an imap grant: no calendars
const TAG_PREFIX = 'sdkcal';
const TAG = runTag(TAG_PREFIX);
const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
const DAY = 86400;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv;
let nylas;
let grant;

// ---------------------------------------------------------------------------
// Time helpers

/** The wall clock of unix seconds t in tz as 'YYYY-MM-DD HH:MM'. */
function wall(t, tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(t * 1000)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/** Unix seconds of the wall clock 'YYYY-MM-DD' 'HH:MM' in tz. */
function at(date, time, tz) {
  const naive = Date.parse(`${date}T${time}:00Z`) / 1000;
  const offset = (t) => Date.parse(`${wall(t, tz).replace(' ', 'T')}:00Z`) / 1000 - t;
  let t = naive - offset(naive);
  t = naive - offset(t);
  assert.equal(wall(t, tz), `${date} ${time}`, `${date} ${time} exists in ${tz}`);
  return t;
}

const timespan = (start, end, startTz, endTz = startTz) => ({ startTime: start, endTime: end, startTimezone: startTz, endTimezone: endTz });

// ---------------------------------------------------------------------------
// Radicale, as another CalDAV client of carol's sees it

const DAV_URL = process.env.ORCHARD_TEST_CALDAV_URL;
let davCA;

/** One CalDAV request to Radicale as user (TLS with the test CA): {status, headers, text}. */
function dav(method, path, { body, headers = {}, user = CAROL } = {}) {
  const env = testEnv();
  const base = new URL(DAV_URL);
  davCA ??= fs.readFileSync(env.caFile);
  const h = { ...headers };
  if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: base.hostname, port: base.port, path, method, headers: h, ca: davCA, servername: 'localhost',
      auth: `${user}:${env.users[user]}`, timeout: 15000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`CalDAV ${method} ${path}: no answer within 15 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const unescapeXml = (s) => s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e) => (
  { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e.toLowerCase()] ??
  String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1)))));

/** Text of the first element with local name `name` (any prefix) in xml, unescaped; undefined when absent. */
function xmlText(xml, name) {
  const m = new RegExp(`<(?:[\\w-]+:)?${name}(?:\\s[^>]*)?>([\\s\\S]*?)</(?:[\\w-]+:)?${name}>`).exec(xml);
  return m ? unescapeXml(m[1].replace(/^<!\[CDATA\[([\s\S]*)\]\]>$/, '$1')) : undefined;
}

/** The <response> elements of a multistatus, each {href, props} with props the 200 OK propstats' XML. */
function multistatus(xml) {
  return [...xml.matchAll(/<(?:[\w-]+:)?response\b[^>]*>([\s\S]*?)<\/(?:[\w-]+:)?response>/g)].map(([, r]) => ({
    href: xmlText(r, 'href') ?? '',
    props: [...r.matchAll(/<(?:[\w-]+:)?propstat\b[^>]*>([\s\S]*?)<\/(?:[\w-]+:)?propstat>/g)]
      .map(([, p]) => p).filter((p) => / 200 /.test(xmlText(p, 'status') ?? '')).join(''),
  }));
}

async function propfind(path, depth, props) {
  const body = '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" ' +
    `xmlns:a="http://apple.com/ns/ical/"><d:prop>${props}</d:prop></d:propfind>`;
  const r = await dav('PROPFIND', path, { body, headers: { Depth: String(depth), 'Content-Type': 'application/xml; charset=utf-8' } });
  assert.equal(r.status, 207, `PROPFIND ${path} → ${r.status}: ${r.text.slice(0, 500)}`);
  return multistatus(r.text);
}

let davHome;

/** carol's calendar home, discovered as a client would: current-user-principal, then calendar-home-set. */
async function home() {
  if (davHome) return davHome;
  const [root] = await propfind('/', 0, '<d:current-user-principal/>');
  const principal = /<(?:[\w-]+:)?href>([^<]+)</.exec(xmlText(root.props, 'current-user-principal') ?? '')?.[1];
  assert.ok(principal, `current-user-principal in ${JSON.stringify(root)}`);
  const [p] = await propfind(principal, 0, '<c:calendar-home-set/>');
  davHome = /<(?:[\w-]+:)?href>([^<]+)</.exec(xmlText(p.props, 'calendar-home-set') ?? '')?.[1];
  assert.ok(davHome, `calendar-home-set in ${JSON.stringify(p)}`);
  return davHome;
}

/** carol's calendars on Radicale: [{href, name, description, color, timezone}]. */
async function davCalendars() {
  const h = await home();
  const list = await propfind(h, 1, '<d:displayname/><d:resourcetype/><c:calendar-description/><a:calendar-color/><c:calendar-timezone/>');
  return list.filter((r) => /<(?:[\w-]+:)?calendar\s*\/>/.test(xmlText(r.props, 'resourcetype') ?? '')).map((r) => ({
    href: r.href, name: xmlText(r.props, 'displayname'), description: xmlText(r.props, 'calendar-description'),
    color: xmlText(r.props, 'calendar-color'), timezone: xmlText(r.props, 'calendar-timezone'),
  }));
}

/** The calendar on Radicale named name (exactly one), or undefined when there is none. */
async function davCalendar(name) {
  const found = (await davCalendars()).filter((c) => c.name === name);
  assert.ok(found.length <= 1, `one calendar named ${JSON.stringify(name)} on Radicale, found ${found.length}`);
  return found[0];
}

/** The .ics resources of the calendar at calHref: [{href, etag, ics}]. */
async function davObjects(calHref) {
  const list = await propfind(calHref, 1, '<d:getetag/>');
  const out = [];
  for (const r of list.filter((x) => x.href.endsWith('.ics'))) out.push({ href: r.href, ...(await davGet(r.href)) });
  return out;
}

/** GET of one .ics: {status, etag, ics}. */
async function davGet(href) {
  const r = await dav('GET', href);
  return { status: r.status, etag: r.headers.etag, ics: r.text };
}

/** The one object on Radicale in calHref whose UID is uid: {href, etag, ics}. */
async function davObject(calHref, uid) {
  const found = (await davObjects(calHref)).filter((o) => vevents(o.ics).some((e) => e.value('UID') === uid));
  assert.equal(found.length, 1, `one .ics with UID ${uid} in ${calHref}, found ${found.length}`);
  return found[0];
}

/**
 * The VEVENTs of an iCalendar text: {lines (unfolded, without nested
 * components such as VALARM), value(name) of the first such property,
 * values(name) of all (comma lists split)}.
 */
function vevents(ics) {
  const out = [];
  let cur = null;
  let nested = 0;
  for (const line of ics.replace(/\r?\n[ \t]/g, '').split(/\r?\n/)) {
    if (line === 'BEGIN:VEVENT') cur = [];
    else if (line === 'END:VEVENT') {
      const lines = cur;
      const props = lines.map((l) => /^([A-Za-z-]+)((?:;[^:]*)?):(.*)$/.exec(l)).filter(Boolean);
      out.push({
        lines,
        value: (name) => props.find((p) => p[1].toUpperCase() === name)?.[3],
        values: (name) => props.filter((p) => p[1].toUpperCase() === name).flatMap((p) => p[3].split(',')),
      });
      cur = null;
    } else if (cur && line.startsWith('BEGIN:')) nested++;
    else if (cur && line.startsWith('END:')) nested--;
    else if (cur && nested === 0) cur.push(line);
  }
  return out;
}

/** Deletes the calendars on Radicale that pick(calendar) chooses; returns their names. */
async function davDeleteCalendars(pick) {
  const gone = [];
  for (const c of await davCalendars()) {
    if (!pick(c)) continue;
    const r = await dav('DELETE', c.href);
    assert.ok([200, 204, 404].includes(r.status), `DELETE ${c.href} → ${r.status}`);
    gone.push(c.name);
  }
  return gone;
}

/** Calendars that crashed runs of this file left behind: their tag is more than an hour old. */
function staleTagged(name) {
  const m = new RegExp(`^${TAG_PREFIX}([0-9a-z]+)[0-9a-f]{8}\\b`).exec(name ?? '');
  if (!m || name.startsWith(TAG)) return false;
  const born = parseInt(m[1], 36);
  return Number.isFinite(born) && born < Date.now() - 3600e3;
}

// ---------------------------------------------------------------------------

const calName = (what) => `${TAG} ${what}`;
const evq = (calendarId, extra = {}) => ({ calendarId, ...extra });
const listEvents = async (calendarId, start, end, extra = {}) =>
  (await nylas.events.list({ identifier: grant.id, queryParams: { calendarId, start: String(start), end: String(end), ...extra } })).data;

before(async () => {
  if (!DAV_URL) {
    throw new Error('ORCHARD_TEST_CALDAV_URL is not set: the calendar tests need the test env\'s Radicale.\n' +
      'Start it with scripts/testenv/up.sh and load it: . /tmp/orchard-testenv/env');
  }
  const swept = await davDeleteCalendars((c) => staleTagged(c.name));
  if (swept.length > 0) console.log(`swept ${swept.length} calendar(s) of crashed runs: ${swept.join(', ')}`);

  srv = await startOrchard({
    name: 'calendars',
    env: { ...MAIL_ENV, ORCHARD_ICLOUD_CALDAV_URL: DAV_URL, ORCHARD_CALENDAR_SYNC_INTERVAL: '1h' },
  });
  nylas = client(srv);
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  const env = testEnv();
  grant = (await nylas.auth.customAuthentication({ requestBody: { provider: 'icloud', settings: { username: CAROL, password: env.users[CAROL] } } })).data;
  assert.equal(grant.provider, 'icloud');
  let st;
  await waitFor(async () => (st = await syncStatus(srv, grant.id)).initial_sync_done && st.state === 'idle',
    { timeout: 15000, what: () => `the initial sync: ${JSON.stringify(st)}` });
});

after(async () => {
  try {
    if (srv) {
      await stopAndCheck(srv);
      if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
    }
  } finally {
    if (!process.env.ORCHARD_SDK_KEEP && DAV_URL) await davDeleteCalendars((c) => (c.name ?? '').includes(TAG));
  }
});

test('calendars: create, list, find (also primary), update, destroy — each seen on Radicale', async (t) => {
  const foreign = (await davCalendars()).filter((c) => !(c.name ?? '').includes(TAG));
  if (foreign.length > 0) t.diagnostic(`carol has ${foreign.length} other calendar(s) on Radicale: primary checks are relaxed`);
  const listed = async () => (await nylas.calendars.list({ identifier: grant.id })).data;
  if (foreign.length === 0) {
    assert.deepEqual(await listed(), [], 'no calendars yet');
    await expectApiError(nylas.calendars.find({ identifier: grant.id, calendarId: 'primary' }),
      { status: 404, type: 'not_found_error', message: /no primary calendar/ }, 'primary of an account without calendars');
  }

  // Create: MKCALENDAR with displayname, description, colour, time zone.
  const name = calName('Büro & Co <Team>');
  const created = await nylas.calendars.create({
    identifier: grant.id,
    requestBody: { name, description: 'Team calendar — "quoted" & <escaped>', timezone: BERLIN, hexColor: '#1badf8' },
  });
  assert.match(created.requestId, /\S/);
  const cal = created.data;
  assert.equal(cal.object, 'calendar');
  assert.match(cal.id, /\S/);
  assert.equal(cal.grantId, grant.id);
  assert.equal(cal.name, name);
  assert.equal(cal.description, 'Team calendar — "quoted" & <escaped>');
  assert.equal(cal.timezone, BERLIN);
  assert.equal(cal.hexColor, '#1BADF8', 'hex_color upper-cased, #RRGGBB');
  assert.equal(cal.readOnly, false);
  assert.equal(cal.isOwnedByUser, true);
  assert.equal(cal.ownerEmail, CAROL);
  let remote = await davCalendar(name);
  assert.ok(remote, `a calendar named ${JSON.stringify(name)} on Radicale: ${JSON.stringify(await davCalendars())}`);
  assert.equal(remote.description, 'Team calendar — "quoted" & <escaped>');
  assert.equal(remote.color, '#1BADF8FF', 'Apple calendar-color #RRGGBBAA');
  assert.match(remote.timezone ?? '', /BEGIN:VTIMEZONE[\s\S]*TZID:Europe\/Berlin[\s\S]*END:VTIMEZONE/, 'calendar-timezone holds a VTIMEZONE');

  // List and find agree with the answer of create.
  const mine = (await listed()).filter((c) => c.name.includes(TAG));
  assert.deepEqual(mine.map((c) => c.id), [cal.id]);
  const found = (await nylas.calendars.find({ identifier: grant.id, calendarId: cal.id })).data;
  assert.deepEqual(found, mine[0]);
  assert.deepEqual({ ...found, isPrimary: undefined }, { ...cal, isPrimary: undefined });

  // primary: the one calendar the list marks primary; without other calendars, ours.
  const all = await listed();
  const primaries = all.filter((c) => c.isPrimary);
  assert.equal(primaries.length, 1, `one primary calendar in ${JSON.stringify(all.map((c) => [c.name, c.isPrimary]))}`);
  const primary = (await nylas.calendars.find({ identifier: grant.id, calendarId: 'primary' })).data;
  assert.deepEqual(primary, primaries[0]);
  if (foreign.length === 0) {
    assert.equal(primary.id, cal.id, 'the only (oldest writable) calendar is primary');
    // An event created in 'primary' lands in the real calendar, and says so.
    const inPrimary = (await nylas.events.create({
      identifier: grant.id, queryParams: evq('primary'),
      requestBody: { title: 'in primary', when: { time: at('2026-10-01', '12:00', BERLIN), timezone: BERLIN } },
    })).data;
    assert.equal(inPrimary.calendarId, cal.id, 'calendar_id is the real id, not "primary"');
    assert.equal((await davObject(remote.href, inPrimary.icalUid)).status, 200);
    await expectApiError(nylas.calendars.destroy({ identifier: grant.id, calendarId: 'primary' }),
      { status: 400, type: 'invalid_request_error', message: /primary calendar and cannot be deleted/ }, 'destroy primary');
    assert.ok(await davCalendar(name), 'the primary calendar is still on Radicale');
  }

  // Update: PROPPATCH of every property.
  const renamed = calName('Büro (Team)');
  const updated = (await nylas.calendars.update({
    identifier: grant.id, calendarId: cal.id,
    requestBody: { name: renamed, description: 'Renamed', timezone: NEW_YORK, hexColor: '#FF2968' },
  })).data;
  assert.equal(updated.id, cal.id);
  assert.equal(updated.name, renamed);
  assert.equal(updated.description, 'Renamed');
  assert.equal(updated.timezone, NEW_YORK);
  assert.equal(updated.hexColor, '#FF2968');
  assert.equal(await davCalendar(name), undefined, 'the old name is gone from Radicale');
  remote = await davCalendar(renamed);
  assert.ok(remote, `the renamed calendar on Radicale: ${JSON.stringify(await davCalendars())}`);
  assert.equal(remote.description, 'Renamed');
  assert.equal(remote.color, '#FF2968FF');
  assert.match(remote.timezone ?? '', /TZID:America\/New_York/);
  assert.deepEqual((await nylas.calendars.find({ identifier: grant.id, calendarId: cal.id })).data, updated);
  // A partial update leaves the rest alone.
  const partial = (await nylas.calendars.update({ identifier: grant.id, calendarId: cal.id, requestBody: { hexColor: '#34C759' } })).data;
  assert.deepEqual([partial.name, partial.description, partial.timezone, partial.hexColor], [renamed, 'Renamed', NEW_YORK, '#34C759']);
  remote = await davCalendar(renamed);
  assert.deepEqual([remote.description, remote.color], ['Renamed', '#34C759FF']);

  // Bad input changes nothing.
  await expectApiError(nylas.calendars.update({ identifier: grant.id, calendarId: cal.id, requestBody: { timezone: 'Mars/Olympus_Mons' } }),
    { status: 400, type: 'invalid_request_error', message: [/timezone/, /Mars\/Olympus_Mons/] }, 'update: unknown time zone');
  await expectApiError(nylas.calendars.update({ identifier: grant.id, calendarId: cal.id, requestBody: { hexColor: 'blue' } }),
    { status: 400, type: 'invalid_request_error', message: /hex_color/ }, 'update: not a colour');
  await expectApiError(nylas.calendars.create({ identifier: grant.id, requestBody: { description: calName('nameless') } }),
    { status: 400, type: 'invalid_request_error', message: /name is required/ }, 'create without a name');
  await expectApiError(nylas.calendars.create({ identifier: grant.id, requestBody: { name: calName('Mars'), timezone: 'Mars/Olympus_Mons' } }),
    { status: 400, type: 'invalid_request_error', message: /timezone/ }, 'create: unknown time zone');
  assert.deepEqual(await davCalendar(renamed).then((c) => [c.timezone.includes('America/New_York'), c.color]), [true, '#34C759FF']);
  assert.equal(await davCalendar(calName('Mars')), undefined, 'nothing made on Radicale for a refused create');

  // Destroy a second calendar (not the primary): gone from Radicale and the API.
  const scratch = (await nylas.calendars.create({ identifier: grant.id, requestBody: { name: calName('Scratch') } })).data;
  const scratchRemote = await davCalendar(calName('Scratch'));
  assert.ok(scratchRemote, 'the second calendar on Radicale');
  assert.equal(scratch.isPrimary, false, 'a new calendar does not take over primary');
  const del = await nylas.calendars.destroy({ identifier: grant.id, calendarId: scratch.id });
  assert.match(del.requestId, /\S/);
  assert.equal(await davCalendar(calName('Scratch')), undefined, 'gone from Radicale');
  assert.equal((await dav('PROPFIND', scratchRemote.href, { headers: { Depth: '0' } })).status, 404, 'its collection is gone');
  assert.deepEqual((await listed()).filter((c) => c.name.includes(TAG)).map((c) => c.id), [cal.id]);
  await expectApiError(nylas.calendars.find({ identifier: grant.id, calendarId: scratch.id }),
    { status: 404, type: 'not_found_error', message: new RegExp(`calendar ${scratch.id} not found`) }, 'find a destroyed calendar');
  await expectApiError(nylas.calendars.destroy({ identifier: grant.id, calendarId: scratch.id }),
    { status: 404, type: 'not_found_error' }, 'destroy again');
});

// The events tests share one calendar and build on each other.
const ev = {}; // the events of the run: cal, calHref, flight, series, trip, instances
const FIRST = '2026-10-12'; // a Monday; Europe/Berlin leaves summer time on 2026-10-25
const WINDOW = [at('2026-10-05', '00:00', 'UTC'), at('2026-11-20', '00:00', 'UTC')];

test('events.create: a timespan across two time zones, a weekly series with an EXDATE, an all-day datespan — as iCalendar on Radicale', async () => {
  ev.cal = (await nylas.calendars.create({ identifier: grant.id, requestBody: { name: calName('Events'), timezone: BERLIN } })).data;
  ev.calHref = (await davCalendar(calName('Events'))).href;
  const q = evq(ev.cal.id);

  // A flight: leaves New York 10:00 local, lands Berlin 00:00 local next day.
  const dep = at(FIRST, '10:00', NEW_YORK);
  const arr = at('2026-10-13', '00:00', BERLIN);
  const flight = (await nylas.events.create({
    identifier: grant.id, queryParams: q,
    requestBody: {
      title: 'Flight JFK → BER', description: 'Seat 12A\nBring the passport', location: 'JFK Terminal 1',
      when: timespan(dep, arr, NEW_YORK, BERLIN), participants: [{ email: BOB, name: 'Bob Tester', status: 'yes' }],
    },
  })).data;
  ev.flight = flight;
  assert.equal(flight.object, 'event');
  assert.equal(flight.calendarId, ev.cal.id);
  assert.equal(flight.grantId, grant.id);
  assert.equal(flight.title, 'Flight JFK → BER');
  assert.equal(flight.description, 'Seat 12A\nBring the passport');
  assert.equal(flight.location, 'JFK Terminal 1');
  assert.deepEqual(flight.when, { object: 'timespan', ...timespan(dep, arr, NEW_YORK, BERLIN) });
  assert.deepEqual(flight.participants.map((p) => [p.email, p.name, p.status]), [[BOB, 'Bob Tester', 'yes']]);
  assert.match(flight.icalUid ?? '', /\S/);
  let [v] = vevents((await davObject(ev.calHref, flight.icalUid)).ics);
  assert.ok(v.lines.includes('DTSTART;TZID=America/New_York:20261012T100000'), v.lines.join('\n'));
  assert.ok(v.lines.includes('DTEND;TZID=Europe/Berlin:20261013T000000'), v.lines.join('\n'));
  assert.equal(v.value('SUMMARY'), 'Flight JFK → BER');
  assert.equal(v.value('DESCRIPTION'), 'Seat 12A\\nBring the passport', 'DESCRIPTION with an escaped newline');
  assert.ok(v.lines.some((l) => /^ATTENDEE[;:].*mailto:bob@example\.test$/i.test(l)), `an ATTENDEE for bob: ${v.lines.join('\n')}`);
  const flightIcs = (await davObject(ev.calHref, flight.icalUid)).ics;
  for (const tz of [NEW_YORK, BERLIN]) assert.match(flightIcs, new RegExp(`BEGIN:VTIMEZONE\\r?\\nTZID:${tz}`), `a VTIMEZONE for ${tz}`);

  // A weekly series at 09:00 Berlin over the DST change, 2026-10-19 excluded.
  const s0 = at(FIRST, '09:00', BERLIN);
  const recurrence = ['RRULE:FREQ=WEEKLY;COUNT=5', 'EXDATE;TZID=Europe/Berlin:20261019T090000'];
  const series = (await nylas.events.create({
    identifier: grant.id, queryParams: q,
    requestBody: { title: 'Standup', when: timespan(s0, s0 + 1800, BERLIN), recurrence, busy: true },
  })).data;
  ev.series = series;
  assert.deepEqual(series.recurrence, recurrence);
  assert.deepEqual(series.when, { object: 'timespan', ...timespan(s0, s0 + 1800, BERLIN) });
  assert.equal(series.masterEventId, undefined, 'the series itself is no instance');
  const seriesObj = await davObject(ev.calHref, series.icalUid);
  const vs = vevents(seriesObj.ics);
  assert.equal(vs.length, 1, 'the series is one VEVENT in one .ics');
  assert.ok(vs[0].lines.includes('DTSTART;TZID=Europe/Berlin:20261012T090000'), vs[0].lines.join('\n'));
  assert.ok(vs[0].lines.includes('DTEND;TZID=Europe/Berlin:20261012T093000'), vs[0].lines.join('\n'));
  assert.equal(vs[0].value('RRULE'), 'FREQ=WEEKLY;COUNT=5');
  assert.deepEqual(vs[0].values('EXDATE'), ['20261019T090000']);
  assert.ok(vs[0].lines.includes('EXDATE;TZID=Europe/Berlin:20261019T090000'));

  // All day, two days: end_date inclusive on the wire, exclusive DTEND in iCalendar.
  const trip = (await nylas.events.create({
    identifier: grant.id, queryParams: q, requestBody: { title: 'Trip', when: { startDate: '2026-10-14', endDate: '2026-10-15' } },
  })).data;
  ev.trip = trip;
  assert.deepEqual(trip.when, { object: 'datespan', startDate: '2026-10-14', endDate: '2026-10-15' });
  [v] = vevents((await davObject(ev.calHref, trip.icalUid)).ics);
  assert.ok(v.lines.includes('DTSTART;VALUE=DATE:20261014'), v.lines.join('\n'));
  assert.ok(v.lines.includes('DTEND;VALUE=DATE:20261016'), `DTEND is the day after end_date: ${v.lines.join('\n')}`);

  assert.equal((await davObjects(ev.calHref)).length, 3, 'three .ics on Radicale');
});

test('events.list: without expand_recurring a series is one event; with it, its occurrences (EXDATE skipped, 09:00 Berlin across the DST change); events.find', async () => {
  assert.ok(ev.series, 'needs the events of the previous test');
  const [from, to] = WINDOW;
  const plain = await listEvents(ev.cal.id, from, to);
  assert.deepEqual(plain.map((e) => e.title), ['Standup', 'Flight JFK → BER', 'Trip'], 'by start time');
  assert.deepEqual(plain[0], ev.series, 'the series as created');
  assert.deepEqual(plain[1], ev.flight);
  assert.deepEqual(plain[2], ev.trip);

  const expanded = await listEvents(ev.cal.id, from, to, { expandRecurring: true });
  const inst = expanded.filter((e) => e.masterEventId === ev.series.id);
  assert.deepEqual(expanded.filter((e) => !e.masterEventId).map((e) => e.id), [ev.flight.id, ev.trip.id], 'single events stay as they are');
  assert.deepEqual(inst.map((e) => wall(e.when.startTime, BERLIN)),
    ['2026-10-12 09:00', '2026-10-26 09:00', '2026-11-02 09:00', '2026-11-09 09:00'], 'weekly at 09:00 Berlin, 2026-10-19 excluded');
  assert.deepEqual(inst.map((e) => wall(e.when.startTime, 'UTC').slice(11)), ['07:00', '08:00', '08:00', '08:00'], 'the UTC time moves at the DST change');
  for (const e of inst) {
    assert.equal(e.title, 'Standup');
    assert.equal(e.originalStartTime, e.when.startTime, 'an unmoved occurrence starts at its original start');
    assert.equal(e.when.endTime - e.when.startTime, 1800);
    assert.deepEqual([e.when.startTimezone, e.when.endTimezone], [BERLIN, BERLIN]);
    assert.equal(e.icalUid, ev.series.icalUid);
    assert.notEqual(e.id, ev.series.id);
    assert.equal(e.recurrence, undefined, 'recurrence only on the master');
  }
  assert.equal(new Set(inst.map((e) => e.id)).size, 4, 'distinct instance ids');
  assert.deepEqual(expanded.map((e) => e.id), (await listEvents(ev.cal.id, from, to, { expandRecurring: true })).map((e) => e.id), 'stable ids');
  ev.instances = inst;

  // master_event_id: only that series' occurrences; paged with the SDK's iterator.
  const bySeries = await listEvents(ev.cal.id, from, to, { masterEventId: ev.series.id, expandRecurring: true });
  assert.deepEqual(bySeries.map((e) => e.id), inst.map((e) => e.id));
  const { items, pages } = await listAll(nylas.events, {
    identifier: grant.id, queryParams: { calendarId: ev.cal.id, start: String(from), end: String(to), expandRecurring: true, limit: 2 },
  });
  assert.deepEqual(items.map((e) => e.id), expanded.map((e) => e.id), 'pages of 2 add up to the listing');
  assert.equal(pages.length, 3);

  // Overlap: the all-day trip covers 2026-10-15 (end_date inclusive), not 10-16.
  const onDay = async (d) => (await listEvents(ev.cal.id, at(d, '11:00', 'UTC'), at(d, '12:00', 'UTC'), { expandRecurring: true })).map((e) => e.title);
  assert.deepEqual(await onDay('2026-10-15'), ['Trip']);
  assert.deepEqual(await onDay('2026-10-16'), []);
  // A window inside the 2026-11-02 occurrence; one after the series ended.
  assert.deepEqual((await listEvents(ev.cal.id, inst[2].when.startTime + 60, inst[2].when.startTime + 120, { expandRecurring: true })).map((e) => e.id), [inst[2].id]);
  assert.deepEqual(await listEvents(ev.cal.id, at('2026-11-10', '00:00', 'UTC'), at('2026-11-20', '00:00', 'UTC'), { expandRecurring: true }), []);

  // find: the series, and one occurrence by its instance id.
  assert.deepEqual((await nylas.events.find({ identifier: grant.id, eventId: ev.series.id, queryParams: evq(ev.cal.id) })).data, ev.series);
  assert.deepEqual((await nylas.events.find({ identifier: grant.id, eventId: inst[1].id, queryParams: evq(ev.cal.id) })).data, inst[1]);
  assert.deepEqual((await nylas.events.find({ identifier: grant.id, eventId: ev.trip.id, queryParams: evq(ev.cal.id) })).data, ev.trip);
});

test('events.update: one occurrence by its instance id becomes a RECURRENCE-ID override; updating the series keeps it', async () => {
  assert.ok(ev.instances, 'needs the occurrences of the previous test');
  const q = evq(ev.cal.id);
  const target = ev.instances[1]; // 2026-10-26 09:00 Berlin
  const ns = at('2026-10-27', '14:00', BERLIN);
  const moved = (await nylas.events.update({
    identifier: grant.id, eventId: target.id, queryParams: q,
    requestBody: { title: 'Standup (moved)', when: timespan(ns, ns + 3600, BERLIN) },
  })).data;
  assert.equal(moved.id, target.id, 'the occurrence keeps its id');
  assert.equal(moved.masterEventId, ev.series.id);
  assert.equal(moved.originalStartTime, target.when.startTime, 'original_start_time is where it was');
  assert.equal(moved.title, 'Standup (moved)');
  assert.deepEqual(moved.when, { object: 'timespan', ...timespan(ns, ns + 3600, BERLIN) });

  let obj = await davObject(ev.calHref, ev.series.icalUid);
  let vs = vevents(obj.ics);
  assert.equal(vs.length, 2, `master and one override in the series' .ics:\n${obj.ics}`);
  let [master, override] = vs[0].value('RECURRENCE-ID') ? [vs[1], vs[0]] : vs;
  assert.ok(override.lines.includes('RECURRENCE-ID;TZID=Europe/Berlin:20261026T090000'), override.lines.join('\n'));
  assert.ok(override.lines.includes('DTSTART;TZID=Europe/Berlin:20261027T140000'), override.lines.join('\n'));
  assert.ok(override.lines.includes('DTEND;TZID=Europe/Berlin:20261027T150000'), override.lines.join('\n'));
  assert.equal(override.value('SUMMARY'), 'Standup (moved)');
  assert.equal(override.value('UID'), ev.series.icalUid);
  assert.equal(master.value('SUMMARY'), 'Standup');
  assert.equal(master.value('RRULE'), 'FREQ=WEEKLY;COUNT=5');
  assert.equal((await davObjects(ev.calHref)).length, 3, 'no new .ics for an override');

  // The whole series: a new title; the override stays as it is.
  const upd = (await nylas.events.update({ identifier: grant.id, eventId: ev.series.id, queryParams: q, requestBody: { title: 'Daily standup' } })).data;
  assert.equal(upd.id, ev.series.id);
  assert.equal(upd.title, 'Daily standup');
  assert.deepEqual(upd.recurrence, ev.series.recurrence, 'recurrence kept');
  assert.deepEqual(upd.when, ev.series.when, 'when kept');
  ev.series = upd;

  const inst = (await listEvents(ev.cal.id, ...WINDOW, { expandRecurring: true })).filter((e) => e.masterEventId === ev.series.id);
  assert.deepEqual(inst.map((e) => [e.title, wall(e.when.startTime, BERLIN)]), [
    ['Daily standup', '2026-10-12 09:00'], ['Standup (moved)', '2026-10-27 14:00'], ['Daily standup', '2026-11-02 09:00'], ['Daily standup', '2026-11-09 09:00'],
  ]);
  assert.deepEqual(inst.map((e) => e.id), ev.instances.map((e) => e.id), 'the same instance ids');
  assert.deepEqual((await nylas.events.find({ identifier: grant.id, eventId: target.id, queryParams: q })).data.title, 'Standup (moved)');

  obj = await davObject(ev.calHref, ev.series.icalUid);
  vs = vevents(obj.ics);
  assert.equal(vs.length, 2, obj.ics);
  [master, override] = vs[0].value('RECURRENCE-ID') ? [vs[1], vs[0]] : vs;
  assert.equal(master.value('SUMMARY'), 'Daily standup');
  assert.deepEqual(master.values('EXDATE'), ['20261019T090000']);
  assert.equal(override.value('SUMMARY'), 'Standup (moved)');
  assert.ok(override.lines.includes('RECURRENCE-ID;TZID=Europe/Berlin:20261026T090000'));
  ev.instances = inst;
});

test('calendars.getFreeBusy: the grant\'s own address gets its busy time, another address an error entry', async () => {
  assert.ok(ev.cal, 'needs the events calendar');
  // A random day in 2027/28, so that other runs' events do not meet ours.
  const day = new Date(Date.UTC(2027, 0, 4) + crypto.randomInt(0, 600) * DAY * 1000).toISOString().slice(0, 10);
  const next = new Date(Date.parse(day) + DAY * 1000).toISOString().slice(0, 10);
  const prev = new Date(Date.parse(day) - DAY * 1000).toISOString().slice(0, 10);
  const q = evq(ev.cal.id);
  const mk = (title, when, extra = {}) => nylas.events.create({ identifier: grant.id, queryParams: q, requestBody: { title: `${title} ${TAG}`, when, ...extra } });
  await mk('fb one', timespan(at(day, '09:00', BERLIN), at(day, '10:00', BERLIN), BERLIN));
  await mk('fb two', timespan(at(day, '09:30', BERLIN), at(day, '11:00', BERLIN), BERLIN)); // overlaps: one slot 09:00–11:00
  await mk('fb free', timespan(at(day, '12:00', BERLIN), at(day, '13:00', BERLIN), BERLIN), { busy: false }); // transparent
  await mk('fb ny', timespan(at(day, '14:00', NEW_YORK), at(day, '14:30', NEW_YORK), NEW_YORK));
  await mk('fb daily', timespan(at(prev, '05:00', 'UTC'), at(prev, '05:15', 'UTC'), 'UTC'), { recurrence: ['RRULE:FREQ=DAILY;COUNT=3'] });

  const res = await nylas.calendars.getFreeBusy({
    identifier: grant.id,
    requestBody: { startTime: at(day, '00:00', 'UTC'), endTime: at(next, '00:00', 'UTC'), emails: [CAROL, 'stranger@example.test', 'Carol@Example.TEST'] },
  });
  assert.match(res.requestId, /\S/);
  assert.equal(res.data.length, 3, JSON.stringify(res.data));
  const [own, other, again] = res.data;
  assert.equal(own.object, 'free_busy');
  assert.equal(own.email, CAROL);
  const slot = (a, b) => ({ object: 'time_slot', status: 'busy', startTime: a, endTime: b });
  assert.deepEqual(own.timeSlots, [
    slot(at(day, '05:00', 'UTC'), at(day, '05:15', 'UTC')),
    slot(at(day, '09:00', BERLIN), at(day, '11:00', BERLIN)),
    slot(at(day, '14:00', NEW_YORK), at(day, '14:30', NEW_YORK)),
  ], `busy slots of ${day}: the daily occurrence, the two overlapping meetings merged, the New York call; not the free one`);
  assert.equal(other.object, 'error');
  assert.equal(other.email, 'stranger@example.test');
  assert.match(other.error ?? '', /stranger@example\.test/);
  assert.equal(other.timeSlots, undefined);
  assert.deepEqual([again.object, again.timeSlots], ['free_busy', own.timeSlots], 'the grant\'s address in another case is the grant\'s address');

  // A day without events: free.
  const quiet = await nylas.calendars.getFreeBusy({
    identifier: grant.id, requestBody: { startTime: at(next, '06:00', 'UTC'), endTime: at(next, '12:00', 'UTC') - 1, emails: [CAROL] },
  });
  assert.deepEqual(quiet.data.map((f) => f.object), ['free_busy']);
  // Nylas (and the SDK's FreeBusy type) always carry time_slots, [] when free.
  assert.deepEqual(quiet.data[0].timeSlots, [], 'nothing busy');
  await expectApiError(nylas.calendars.getFreeBusy({ identifier: grant.id, requestBody: { startTime: at(next, '00:00', 'UTC'), endTime: at(day, '00:00', 'UTC'), emails: [CAROL] } }),
    { status: 400, type: 'invalid_request_error', message: /end_time must be after start_time/ }, 'free/busy: end before start');
});

test('events.destroy: one occurrence becomes an EXDATE; then the whole series goes', async () => {
  assert.ok(ev.instances, 'needs the occurrences of the previous tests');
  const q = evq(ev.cal.id);
  const last = ev.instances[3]; // 2026-11-09
  const res = await nylas.events.destroy({ identifier: grant.id, eventId: last.id, queryParams: q });
  assert.match(res.requestId, /\S/);
  const inst = (await listEvents(ev.cal.id, ...WINDOW, { expandRecurring: true })).filter((e) => e.masterEventId === ev.series.id);
  assert.deepEqual(inst.map((e) => e.id), ev.instances.slice(0, 3).map((e) => e.id), 'the occurrence is gone, the others stay');
  await expectApiError(nylas.events.find({ identifier: grant.id, eventId: last.id, queryParams: q }),
    { status: 404, type: 'not_found_error' }, 'find a deleted occurrence');
  let obj = await davObject(ev.calHref, ev.series.icalUid);
  const vs = vevents(obj.ics);
  const master = vs.find((v) => !v.value('RECURRENCE-ID'));
  assert.deepEqual(master.values('EXDATE').sort(), ['20261019T090000', '20261109T090000'], obj.ics);
  assert.ok(master.lines.includes('EXDATE;TZID=Europe/Berlin:20261109T090000') ||
    master.lines.some((l) => /^EXDATE;TZID=Europe\/Berlin:.*20261109T090000/.test(l)), obj.ics);
  assert.equal(vs.length, 2, 'the override of 2026-10-26 stays');

  // The series: its .ics is deleted, with the override.
  await nylas.events.destroy({ identifier: grant.id, eventId: ev.series.id, queryParams: q });
  assert.equal((await davGet(obj.href)).status, 404, `${obj.href} is gone from Radicale`);
  assert.deepEqual((await davObjects(ev.calHref)).map((o) => vevents(o.ics)[0].value('UID')).includes(ev.series.icalUid), false);
  const left = await listEvents(ev.cal.id, ...WINDOW, { expandRecurring: true });
  assert.deepEqual(left.map((e) => e.title), ['Flight JFK → BER', 'Trip']);
  for (const id of [ev.series.id, ev.instances[1].id]) {
    await expectApiError(nylas.events.find({ identifier: grant.id, eventId: id, queryParams: q }),
      { status: 404, type: 'not_found_error' }, `find ${id} after the series was deleted`);
  }
  await expectApiError(nylas.events.destroy({ identifier: grant.id, eventId: ev.series.id, queryParams: q }),
    { status: 404, type: 'not_found_error' }, 'destroy the series again');

  // A single event.
  await nylas.events.destroy({ identifier: grant.id, eventId: ev.trip.id, queryParams: q });
  obj = (await davObjects(ev.calHref)).filter((o) => o.ics.includes(ev.trip.icalUid));
  assert.deepEqual(obj, [], 'the trip is gone from Radicale');
});

test('a stale write: after another client changed the event on Radicale (PUT with If-Match), update and destroy answer 409 and overwrite nothing; after the sync the update goes through', async () => {
  assert.ok(ev.flight, 'needs the flight');
  const q = evq(ev.cal.id);
  const ICS = { 'Content-Type': 'text/calendar; charset=utf-8' };
  /** Another client renames the flight on Radicale (GET, PUT with If-Match); returns the new ETag. */
  const changeElsewhere = async (summary) => {
    const cur = await davObject(ev.calHref, ev.flight.icalUid);
    const changed = cur.ics.replace(/^SUMMARY:.*$/m, `SUMMARY:${summary}`);
    assert.notEqual(changed, cur.ics);
    const put = await dav('PUT', cur.href, { body: changed, headers: { ...ICS, 'If-Match': cur.etag } });
    assert.ok([201, 204].includes(put.status), `PUT with If-Match → ${put.status}: ${put.text}`);
    const stale = await dav('PUT', cur.href, { body: cur.ics, headers: { ...ICS, 'If-Match': cur.etag } });
    assert.equal(stale.status, 412, 'Radicale refuses a write with the old ETag (the precondition Orchard relies on)');
    return put.headers.etag;
  };
  /** Waits until the API shows summary: the refused write woke the calendar sync, which read the change. */
  const synced = async (summary) => {
    let seen;
    await waitFor(async () => (seen = (await nylas.events.find({ identifier: grant.id, eventId: ev.flight.id, queryParams: q })).data).title === summary,
      { timeout: 15000, interval: 200, what: () => `${JSON.stringify(summary)} from Radicale in the API, have ${JSON.stringify(seen?.title)}` });
    await sleep(500); // let a pass that was already due finish before the next change
    return seen;
  };
  const onRadicale = async () => vevents((await davObject(ev.calHref, ev.flight.icalUid)).ics)[0];

  // update with the old ETag
  let etag = await changeElsewhere('Flight (changed elsewhere)');
  await expectApiError(nylas.events.update({ identifier: grant.id, eventId: ev.flight.id, queryParams: q, requestBody: { title: 'Flight (mine)' } }),
    { status: 409, type: 'conflict_error', message: [/changed on the server/, /retry/] }, 'stale update');
  assert.equal((await onRadicale()).value('SUMMARY'), 'Flight (changed elsewhere)', 'the other client\'s change is not overwritten');
  assert.equal((await davObject(ev.calHref, ev.flight.icalUid)).etag, etag);
  const seen = await synced('Flight (changed elsewhere)');
  assert.equal(seen.location, 'JFK Terminal 1', 'the rest of the event as it was');

  // destroy with the old ETag
  etag = await changeElsewhere('Flight (changed again)');
  await expectApiError(nylas.events.destroy({ identifier: grant.id, eventId: ev.flight.id, queryParams: q }),
    { status: 409, type: 'conflict_error', message: /changed on the server/ }, 'stale destroy');
  const kept = await davObject(ev.calHref, ev.flight.icalUid);
  assert.deepEqual([kept.status, kept.etag], [200, etag], 'the event is still on Radicale, unchanged');
  await synced('Flight (changed again)');

  // Read again, retry: the update applies on top of the other client's version.
  const mine = (await nylas.events.update({ identifier: grant.id, eventId: ev.flight.id, queryParams: q, requestBody: { title: 'Flight (mine)' } })).data;
  assert.equal(mine.title, 'Flight (mine)');
  const v = await onRadicale();
  assert.equal(v.value('SUMMARY'), 'Flight (mine)');
  assert.ok(v.lines.includes('DTSTART;TZID=America/New_York:20261012T100000'), 'the times kept');
  assert.equal(v.value('LOCATION'), 'JFK Terminal 1');
});

test('errors through the SDK: IMAP grant, missing or unknown calendar, unknown event, end before start, unknown time zone', async () => {
  assert.ok(ev.cal, 'needs the events calendar');
  const q = evq(ev.cal.id);
  const objectsBefore = (await davObjects(ev.calHref)).map((o) => o.etag).sort();
  const s = at('2026-10-20', '10:00', BERLIN);
  const bad = (label, promise, status, type, message) => expectApiError(promise, { status, type, message }, label);

  // IMAP grants have mail only.
  const env = testEnv();
  await nylas.connectors.create({ requestBody: { provider: 'imap' } });
  const imap = (await nylas.auth.customAuthentication({
    requestBody: {
      provider: 'imap',
      settings: { imapUsername: BOB, imapPassword: env.users[BOB], imapHost: env.imap.host, imapPort: env.imap.port, smtpHost: env.smtp.host, smtpPort: env.smtp.port },
    },
  })).data;
  const iCloud = [/calendars need the iCloud connector/, new RegExp(imap.id)];
  await bad('imap: calendars.list', nylas.calendars.list({ identifier: imap.id }), 400, 'invalid_request_error', iCloud);
  await bad('imap: calendars.find primary', nylas.calendars.find({ identifier: imap.id, calendarId: 'primary' }), 400, 'invalid_request_error', iCloud);
  await bad('imap: calendars.create', nylas.calendars.create({ identifier: imap.id, requestBody: { name: calName('imap') } }), 400, 'invalid_request_error', iCloud);
  await bad('imap: events.list', nylas.events.list({ identifier: imap.id, queryParams: { calendarId: 'primary' } }), 400, 'invalid_request_error', iCloud);
  await bad('imap: free/busy', nylas.calendars.getFreeBusy({ identifier: imap.id, requestBody: { startTime: s, endTime: s + 3600, emails: [BOB] } }),
    400, 'invalid_request_error', iCloud);

  // calendar_id: required, and must exist.
  await bad('events.list without calendar_id', nylas.events.list({ identifier: grant.id, queryParams: {} }), 400, 'invalid_request_error', /calendar_id is required/);
  await bad('events.find without calendar_id', nylas.events.find({ identifier: grant.id, eventId: ev.flight.id, queryParams: {} }), 400, 'invalid_request_error', /calendar_id is required/);
  await bad('events.create without calendar_id', nylas.events.create({ identifier: grant.id, queryParams: {}, requestBody: { when: { time: s } } }),
    400, 'invalid_request_error', /calendar_id is required/);
  const nosuch = `nosuch${TAG}`;
  await bad('events.list in an unknown calendar', nylas.events.list({ identifier: grant.id, queryParams: evq(nosuch) }), 404, 'not_found_error', new RegExp(`calendar ${nosuch} not found`));
  await bad('events.create in an unknown calendar', nylas.events.create({ identifier: grant.id, queryParams: evq(nosuch), requestBody: { when: { time: s } } }),
    404, 'not_found_error', /calendar .* not found/);
  await bad('calendars.find unknown', nylas.calendars.find({ identifier: grant.id, calendarId: nosuch }), 404, 'not_found_error', /not found/);
  await bad('calendars.update unknown', nylas.calendars.update({ identifier: grant.id, calendarId: nosuch, requestBody: { name: calName('x') } }), 404, 'not_found_error', /not found/);
  await bad('events.find unknown', nylas.events.find({ identifier: grant.id, eventId: nosuch, queryParams: q }), 404, 'not_found_error', /event/);
  await bad('events.update unknown', nylas.events.update({ identifier: grant.id, eventId: nosuch, queryParams: q, requestBody: { title: 'x' } }), 404, 'not_found_error', /event/);
  await bad('the flight in another calendar', nylas.events.find({ identifier: grant.id, eventId: ev.flight.id, queryParams: evq('primary') }),
    404, 'not_found_error', /event/);

  // Bad times.
  const mk = (when, extra = {}) => nylas.events.create({ identifier: grant.id, queryParams: q, requestBody: { title: `bad ${TAG}`, when, ...extra } });
  await bad('end before start', mk(timespan(s, s - 3600, BERLIN)), 400, 'invalid_request_error', /when\.end_time: is before when\.start_time/);
  await bad('end_date before start_date', mk({ startDate: '2026-10-20', endDate: '2026-10-19' }), 400, 'invalid_request_error', /when\.end_date/);
  await bad('unknown start time zone', mk(timespan(s, s + 3600, 'Mars/Olympus_Mons', BERLIN)), 400, 'invalid_request_error',
    [/when\.start_timezone/, /"Mars\/Olympus_Mons" is not a known time zone/]);
  await bad('unknown time zone (time form)', mk({ time: s, timezone: 'Nowhere/Town' }), 400, 'invalid_request_error', /timezone/);
  await bad('not a date', mk({ date: '2026-13-45' }), 400, 'invalid_request_error', /when\.date/);
  await bad('no when', nylas.events.create({ identifier: grant.id, queryParams: q, requestBody: { title: 'x' } }), 400, 'invalid_request_error', /when is required/);
  await bad('bad RRULE', mk({ time: s }, { recurrence: ['RRULE:FREQ=SOMETIMES'] }), 400, 'invalid_request_error', /recurrence/);
  await bad('update: end before start', nylas.events.update({ identifier: grant.id, eventId: ev.flight.id, queryParams: q, requestBody: { when: timespan(s, s - 60, BERLIN) } }),
    400, 'invalid_request_error', /end/);
  await bad('list: end before start', nylas.events.list({ identifier: grant.id, queryParams: { calendarId: ev.cal.id, start: String(s), end: String(s - 3600) } }),
    400, 'invalid_request_error', /end must be after start/);
  await bad('list: over a year', nylas.events.list({ identifier: grant.id, queryParams: { calendarId: ev.cal.id, start: String(s), end: String(s + 400 * DAY), expandRecurring: true } }),
    400, 'invalid_request_error', /366 days/);

  assert.deepEqual((await davObjects(ev.calHref)).map((o) => o.etag).sort(), objectsBefore, 'nothing written to Radicale by the refused requests');
});
