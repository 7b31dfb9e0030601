// tickgate demo app: sign in, look up a quote through the REST proxy, watch a
// live ticker through the WebSocket relay, and follow the session's expiry.
//
// The browser never holds a vendor key: it holds an HttpOnly session cookie
// that it cannot read, and tickgate adds the key on the server side. So this
// file has no secrets and keeps nothing in web storage.
//
// The page runs under a strict Content-Security-Policy (script-src 'self',
// style-src 'self'): no inline code, no style attributes, no string-to-code.
// Views are switched with the hidden attribute and looks with CSS classes.
// Text from the network is only ever placed with textContent.
//
// The small pure helpers at the top are exported so that they can be unit
// tested outside a browser (frontend/testdata/app.test.mjs).

// Which feeds (/ws/{feed}) and which quote route (/api/{upstream}/...) to
// use is not written here: the server marks the page's <html> element with
// data-feeds="demo" and data-quote-path="/api/demo/v1/quote/{symbol}" for
// its own configuration (see pageConfig), so the same file works for any
// set of upstreams and feeds (DESIGN 1.4, 6).

// Symbols the ticker starts with after each sign-in.
const DEFAULT_SYMBOLS = ['AAPL', 'MSFT'];

// How often the session's expiry is re-read from the server. Reading it does
// not count as activity, so this never keeps an idle session alive.
const SESSION_REFRESH_MS = 30_000;
// Show "still here?" this long before idle expiry (at most half the idle
// window, so a very short idle setting does not show it all the time).
const IDLE_WARNING_MS = 120_000;
// When the countdown says the session is over, ask the server at most this
// often: the server's word counts, not our clock (and RFC 3339 times may be
// rounded down to the second).
const EXPIRY_CHECK_MS = 2_000;

// WebSocket reconnect: exponential backoff with jitter, so that a thousand
// browsers dropped by one restart do not all come back in the same second.
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
// After a policy close (4008) the server asked us to slow down: wait longer.
const POLICY_DELAY_MS = 30_000;
// After 1013 (cannot serve the feed now) never retry sooner than this.
const TRY_LATER_MIN_MS = 5_000;
// How long "still here?" waits for the pong before trying a REST call.
const PONG_WAIT_MS = 5_000;

// Error codes from the relay that mean "your last subscribe did not happen".
const SUBSCRIBE_ERRORS = new Set(['invalid_symbol', 'too_many_symbols']);

const priceFormat = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 2,
  maximumFractionDigits: 6,
  useGrouping: false,
});

// ---------------------------------------------------------------------------
// Pure helpers (exported for tests).

/** backoffDelay returns the wait before reconnect attempt number `attempt`
 *  (0-based): half the capped exponential delay plus a random half
 *  ("equal jitter"), so it grows but never collapses to zero. */
export function backoffDelay(attempt, random = Math.random) {
  const n = Math.max(0, Math.min(Number(attempt) || 0, 30));
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** n);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** reconnectPlan decides what a WebSocket close code means for the page
 *  (DESIGN 1.5): {login: true, message} when the session is over, otherwise
 *  {delay, message} for the next attempt. */
export function reconnectPlan(code, attempt, random = Math.random) {
  switch (code) {
    case 4001:
      return { login: true, message: 'Your session has ended. Please sign in again.' };
    case 4008:
      return {
        delay: POLICY_DELAY_MS + backoffDelay(attempt, random),
        message: 'The server closed the feed: too many messages or connections.',
      };
    case 1013:
      return {
        delay: Math.max(TRY_LATER_MIN_MS, backoffDelay(attempt, random)),
        message: 'The live feed is not available right now.',
      };
    case 1001:
      return { delay: backoffDelay(attempt, random), message: 'The server is restarting.' };
    case 1009:
      return { delay: backoffDelay(attempt, random), message: 'A message was too large for the server.' };
    default:
      return { delay: backoffDelay(attempt, random), message: 'The live feed connection was lost.' };
  }
}

/** parseRetryAfter reads a Retry-After header (seconds or an HTTP date) and
 *  returns whole seconds to wait, or null when absent or unreadable. */
export function parseRetryAfter(value, now = Date.now()) {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^\d+$/.test(text)) return Number(text);
  // An HTTP date names its day and month; without letters, Date.parse would
  // read "-5" as a year.
  if (!/[A-Za-z]{3}/.test(text)) return null;
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - now) / 1000));
}

/** normalizeSymbol trims and upper-cases what the user typed. */
export function normalizeSymbol(value) {
  return String(value ?? '').trim().toUpperCase();
}

/** formatDuration renders milliseconds as m:ss or h:mm:ss. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** formatPrice renders a price, or a dash when there is none. */
export function formatPrice(value) {
  return typeof value === 'number' && Number.isFinite(value) ? priceFormat.format(value) : '—';
}

/** errorMessage pulls the human text out of an error body: tickgate's own
 *  {"error":{"code","message"}} or a vendor's {"message"} passed through. */
export function errorMessage(body, fallback) {
  if (body && typeof body === 'object') {
    if (body.error && typeof body.error === 'object' && typeof body.error.message === 'string' && body.error.message) {
      return body.error.message;
    }
    if (typeof body.message === 'string' && body.message) return body.message;
  }
  return fallback;
}

/** toDate turns a vendor timestamp (Unix ms, Unix s, or ISO text) into a
 *  Date, or null. */
export function toDate(t) {
  if (typeof t === 'number' && Number.isFinite(t) && t > 0) {
    return new Date(t < 1e11 ? t * 1000 : t);
  }
  if (typeof t === 'string' && t !== '') {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? null : new Date(ms);
  }
  return null;
}

function finite(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** tickFromMessage reads one vendor message from a `data` frame. The demo
 *  vendor (marketsim) sends trades {"ev":"T","sym","p","s","t"} and quotes
 *  {"ev":"Q","sym","bp","ap","t"}; anything without a symbol is ignored.
 *  Returns {sym, last, bid, ask, time} with null for unknown fields. */
export function tickFromMessage(m) {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return null;
  if (typeof m.sym !== 'string' || m.sym === '') return null;
  return {
    sym: m.sym.toUpperCase(),
    last: finite(m.p),
    bid: finite(m.bp),
    ask: finite(m.ap),
    time: toDate(m.t),
  };
}

/**
 * ssoLoginPath returns the SSO login path the server announced, or '' when
 * there is none or it is not a plain same-origin path.
 */
export function ssoLoginPath(value) {
  return typeof value === 'string' && /^\/[A-Za-z0-9_.\/-]*$/.test(value) && !value.startsWith('//') ? value : '';
}

/** wsURL is a feed's address on the page's own origin: wss: under https. */
export function wsURL(loc, feed) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws/${encodeURIComponent(feed)}`;
}

const FEED_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** pageConfig reads the server's settings from the <html> element's
 *  dataset: {feeds: [names, default first], quotePath: '/api/...{symbol}'
 *  or ''}. Anything that does not look right is left out, so the page only
 *  ever talks to its own origin's /ws/ and /api/ routes. */
export function pageConfig(dataset) {
  const feeds = [];
  for (const name of String(dataset?.feeds ?? '').split(/\s+/)) {
    if (FEED_NAME.test(name) && !feeds.includes(name)) feeds.push(name);
  }
  const q = String(dataset?.quotePath ?? '');
  const ok = q.startsWith('/api/') && q.split('{symbol}').length === 2 && /^[A-Za-z0-9_.\/{}-]+$/.test(q);
  return { feeds, quotePath: ok ? q : '' };
}

/** quoteURL fills the quote path template with a symbol. */
export function quoteURL(template, sym) {
  return template.replace('{symbol}', encodeURIComponent(sym));
}

// ---------------------------------------------------------------------------
// The app.

function start(doc, win) {
  const $ = (id) => doc.getElementById(id);
  const ui = {
    loading: $('loading'),
    account: $('account'),
    user: $('user'),
    expiry: $('session-expiry'),
    logout: $('logout'),
    loginView: $('login-view'),
    loginForm: $('login-form'),
    username: $('username'),
    password: $('password'),
    loginSubmit: $('login-submit'),
    loginMessage: $('login-message'),
    sso: $('sso'),
    ssoLogin: $('sso-login'),
    appView: $('app-view'),
    quoteCard: $('quote-card'),
    tickerCard: $('ticker-card'),
    feedField: $('feed-field'),
    feedSelect: $('feed-select'),
    idleNotice: $('idle-notice'),
    stillHere: $('still-here'),
    quoteForm: $('quote-form'),
    quoteSymbol: $('quote-symbol'),
    quoteSubmit: $('quote-submit'),
    quoteResult: $('quote-result'),
    status: $('connection-status'),
    subscribeForm: $('subscribe-form'),
    subscribeSymbol: $('subscribe-symbol'),
    tickerMessage: $('ticker-message'),
    tickerAnnounce: $('ticker-announce'),
    ticker: $('ticker'),
    tickerEmpty: $('ticker-empty'),
  };

  const config = pageConfig(doc.documentElement.dataset);

  const state = {
    feed: config.feeds[0] ?? '', // the feed the ticker shows
    // Bumped whenever the page switches between signed in and signed out, so
    // that answers to requests made before the switch are dropped.
    generation: 0,
    signedIn: false,
    session: null, // {user, idleExpiresAt, expiresAt} in server-clock ms
    clockOffset: 0, // server clock minus ours, from the Date header
    idleWindow: 0, // longest idle time seen: approximates the idle setting
    lastExpiryCheck: 0,
    refreshing: null,
    tickTimer: 0,
    refreshTimer: 0,
    loginLockTimer: 0,

    symbols: [], // the ticker's symbols, in display order
    rows: new Map(), // symbol → {tr, cells, price, confirmed}
    // Subscribe requests not yet answered, oldest first: the relay answers
    // each one in order with `subscribed` or an `error`.
    pendingSubscribes: [],
    maxSymbols: Infinity,

    socket: null,
    ready: false,
    attempt: 0,
    reconnectTimer: 0,
    pongWaiters: [],
  };

  // --- HTTP ---------------------------------------------------------------

  // serverNow is the server's clock as far as we know it; expiry times come
  // from the server, so a skewed local clock must not end sessions early.
  const serverNow = () => Date.now() + state.clockOffset;

  function noteServerTime(res) {
    const date = Date.parse(res.headers.get('Date') || '');
    if (Number.isNaN(date)) return;
    const diff = date - Date.now();
    // The Date header has one-second resolution: ignore small differences
    // so the countdown does not jitter.
    state.clockOffset = Math.abs(diff) > 2000 ? diff : 0;
  }

  // request makes a same-origin call and returns {status, data, headers};
  // data is the parsed JSON body or null. It throws only when the server
  // cannot be reached.
  async function request(method, path, { body, csrf = false } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    // tickgate's CSRF check: a cross-site form cannot set custom headers.
    if (csrf) headers['X-CSRF'] = '1';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    noteServerTime(res);
    let data = null;
    if ((res.headers.get('Content-Type') || '').includes('json')) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    return { status: res.status, data, headers: res.headers };
  }

  // applySession stores {user, idle_expires_at, expires_at}; false when the
  // body is not a usable session.
  function applySession(data) {
    if (!data || typeof data !== 'object' || typeof data.user !== 'string') return false;
    const idle = Date.parse(data.idle_expires_at);
    if (Number.isNaN(idle)) return false;
    const abs = Date.parse(data.expires_at);
    state.session = { user: data.user, idleExpiresAt: idle, expiresAt: Number.isNaN(abs) ? Infinity : abs };
    state.idleWindow = Math.max(state.idleWindow, idle - serverNow());
    ui.user.textContent = data.user;
    ui.expiry.dataset.idleExpiresAt = new Date(idle).toISOString();
    updateExpiry();
    return true;
  }

  // loadSession asks GET /auth/session: 'ok', 'none' (401) or 'error'.
  async function loadSession() {
    const gen = state.generation;
    const r = await request('GET', '/auth/session');
    if (gen !== state.generation) return 'stale';
    if (r.status === 200 && applySession(r.data)) return 'ok';
    if (r.status === 401) return 'none';
    return 'error';
  }

  // refreshSession re-reads the expiry while signed in; concurrent calls
  // share one request.
  function refreshSession() {
    if (!state.signedIn) return Promise.resolve();
    if (state.refreshing) return state.refreshing;
    state.refreshing = (async () => {
      try {
        if ((await loadSession()) === 'none') {
          signOut('Your session has expired. Please sign in again.');
        }
      } catch {
        // Unreachable server: keep counting down; the next refresh retries.
      } finally {
        state.refreshing = null;
      }
    })();
    return state.refreshing;
  }

  // --- Views --------------------------------------------------------------

  function setMessage(el, text, info = false) {
    el.textContent = text;
    el.classList.toggle('info', info);
  }

  function showLogin(message, info = false) {
    ui.loading.hidden = true;
    ui.appView.hidden = true;
    ui.account.hidden = true;
    ui.loginView.hidden = false;
    setMessage(ui.loginMessage, message || '', info);
    ui.username.focus();
  }

  // signIn switches to the app once a session is known.
  function signIn() {
    state.generation++;
    state.signedIn = true;
    state.attempt = 0;
    ui.loading.hidden = true;
    ui.loginView.hidden = true;
    setMessage(ui.loginMessage, '');
    ui.appView.hidden = false;
    ui.account.hidden = false;
    ui.logout.disabled = false;

    resetTicker();

    state.tickTimer = win.setInterval(updateExpiry, 1000);
    state.refreshTimer = win.setInterval(refreshSession, SESSION_REFRESH_MS);
    updateExpiry();
    connect();
  }

  // signOut tears everything down and shows the login form. Nothing from the
  // old session stays on screen for whoever signs in next.
  function signOut(message, info = false) {
    state.generation++;
    state.signedIn = false;
    state.session = null;
    state.idleWindow = 0;
    win.clearInterval(state.tickTimer);
    win.clearInterval(state.refreshTimer);
    win.clearTimeout(state.reconnectTimer);
    closeSocket(1000, 'signed out');
    state.attempt = 0;
    state.symbols = [];
    state.rows.clear();
    state.pendingSubscribes = [];
    ui.ticker.replaceChildren();
    ui.tickerEmpty.hidden = true;
    ui.quoteResult.replaceChildren();
    ui.quoteResult.classList.remove('error');
    ui.quoteSymbol.value = '';
    ui.subscribeSymbol.value = '';
    setMessage(ui.tickerMessage, '');
    announce('');
    ui.user.textContent = '';
    ui.expiry.textContent = '';
    delete ui.expiry.dataset.idleExpiresAt;
    ui.idleNotice.hidden = true;
    setStatus('idle', 'Not connected');
    showLogin(message, info);
  }

  function setBusy(button, busy) {
    button.disabled = busy;
    button.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  // --- Login / logout -----------------------------------------------------

  async function onLogin(ev) {
    ev.preventDefault();
    const username = ui.username.value.trim();
    const password = ui.password.value;
    if (!username || !password) {
      setMessage(ui.loginMessage, 'Enter your username and password.');
      return;
    }
    setBusy(ui.loginSubmit, true);
    setMessage(ui.loginMessage, 'Signing in…', true);
    let locked = false;
    try {
      const r = await request('POST', '/auth/login', { body: { username, password }, csrf: true });
      // The password is not needed any more: do not leave it in the page.
      ui.password.value = '';
      if (r.status === 200) {
        if (applySession(r.data) || (await loadSession()) === 'ok') {
          signIn();
        } else {
          setMessage(ui.loginMessage, 'Signed in, but the session could not be read. Please try again.');
        }
      } else if (r.status === 401) {
        setMessage(ui.loginMessage, 'Invalid username or password.');
        ui.password.focus();
      } else if (r.status === 429) {
        const wait = parseRetryAfter(r.headers.get('Retry-After'));
        if (wait === null) {
          setMessage(ui.loginMessage, 'Too many sign-in attempts. Please try again later.');
        } else {
          setMessage(ui.loginMessage, `Too many sign-in attempts. Try again in ${wait} s.`);
          // Keep the button off until the server would accept a new try.
          locked = wait > 0;
          win.clearTimeout(state.loginLockTimer);
          state.loginLockTimer = win.setTimeout(() => setBusy(ui.loginSubmit, false), Math.min(wait, 300) * 1000);
        }
      } else {
        setMessage(ui.loginMessage, errorMessage(r.data, `Sign-in failed (HTTP ${r.status}).`));
      }
    } catch {
      setMessage(ui.loginMessage, 'Cannot reach the server. Check your connection and try again.');
    } finally {
      if (!locked) setBusy(ui.loginSubmit, false);
    }
  }

  async function onLogout() {
    setBusy(ui.logout, true);
    let message = 'You have signed out.';
    let info = true;
    try {
      const r = await request('POST', '/auth/logout', { csrf: true });
      // 401: the session was already gone, which is what we wanted.
      if (r.status !== 204 && r.status !== 200 && r.status !== 401) {
        message = errorMessage(r.data, `Sign-out may not have completed (HTTP ${r.status}).`);
        info = false;
      }
    } catch {
      message = 'Signed out here, but the server could not be reached to end the session.';
      info = false;
    }
    setBusy(ui.logout, false);
    signOut(message, info);
  }

  // --- Session expiry -----------------------------------------------------

  function updateExpiry() {
    const s = state.session;
    if (!state.signedIn || !s) return;
    const now = serverNow();
    const idleLeft = s.idleExpiresAt - now;
    const absLeft = s.expiresAt - now;
    if (Math.min(idleLeft, absLeft) <= 0) {
      ui.expiry.textContent = 'Session expired';
      confirmExpiry();
      return;
    }
    ui.expiry.textContent =
      absLeft < idleLeft ? `Session ends in ${formatDuration(absLeft)}` : `Idle timeout in ${formatDuration(idleLeft)}`;
    const warnAt = Math.min(IDLE_WARNING_MS, state.idleWindow / 2);
    // Only idle expiry can be pushed back by activity, so only it gets the
    // "still here?" notice.
    ui.idleNotice.hidden = !(idleLeft <= warnAt && idleLeft <= absLeft);
  }

  // confirmExpiry asks the server whether the session really ended; another
  // tab's activity may have extended it.
  function confirmExpiry() {
    const now = Date.now();
    if (now - state.lastExpiryCheck < EXPIRY_CHECK_MS) return;
    state.lastExpiryCheck = now;
    const gen = state.generation;
    loadSession()
      .then((r) => {
        if (r === 'none' && gen === state.generation) {
          signOut('You were signed out after a period of inactivity.');
        }
      })
      .catch(() => {});
  }

  // stillHere makes one request that counts as activity. A WebSocket ping is
  // the cheapest (control messages count, pushed data does not); without an
  // open feed, or if the ping did not move the expiry, a quote call does.
  async function onStillHere() {
    setBusy(ui.stillHere, true);
    const gen = state.generation;
    try {
      if (state.ready && (await ping())) {
        await refreshSession();
      }
      if (gen === state.generation && !ui.idleNotice.hidden && config.quotePath) {
        const r = await request('GET', quoteURL(config.quotePath, DEFAULT_SYMBOLS[0]));
        if (r.status === 401 && gen === state.generation) {
          signOut('Your session has expired. Please sign in again.');
          return;
        }
        await refreshSession();
      }
    } catch {
      // Unreachable: the countdown and the next refresh will tell.
    } finally {
      setBusy(ui.stillHere, false);
    }
  }

  // ping sends {"action":"ping"} and resolves true on pong, false on timeout.
  function ping() {
    return new Promise((resolve) => {
      if (!send({ action: 'ping' })) {
        resolve(false);
        return;
      }
      const timer = win.setTimeout(() => finish(false), PONG_WAIT_MS);
      function finish(ok) {
        win.clearTimeout(timer);
        state.pongWaiters = state.pongWaiters.filter((f) => f !== finish);
        resolve(ok);
      }
      state.pongWaiters.push(finish);
    });
  }

  // --- Quote --------------------------------------------------------------

  function showQuoteError(text) {
    ui.quoteResult.classList.add('error');
    const p = doc.createElement('p');
    p.textContent = text;
    ui.quoteResult.replaceChildren(p);
  }

  function renderQuote(q, asked) {
    ui.quoteResult.classList.remove('error');
    const dl = doc.createElement('dl');
    const time = toDate(q.ts ?? q.t ?? q.time);
    const fields = [
      ['symbol', 'Symbol', typeof q.symbol === 'string' ? q.symbol : asked],
      ['bid', 'Bid', formatPrice(q.bid)],
      ['ask', 'Ask', formatPrice(q.ask)],
      ['last', 'Last', formatPrice(q.last)],
      ['time', 'Time', time ? time.toLocaleString() : '—'],
    ];
    for (const [field, label, value] of fields) {
      const dt = doc.createElement('dt');
      dt.textContent = label;
      const dd = doc.createElement('dd');
      dd.dataset.field = field;
      dd.textContent = value;
      dl.append(dt, dd);
    }
    ui.quoteResult.replaceChildren(dl);
  }

  async function onQuote(ev) {
    ev.preventDefault();
    const sym = normalizeSymbol(ui.quoteSymbol.value);
    if (!sym) {
      showQuoteError('Enter a symbol.');
      return;
    }
    ui.quoteSymbol.value = sym;
    const gen = state.generation;
    setBusy(ui.quoteSubmit, true);
    try {
      const r = await request('GET', quoteURL(config.quotePath, sym));
      if (gen !== state.generation) return;
      if (r.status === 200 && r.data && typeof r.data === 'object' && !Array.isArray(r.data)) {
        renderQuote(r.data, sym);
      } else if (r.status === 401) {
        signOut('Your session has ended. Please sign in again.');
        return;
      } else if (r.status === 429) {
        const wait = parseRetryAfter(r.headers.get('Retry-After'));
        const base = errorMessage(r.data, 'Too many requests.');
        showQuoteError(wait === null ? base : `${base} Try again in ${wait} s.`);
      } else if (r.status === 200) {
        showQuoteError('The quote service sent an answer this page cannot read.');
      } else {
        showQuoteError(errorMessage(r.data, `Quote failed (HTTP ${r.status}).`));
      }
      // The lookup counted as activity: show the pushed-back expiry.
      refreshSession();
    } catch {
      if (gen === state.generation) showQuoteError('Cannot reach the server.');
    } finally {
      setBusy(ui.quoteSubmit, false);
    }
  }

  // --- Ticker rows --------------------------------------------------------

  function makeCell(tag, field, text, cls) {
    const el = doc.createElement(tag);
    if (field) el.dataset.field = field;
    if (cls) el.className = cls;
    el.textContent = text;
    return el;
  }

  function addSymbol(sym) {
    const tr = doc.createElement('tr');
    tr.dataset.symbol = sym;
    tr.className = 'pending';
    const name = makeCell('th', 'symbol', sym);
    name.scope = 'row';
    const cells = {
      last: makeCell('td', 'last', '…', 'num'),
      bid: makeCell('td', 'bid', '—', 'num'),
      ask: makeCell('td', 'ask', '—', 'num'),
      time: makeCell('td', 'time', ''),
    };
    const button = doc.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'Unsubscribe';
    button.setAttribute('aria-label', `Unsubscribe ${sym}`);
    button.addEventListener('click', () => unsubscribe(sym));
    const action = doc.createElement('td');
    action.append(button);
    tr.append(name, cells.last, cells.bid, cells.ask, cells.time, action);
    ui.ticker.append(tr);
    state.symbols.push(sym);
    state.rows.set(sym, { tr, cells, price: null, confirmed: false, announced: false });
    ui.tickerEmpty.hidden = true;
  }

  function removeSymbol(sym) {
    const row = state.rows.get(sym);
    if (row) row.tr.remove();
    state.rows.delete(sym);
    state.symbols = state.symbols.filter((s) => s !== sym);
    for (const pending of state.pendingSubscribes) pending.delete(sym);
    ui.tickerEmpty.hidden = state.symbols.length > 0;
  }

  function confirmRow(row) {
    if (row.confirmed) return;
    row.confirmed = true;
    row.tr.classList.remove('pending');
  }

  // announce tells screen readers about a change to the ticker's rows.
  function announce(text) {
    ui.tickerAnnounce.textContent = text;
  }

  function applyTick(tick) {
    const row = state.rows.get(tick.sym);
    if (!row) return; // data for a symbol we just unsubscribed
    confirmRow(row);
    if (tick.last !== null) {
      // Colour the price by its direction since the previous trade.
      if (row.price !== null && tick.last !== row.price) {
        const up = tick.last > row.price;
        row.cells.last.classList.toggle('up', up);
        row.cells.last.classList.toggle('down', !up);
      }
      row.price = tick.last;
      row.cells.last.textContent = formatPrice(tick.last);
    }
    if (tick.bid !== null) row.cells.bid.textContent = formatPrice(tick.bid);
    if (tick.ask !== null) row.cells.ask.textContent = formatPrice(tick.ask);
    if (tick.time) row.cells.time.textContent = tick.time.toLocaleTimeString();
  }

  function onSubscribe(ev) {
    ev.preventDefault();
    const sym = normalizeSymbol(ui.subscribeSymbol.value);
    if (!sym) {
      setMessage(ui.tickerMessage, 'Enter a symbol.');
      return;
    }
    if (state.rows.has(sym)) {
      setMessage(ui.tickerMessage, `${sym} is already in the ticker.`);
      return;
    }
    if (state.symbols.length >= state.maxSymbols) {
      setMessage(ui.tickerMessage, `The ticker is limited to ${state.maxSymbols} symbols.`);
      return;
    }
    setMessage(ui.tickerMessage, '');
    ui.subscribeSymbol.value = '';
    addSymbol(sym);
    // Without a ready socket the symbol is sent with the rest on `ready`.
    if (state.ready) sendSubscribe([sym]);
  }

  function unsubscribe(sym) {
    removeSymbol(sym);
    announce(`${sym} removed from the ticker.`);
    if (state.ready) send({ action: 'unsubscribe', symbols: [sym] });
  }

  // --- WebSocket ----------------------------------------------------------

  function setStatus(kind, text) {
    ui.status.dataset.state = kind;
    ui.status.textContent = text;
  }

  function send(msg) {
    const ws = state.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  function sendSubscribe(symbols) {
    if (send({ action: 'subscribe', symbols })) {
      state.pendingSubscribes.push(new Set(symbols));
    }
  }

  function closeSocket(code, reason) {
    const ws = state.socket;
    state.socket = null;
    state.ready = false;
    resolvePongs(false);
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
  }

  function resolvePongs(ok) {
    for (const finish of [...state.pongWaiters]) finish(ok);
  }

  // resetTicker starts the ticker over with the default symbols.
  function resetTicker() {
    state.symbols = [];
    state.rows.clear();
    state.pendingSubscribes = [];
    ui.ticker.replaceChildren();
    for (const sym of DEFAULT_SYMBOLS) addSymbol(sym);
  }

  // onFeedChange moves the ticker to another of the server's feeds: a new
  // socket, and the default symbols (symbols differ between vendors).
  function onFeedChange() {
    if (!config.feeds.includes(ui.feedSelect.value) || ui.feedSelect.value === state.feed) return;
    state.feed = ui.feedSelect.value;
    if (!state.signedIn) return;
    win.clearTimeout(state.reconnectTimer);
    closeSocket(1000, 'feed changed');
    state.attempt = 0;
    setMessage(ui.tickerMessage, '');
    resetTicker();
    connect();
  }

  function connect() {
    if (!state.signedIn || state.socket || !state.feed) return;
    win.clearTimeout(state.reconnectTimer);
    setStatus('connecting', 'Connecting…');
    let ws;
    try {
      ws = new WebSocket(wsURL(win.location, state.feed));
    } catch {
      scheduleReconnect(1006);
      return;
    }
    state.socket = ws;
    state.ready = false;
    // Events from a socket we have replaced or closed on purpose are ignored.
    ws.addEventListener('message', (ev) => {
      if (state.socket === ws) onFrame(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (state.socket !== ws) return;
      state.socket = null;
      state.ready = false;
      resolvePongs(false);
      scheduleReconnect(ev.code);
    });
  }

  function scheduleReconnect(code) {
    state.pendingSubscribes = [];
    for (const row of state.rows.values()) {
      row.confirmed = false;
      row.tr.classList.add('pending');
    }
    const plan = reconnectPlan(code, state.attempt);
    if (plan.login) {
      signOut(plan.message);
      return;
    }
    state.attempt++;
    setStatus('reconnecting', `${plan.message} Reconnecting in ${Math.ceil(plan.delay / 1000)} s…`);
    win.clearTimeout(state.reconnectTimer);
    state.reconnectTimer = win.setTimeout(reconnect, plan.delay);
  }

  // reconnect checks the session first: a refused upgrade (for example after
  // expiry) looks like a plain network failure from inside the browser.
  async function reconnect() {
    const gen = state.generation;
    try {
      const r = await loadSession();
      if (gen !== state.generation) return;
      if (r === 'none') {
        signOut('Your session has expired. Please sign in again.');
        return;
      }
    } catch {
      // Server unreachable: the connect below fails and backs off again.
    }
    connect();
  }

  function onFrame(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return; // not JSON: nothing this page can show
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'ready':
        onReady(msg);
        break;
      case 'subscribed':
        onSubscribed(Array.isArray(msg.symbols) ? msg.symbols : []);
        break;
      case 'unsubscribed':
        refreshSession();
        break;
      case 'data':
        if (Array.isArray(msg.messages)) {
          for (const m of msg.messages) {
            const tick = tickFromMessage(m);
            if (tick) applyTick(tick);
          }
        }
        break;
      case 'status':
        if (msg.upstream === 'connected') setStatus('live', 'Live');
        else if (msg.upstream === 'reconnecting') setStatus('upstream-reconnecting', 'Vendor feed reconnecting…');
        break;
      case 'pong':
        resolvePongs(true);
        break;
      case 'error':
        onRelayError(msg);
        break;
      default:
        break;
    }
  }

  function onReady(msg) {
    state.ready = true;
    state.attempt = 0;
    const max = msg.limits && msg.limits.max_symbols;
    state.maxSymbols = Number.isInteger(max) && max > 0 ? max : Infinity;
    setStatus('live', 'Live');
    // A new socket starts with no subscriptions: send the whole list again.
    state.pendingSubscribes = [];
    if (state.symbols.length > 0) sendSubscribe([...state.symbols]);
  }

  function onSubscribed(symbols) {
    for (const s of symbols) {
      if (typeof s !== 'string') continue;
      const sym = s.toUpperCase();
      const row = state.rows.get(sym);
      if (row) {
        confirmRow(row);
        // Once per symbol, not again on every resubscribe after a reconnect.
        if (!row.announced) announce(`${sym} is in the ticker.`);
        row.announced = true;
      }
      for (const pending of state.pendingSubscribes) pending.delete(sym);
    }
    state.pendingSubscribes = state.pendingSubscribes.filter((p) => p.size > 0);
    refreshSession();
  }

  function onRelayError(msg) {
    const code = typeof msg.code === 'string' ? msg.code : 'error';
    const text = typeof msg.message === 'string' && msg.message ? msg.message : code;
    if (!SUBSCRIBE_ERRORS.has(code)) {
      setMessage(ui.tickerMessage, text);
      return;
    }
    // The oldest unanswered subscribe failed (or just the symbols the error
    // names, if it does): drop the rows that never got confirmed.
    let failed = [];
    if (Array.isArray(msg.symbols)) {
      failed = msg.symbols.filter((s) => typeof s === 'string').map((s) => s.toUpperCase());
    } else if (state.pendingSubscribes.length > 0) {
      failed = [...state.pendingSubscribes.shift()];
    }
    const removed = failed.filter((sym) => {
      const row = state.rows.get(sym);
      return row && !row.confirmed;
    });
    for (const sym of removed) removeSymbol(sym);
    setMessage(ui.tickerMessage, removed.length > 0 ? `${text} (removed ${removed.join(', ')})` : text);
  }

  // --- Wiring -------------------------------------------------------------

  ui.loginForm.addEventListener('submit', onLogin);
  ui.logout.addEventListener('click', onLogout);
  ui.quoteForm.addEventListener('submit', onQuote);
  ui.subscribeForm.addEventListener('submit', onSubscribe);
  ui.stillHere.addEventListener('click', onStillHere);
  ui.feedSelect.addEventListener('change', onFeedChange);

  // The server's configuration: no quote route, no quote card; no feed, no
  // ticker; a choice of feeds only when there is more than one.
  ui.quoteCard.hidden = !config.quotePath;
  ui.tickerCard.hidden = !state.feed;
  for (const name of config.feeds) {
    const option = doc.createElement('option');
    option.value = name;
    option.textContent = name;
    ui.feedSelect.append(option);
  }
  ui.feedField.hidden = config.feeds.length < 2;
  // Back online: do not wait out the backoff.
  win.addEventListener('online', () => {
    if (state.signedIn && !state.socket) {
      win.clearTimeout(state.reconnectTimer);
      reconnect();
    }
  });

  // SSO: the server marks <html data-sso-login="/auth/oidc/login"> when an
  // identity provider is configured; the link is a plain navigation, and
  // only a same-origin path is ever used.
  const ssoPath = ssoLoginPath(doc.documentElement.dataset.ssoLogin);
  if (ssoPath && ui.sso && ui.ssoLogin) {
    ui.ssoLogin.href = ssoPath;
    ui.sso.hidden = false;
  }

  // Boot: the session cookie is HttpOnly, so only the server can say whether
  // we are signed in.
  (async () => {
    try {
      const r = await loadSession();
      if (r === 'ok') signIn();
      else if (r === 'none') showLogin('');
      else showLogin('The server could not check your session. Please sign in.');
    } catch {
      showLogin('Cannot reach the server. Reload the page to try again.');
    }
  })();
}

// In a browser, run; when imported by the unit tests, only export.
if (typeof document !== 'undefined' && typeof window !== 'undefined') {
  start(document, window);
}
