// Unit tests for the pure helpers of static/app.js, run with node's test
// runner by TestAppJSUnit (which copies app.js next to this file as
// app.mjs). No DOM is needed: app.js only starts itself in a browser.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  backoffDelay,
  errorMessage,
  formatDuration,
  formatPrice,
  normalizeSymbol,
  parseRetryAfter,
  reconnectPlan,
  ssoLoginPath,
  tickFromMessage,
  toDate,
  wsURL,
  pageConfig,
  quoteURL,
} from './app.mjs';

const low = () => 0;
const high = () => 0.999999;

test('backoffDelay grows, is capped, and keeps half as a floor', () => {
  assert.equal(backoffDelay(0, low), 500);
  assert.equal(backoffDelay(0, high), 1000);
  assert.equal(backoffDelay(1, low), 1000);
  assert.equal(backoffDelay(3, high), 8000);
  for (const attempt of [5, 6, 10, 100, 1e9]) {
    const d = backoffDelay(attempt, high);
    assert.ok(d <= 30000, `attempt ${attempt}: ${d}`);
    assert.ok(backoffDelay(attempt, low) >= 15000);
  }
  // Nonsense attempt numbers behave like the first attempt.
  for (const bad of [-1, NaN, undefined, 'x']) {
    const d = backoffDelay(bad, low);
    assert.equal(d, 500, String(bad));
  }
});

test('backoffDelay jitters', () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(4));
  assert.ok(seen.size > 1, 'default random source gives different delays');
});

test('reconnectPlan follows the close codes of the contract', () => {
  const expired = reconnectPlan(4001, 0, low);
  assert.equal(expired.login, true);
  assert.match(expired.message, /session/i);
  assert.equal(expired.delay, undefined);

  const policy = reconnectPlan(4008, 0, low);
  assert.ok(!policy.login);
  assert.ok(policy.delay >= 30000, `4008 waits longer: ${policy.delay}`);

  const later = reconnectPlan(1013, 0, low);
  assert.ok(!later.login);
  assert.ok(later.delay >= 5000, `1013 waits at least 5 s: ${later.delay}`);
  assert.ok(reconnectPlan(1013, 6, low).delay > later.delay, '1013 backs off');

  for (const code of [1000, 1001, 1006, 1009, 1011, 4000, 4999]) {
    const plan = reconnectPlan(code, 2, low);
    assert.ok(!plan.login, `code ${code}`);
    assert.equal(plan.delay, backoffDelay(2, low), `code ${code}`);
    assert.ok(plan.message.length > 0);
  }
});

test('parseRetryAfter reads seconds and dates', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('7', now), 7);
  assert.equal(parseRetryAfter(' 12 ', now), 12);
  assert.equal(parseRetryAfter('0', now), 0);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30);
  assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0);
  for (const bad of [null, undefined, '', '  ', '-5', '1.5e3x', 'soon', 42]) {
    assert.equal(parseRetryAfter(bad, now), null, String(bad));
  }
});

test('normalizeSymbol trims and upper-cases', () => {
  assert.equal(normalizeSymbol('  aapl '), 'AAPL');
  assert.equal(normalizeSymbol('eur/usd'), 'EUR/USD');
  assert.equal(normalizeSymbol(''), '');
  assert.equal(normalizeSymbol(null), '');
  assert.equal(normalizeSymbol(undefined), '');
});

test('formatDuration', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(-5000), '0:00');
  assert.equal(formatDuration(1), '0:01');
  assert.equal(formatDuration(59_000), '0:59');
  assert.equal(formatDuration(90_000), '1:30');
  assert.equal(formatDuration(30 * 60_000), '30:00');
  assert.equal(formatDuration(3_600_000 + 61_000), '1:01:01');
});

test('formatPrice', () => {
  assert.equal(formatPrice(191.2), '191.20');
  assert.equal(formatPrice(1.08345), '1.08345');
  assert.equal(formatPrice(12345.5), '12345.50');
  for (const bad of [null, undefined, NaN, Infinity, '191.2', {}]) {
    assert.equal(formatPrice(bad), '—', String(bad));
  }
});

test('errorMessage reads both error shapes', () => {
  assert.equal(errorMessage({ error: { code: 'not_found', message: 'unknown symbol' } }, 'x'), 'unknown symbol');
  assert.equal(errorMessage({ status: 'error', code: 404, message: 'unknown symbol' }, 'x'), 'unknown symbol');
  for (const bad of [null, undefined, 'text', 42, [], {}, { error: 'x' }, { error: { message: 5 } }, { message: '' }]) {
    assert.equal(errorMessage(bad, 'fallback'), 'fallback', JSON.stringify(bad));
  }
});

test('toDate', () => {
  assert.equal(toDate(1733241600123).toISOString(), '2024-12-03T16:00:00.123Z');
  assert.equal(toDate(1733241600).toISOString(), '2024-12-03T16:00:00.000Z');
  assert.equal(toDate('2024-12-03T16:00:00Z').toISOString(), '2024-12-03T16:00:00.000Z');
  for (const bad of [null, undefined, 0, -1, NaN, '', 'nope', {}]) {
    assert.equal(toDate(bad), null, String(bad));
  }
});

test('tickFromMessage reads marketsim trades and quotes', () => {
  const trade = tickFromMessage({ ev: 'T', sym: 'AAPL', p: 191.2, s: 100, t: 1733241600123 });
  assert.deepEqual(
    { ...trade, time: trade.time.getTime() },
    { sym: 'AAPL', last: 191.2, bid: null, ask: null, time: 1733241600123 },
  );
  const quote = tickFromMessage({ ev: 'Q', sym: 'msft', bp: 410.1, ap: 410.3, t: 1733241600125 });
  assert.equal(quote.sym, 'MSFT');
  assert.equal(quote.last, null);
  assert.equal(quote.bid, 410.1);
  assert.equal(quote.ask, 410.3);
  // Hostile or odd input is ignored, never thrown on.
  for (const bad of [null, undefined, 1, 'T', [], {}, { ev: 'status', status: 'connected' }, { sym: 5 }, { sym: '' }]) {
    assert.equal(tickFromMessage(bad), null, JSON.stringify(bad));
  }
  const odd = tickFromMessage({ sym: 'X', p: '1', bp: NaN, ap: Infinity, t: 'never' });
  assert.deepEqual(odd, { sym: 'X', last: null, bid: null, ask: null, time: null });
});

test('wsURL follows the page scheme and host', () => {
  assert.equal(wsURL({ protocol: 'https:', host: 'app.example.com' }, 'demo'), 'wss://app.example.com/ws/demo');
  assert.equal(wsURL({ protocol: 'http:', host: '127.0.0.1:8080' }, 'fx-1'), 'ws://127.0.0.1:8080/ws/fx-1');
});

test('pageConfig reads the feeds and quote path the server set', () => {
  assert.deepEqual(pageConfig({ feeds: 'demo', quotePath: '/api/demo/v1/quote/{symbol}' }), {
    feeds: ['demo'],
    quotePath: '/api/demo/v1/quote/{symbol}',
  });
  assert.deepEqual(pageConfig({ feeds: ' prices  fx prices ', quotePath: '' }), { feeds: ['prices', 'fx'], quotePath: '' });
  assert.deepEqual(pageConfig({}), { feeds: [], quotePath: '' });
  assert.deepEqual(pageConfig(undefined), { feeds: [], quotePath: '' });
  // Anything that could leave the origin or the /api/ routes is dropped.
  for (const bad of ['https://evil.example/{symbol}', '//evil/api/{symbol}', '/auth/{symbol}', '/api/x', '/api/{symbol}/{symbol}', '/api/x?y={symbol}']) {
    assert.equal(pageConfig({ feeds: 'demo', quotePath: bad }).quotePath, '', bad);
  }
  assert.deepEqual(pageConfig({ feeds: 'Demo ../x a/b ok' }).feeds, ['ok']);
});

test('quoteURL escapes the symbol', () => {
  assert.equal(quoteURL('/api/demo/v1/quote/{symbol}', 'AAPL'), '/api/demo/v1/quote/AAPL');
  assert.equal(quoteURL('/api/demo/v1/quote/{symbol}', 'A/B?C'), '/api/demo/v1/quote/A%2FB%3FC');
  assert.equal(quoteURL('/api/u/{symbol}/last', 'BRK.B'), '/api/u/BRK.B/last');
});

test('ssoLoginPath accepts only plain same-origin paths', () => {
  assert.equal(ssoLoginPath('/auth/oidc/login'), '/auth/oidc/login');
  for (const bad of [undefined, null, '', 'auth/oidc/login', '//evil.example/x', 'https://evil.example/',
    'javascript:alert(1)', '/a?next=//evil', '/a b', '/a"b', 42]) {
    assert.equal(ssoLoginPath(bad), '', String(bad));
  }
});
