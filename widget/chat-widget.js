/* Frontdesk chat widget: plain JavaScript, no dependencies, no build step (docs/widget.md).
 * Sets no cookies; keeps its state in localStorage. */
(function () {
  'use strict';
  if (window.ChatWidget && window.ChatWidget.version) return;
  // Only known while this file runs: the default baseUrl is where the widget came from.
  var SCRIPT = document.currentScript;
  var SCRIPT_ORIGIN = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : location.origin;
  var TAG = '[ChatWidget]';
  var OPTIONS = { apiKey: 'string', token: 'string', getToken: 'function', customerId: 'string',
    baseUrl: 'string', theme: 'object', strings: 'object', nonce: 'string' };
  var THEME = { primaryColor: 'string', headerText: 'string', welcomeMessage: 'string' };
  var STRINGS = {
    open: 'Open chat', close: 'Close chat', header: 'Support',
    welcome: 'Hi! How can we help?', placeholder: 'Type a message…', send: 'Send',
    typing: 'Typing…', agent: 'Agent', bot: 'Automated reply', sending: 'Sending…',
    sent: 'Sent', read: 'Read', offline: 'Offline. Your messages will be sent when you are back.',
    unread: 'unread', closed: 'This conversation was closed. Write to start a new one.'
  };
  var STYLE = [
    ':host{all:initial!important;display:block!important;position:static!important}',
    '.fd{all:initial;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);',
    '--c:#1f6feb;--on:#fff;--bg:#fff;--fg:#1d2433;--mu:#5f6b7a;--bu:#eef1f5;--bd:#d8dde4;--bot:#f5efe0}',
    '@media (prefers-color-scheme:dark){.fd{--bg:#1d2026;--fg:#e8eaed;--mu:#a3acb9;--bu:#2d323b;--bd:#3a404b;--bot:#3a3424}}',
    ':where(.fd *){box-sizing:border-box;font:inherit;color:inherit;margin:0}',
    '[hidden]{display:none!important}',
    '.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;',
    'border-radius:50%;background:var(--c);color:var(--on);cursor:pointer;display:flex;align-items:center;',
    'justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.25)}',
    '.launcher svg{width:28px;height:28px;fill:var(--on)}',
    '.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;',
    'background:#d93025;color:#fff;font-size:12px;line-height:20px;text-align:center}',
    '.panel{position:fixed;right:20px;bottom:88px;z-index:2147483001;width:360px;',
    'height:min(560px,calc(100vh - 108px));display:flex;flex-direction:column;background:var(--bg);',
    'border:1px solid var(--bd);border-radius:12px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.25)}',
    'header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--c);color:var(--on)}',
    'h2{flex:1;font-size:16px;font-weight:600}',
    '.st{font-size:12px;opacity:.9}',
    '.x{border:0;background:transparent;color:var(--on);font-size:22px;line-height:1;cursor:pointer;padding:2px 6px}',
    '.log{flex:1;overflow-y:auto;list-style:none;padding:12px;display:flex;flex-direction:column;gap:6px}',
    '.log li{max-width:82%;padding:8px 11px;border-radius:12px;background:var(--bu);white-space:pre-wrap;',
    'overflow-wrap:anywhere;align-self:flex-start}',
    '.log li.me{align-self:flex-end;background:var(--c);color:var(--on)}',
    '.log li.bot{background:var(--bot)}',
    '.log li.note{align-self:center;background:transparent;color:var(--mu);font-size:12px;text-align:center}',
    '.who{display:block;font-size:11px;color:var(--mu);margin-bottom:2px}',
    '.tick{display:block;font-size:11px;opacity:.8;text-align:right}',
    '.pending{opacity:.7}',
    '[aria-busy] .content:after{content:"…"}',
    '.typing{padding:0 14px 6px;font-size:12px;color:var(--mu)}',
    'form{display:flex;gap:8px;padding:10px;border-top:1px solid var(--bd)}',
    'textarea{flex:1;resize:none;height:40px;padding:9px 10px;border:1px solid var(--bd);border-radius:8px;',
    'background:var(--bg)}',
    '.send{border:0;border-radius:8px;padding:0 14px;background:var(--c);color:var(--on);cursor:pointer;font-weight:600}',
    ':focus-visible{outline:2px solid var(--c);outline-offset:2px}',
    '.launcher:focus-visible,header :focus-visible{outline-color:var(--on)}',
    '@media (max-width:480px){.panel{inset:0;width:auto;height:auto;border-radius:0;border:0}',
    '.open .launcher{display:none}}'
  ].join('');

  var w = null; // the one live instance
  var handlers = {};

  function err(message) { console.error(TAG + ' ' + message); }
  function emit(name, value) {
    (handlers[name] || []).slice().forEach(function (fn) {
      try { fn(value); } catch (e) { console.error(TAG, e); }
    });
  }
  function el(tag, attrs, kids) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (kid) { node.appendChild(kid); });
    return node;
  }
  function randomId(prefix) {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }
  function storage(key, value) {
    // localStorage may be missing or throw (private modes): then memory only.
    try {
      if (value === undefined) return JSON.parse(localStorage.getItem(key) || 'null');
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { return null; }
    return null;
  }
  function typeOf(v) { return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v; }
  function checked(given, schema, where) {
    var out = {};
    Object.keys(given || {}).forEach(function (k) {
      if (!schema[k]) err('unknown option ' + where + k + ' (ignored)');
      else if (typeOf(given[k]) !== schema[k]) err('option ' + where + k + ' must be a ' + schema[k] + ', not ' + typeOf(given[k]) + ' (ignored)');
      else out[k] = given[k];
    });
    return out;
  }

  function init(options) {
    if (typeOf(options) !== 'object') { err('init() needs an options object'); return api; }
    if (w) { err('init() called twice: the earlier widget is destroyed first'); destroy(); }
    var o = checked(options, OPTIONS, '');
    var theme = checked(o.theme, THEME, 'theme.');
    var strings = {};
    Object.keys(STRINGS).forEach(function (k) { strings[k] = STRINGS[k]; });
    Object.keys(o.strings || {}).forEach(function (k) {
      if (!(k in STRINGS)) err('unknown string ' + k + ' (ignored)');
      else if (typeof o.strings[k] !== 'string') err('string ' + k + ' must be a string (ignored)');
      else strings[k] = o.strings[k];
    });
    if (theme.headerText) strings.header = theme.headerText;
    if (theme.welcomeMessage) strings.welcome = theme.welcomeMessage;
    if (!o.token && !o.apiKey && !o.getToken) { err('init() needs token (with getToken) or apiKey'); return api; }
    if (o.token && o.apiKey) err('both token and apiKey given: the token is used');
    if ((o.token || o.getToken) && !o.customerId) err('with a token, customerId must be the token\'s customer');
    var base = SCRIPT_ORIGIN;
    if (o.baseUrl) {
      try { base = new URL(o.baseUrl, location.href).href.replace(/\/+$/, ''); } catch (e) { err('baseUrl is not a URL (ignored)'); }
    }
    var customerId = o.customerId;
    if (customerId && !/^[A-Za-z0-9\-_.:@+]{1,128}$/.test(customerId)) {
      err('customerId must be 1 to 128 of A-Z a-z 0-9 - _ . : @ + (a generated id is used)');
      customerId = null;
    }
    if (!customerId) {
      customerId = storage('frontdesk.customerId') || randomId('visitor-');
      storage('frontdesk.customerId', customerId);
    }
    w = {
      o: o, s: strings, base: base, cid: customerId, token: o.token || null,
      key: 'frontdesk.widget:' + base + ':' + customerId,
      msgs: {}, lastId: 0, ws: null, wsReady: false, fails: 0, timers: {}, started: false,
      open: false, typingSent: 0, readSent: 0, unread: 0, off: []
    };
    var state = load();
    if (document.body) mount(theme);
    else document.addEventListener('DOMContentLoaded', function () { if (w) mount(theme); }, { once: true });
    // Cheap: nothing is requested unless there is something to resume.
    if (state.conv || state.outbox.length) start();
    return api;
  }

  function load() {
    var s = storage(w.key) || w.mem || {};
    return { conv: s.conv || null, cursor: s.cursor || 0, seen: s.seen || 0, outbox: s.outbox || [] };
  }
  function save(change) {
    var s = load();
    Object.keys(change).forEach(function (k) { s[k] = change[k]; });
    w.mem = s; // the fallback when localStorage is unavailable
    storage(w.key, s);
    return s;
  }
  function st() { return load(); }

  function mount(theme) {
    var host = el('frontdesk-chat-widget');
    var root = host.attachShadow({ mode: 'open' });
    var sheet = null;
    if (!w.o.nonce && root.adoptedStyleSheets && window.CSSStyleSheet) {
      try { sheet = new CSSStyleSheet(); sheet.replaceSync(STYLE); root.adoptedStyleSheets = [sheet]; } catch (e) { sheet = null; }
    }
    if (!sheet) {
      var style = el('style', w.o.nonce ? { nonce: w.o.nonce } : {});
      style.textContent = STYLE;
      root.appendChild(style);
    }
    var s = w.s;
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2z');
    svg.appendChild(path);
    var u = w.ui = {
      host: host,
      root: root,
      badge: el('span', { class: 'badge', hidden: '' }),
      title: el('h2', { id: 'fd-title', text: s.header }),
      status: el('span', { class: 'st', role: 'status' }),
      close: el('button', { class: 'x', type: 'button', 'aria-label': s.close, text: '×' }),
      log: el('ol', { class: 'log', 'aria-live': 'polite', 'aria-label': s.header }),
      typing: el('div', { class: 'typing', 'aria-live': 'polite', hidden: '', text: s.typing }),
      input: el('textarea', { rows: '1', 'aria-label': s.placeholder, placeholder: s.placeholder, maxlength: '10000' }),
      send: el('button', { class: 'send', type: 'submit', text: s.send })
    };
    u.launcher = el('button', { class: 'launcher', type: 'button', 'aria-label': s.open, 'aria-expanded': 'false', 'aria-controls': 'fd-panel' }, [svg, u.badge]);
    u.form = el('form', {}, [u.input, u.send]);
    u.panel = el('section', { class: 'panel', id: 'fd-panel', role: 'dialog', 'aria-labelledby': 'fd-title', hidden: '' },
      [el('header', {}, [u.title, u.status, u.close]), u.log, u.typing, u.form]);
    u.welcome = el('li', { class: 'bot note welcome', text: s.welcome });
    u.log.appendChild(u.welcome);
    u.box = el('div', { class: 'fd', 'data-conn': 'idle' }, [u.launcher, u.panel]);
    if (theme.primaryColor) {
      if (window.CSS && CSS.supports && !CSS.supports('color', theme.primaryColor)) err('theme.primaryColor is not a CSS colour (ignored)');
      else u.box.style.setProperty('--c', theme.primaryColor); // CSSOM: allowed under a strict CSP
    }
    root.appendChild(u.box);
    document.body.appendChild(host);
    u.box.style.setProperty('--on', onColour(getComputedStyle(u.launcher).backgroundColor));
    u.launcher.addEventListener('click', toggle);
    u.close.addEventListener('click', close);
    u.panel.addEventListener('keydown', function (e) { if (e.key === 'Escape') { e.preventDefault(); close(); } });
    u.form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
    u.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    u.input.addEventListener('input', typing);
    listen(window, 'online', wake);
    listen(window, 'focus', wake);
    listen(document, 'visibilitychange', function () { if (!document.hidden) wake(); });
    renderOutbox();
    badge();
  }
  function listen(target, name, fn) {
    target.addEventListener(name, fn);
    w.off.push(function () { target.removeEventListener(name, fn); });
  }

  // the open/close API
  function open() {
    if (!w || !w.ui || w.open) return;
    w.open = true;
    w.focusBack = document.activeElement;
    w.ui.panel.hidden = false;
    w.ui.box.classList.add('open');
    w.ui.launcher.setAttribute('aria-expanded', 'true');
    w.ui.input.focus();
    w.ui.log.scrollTop = w.ui.log.scrollHeight;
    start();
    markRead();
    emit('open');
  }
  function close() {
    if (!w || !w.ui || !w.open) return;
    w.open = false;
    w.ui.panel.hidden = true;
    w.ui.box.classList.remove('open');
    w.ui.launcher.setAttribute('aria-expanded', 'false');
    var back = w.focusBack;
    (back && back !== document.body && back !== w.ui.host && back.isConnected ? back : w.ui.launcher).focus();
    badge();
    emit('close');
  }
  // Text on the theme colour: white or black, whichever has more contrast.
  function onColour(rgb) {
    var l = (rgb.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3).map(function (v) {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    l = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2] + 0.05;
    return 1.05 / l >= l / 0.05 ? '#fff' : '#000';
  }

  function toggle() { if (w) (w.open ? close : open)(); }

  // HTTP
  function request(method, path, body, again) {
    var headers = { Authorization: 'Bearer ' + (w.token || w.o.apiKey || '') };
    if (body) headers['Content-Type'] = 'application/json';
    var me = w;
    return fetch(me.base + path, {
      method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
      credentials: 'omit', cache: 'no-store', mode: 'cors'
    }).then(function (r) {
      if (r.status === 401 && me.o.getToken && !again) {
        return renew().then(function () { return request(method, path, body, true); });
      }
      return r.json().catch(function () { return null; }).then(function (data) {
        var code = data && data.error && data.error.code; // {"error": {"code", "message"}}
        if (!r.ok && r.status !== 404 && r.status !== 409) emit('error', { status: r.status, code: code, path: path });
        return { status: r.status, ok: r.ok, data: data, code: code };
      });
    });
  }
  function renew() {
    if (!w.renewing) {
      var me = w;
      w.renewing = Promise.resolve().then(function () { return me.o.getToken(); }).then(function (v) {
        var token = typeof v === 'string' ? v : v && v.token;
        if (!token) throw new Error('getToken() gave no token');
        me.token = token;
        var expires = v && v.expiresAt ? Date.parse(v.expiresAt) : 0;
        clearTimeout(me.timers.renew);
        // Renew a minute early so a socket never meets the expiry.
        if (expires) me.timers.renew = setTimeout(function () { if (w === me) renew(); }, Math.max(5000, expires - Date.now() - 60000));
      }).catch(function (e) { emit('error', { code: 'token', message: String(e) }); })
        .then(function () { me.renewing = null; });
    }
    return w.renewing;
  }

  // starting, history and catch-up
  function start() {
    if (!w || w.started) return;
    w.started = w.wantStart = true;
    var me = w;
    var ready = w.o.getToken && !w.token ? renew() : Promise.resolve();
    ready.then(function () { return findConversation(); }).then(function () {
      if (w !== me) return;
      me.found = true; // only now may flush() create a conversation: an open one is resumed
      connect();
      flush();
    }).catch(function () {
      if (w === me) { me.started = false; retryLater('start', start); }
    });
  }
  function findConversation() {
    if (st().conv) return catchUp();
    return request('GET', '/api/partner/conversations/' + encodeURIComponent(w.cid)).then(function (r) {
      if (!r.ok) throw new Error('conversations ' + r.status);
      var open = (r.data || []).filter(function (c) { return c.status !== 'closed'; }).pop();
      if (open) { save({ conv: open.id }); return catchUp(); }
      return null;
    });
  }
  function catchUp(more) {
    var conv = st().conv;
    if (!conv) return Promise.resolve();
    var me = w;
    // Without a socket, re-read my unread messages (a page at most) for the read ticks.
    var after = w.lastId;
    if (!more && !w.wsReady) {
      Object.keys(w.msgs).forEach(function (id) {
        var m = w.msgs[id];
        if (!m.isFromAgent && !m.readStatus && m.id - 1 < after) after = m.id - 1;
      });
    }
    return request('GET', '/api/partner/messages/' + conv + '?after=' + after + '&limit=1000').then(function (r) {
      if (w !== me || st().conv !== conv) return null;
      if (r.status === 404) { save({ conv: null }); return null; }
      if (!r.ok) throw new Error('messages ' + r.status);
      (r.data || []).forEach(function (m) { add(m, !!me.loaded); });
      me.loaded = true;
      if ((r.data || []).length === 1000) return catchUp(true);
      markRead();
      return null;
    });
  }
  function wake() {
    if (!w) return;
    if (!w.found) { if (w.wantStart && !w.started) start(); return; }
    if (!w.ws) { clearTimeout(w.timers.ws); w.fails = Math.min(w.fails, 1); connect(); }
    catchUp().catch(function () {});
    flush();
  }
  function retryLater(name, fn) {
    clearTimeout(w.timers[name]);
    var n = (w.tries = (w.tries || 0) + 1);
    // Backoff with jitter: a restarted server is not hit by every widget at once.
    var delay = Math.min(30000, 500 * Math.pow(2, Math.min(n, 6))) * (0.5 + Math.random() / 2);
    var me = w;
    w.timers[name] = setTimeout(function () { if (w === me) fn(); }, delay);
  }

  // WebSocket (token) or polling (apiKey)
  function connect() {
    if (!w || w.ws || w.destroyed) return;
    if (!w.token) { poll(); return; } // an API key must never go into a URL: REST polling only
    if (share()) return;
    var cursor = st().cursor;
    var url = w.base.replace(/^http/, 'ws') + '/ws?clientId=' + encodeURIComponent(w.cid) + (cursor ? '&since=' + cursor : '');
    var me = w;
    var ws;
    try { ws = new WebSocket(url, ['frontdesk.v1', 'bearer.' + w.token]); } catch (e) { poll(); return; }
    w.ws = ws;
    conn('connecting');
    ws.onmessage = function (e) { if (w === me) { frame(e.data); if (me.bc) me.bc.postMessage({ t: 'frame', data: e.data }); } };
    ws.onclose = function (e) {
      if (w !== me || me.ws !== ws) return;
      me.ws = null;
      me.wsReady = false;
      undraft(); // deltas are not replayed: the stored message will show whole
      me.fails++;
      if (me.bc) me.bc.postMessage({ t: 'down' });
      if (me.fails >= 4) save({ cursor: 0 }); // a refused since (400) must not block forever
      if (e.code === 1008 && me.o.getToken) renew();
      if (me.fails >= 2) poll();
      conn(me.fails >= 2 ? 'polling' : 'connecting');
      retryLater('ws', connect);
    };
  }
  // One socket per browser: the tab holding a Web Lock opens it and relays its frames to the
  // others over a BroadcastChannel; they send theirs through it, and poll while it is down.
  function share() {
    if (w.leader || !window.BroadcastChannel || !navigator.locks) return false;
    var me = w;
    if (!w.bc) {
      w.bc = new BroadcastChannel(w.key);
      w.bc.onmessage = function (e) { if (w === me) relayed(e.data || {}); };
      navigator.locks.request(w.key, function () {
        if (w !== me) return null;
        me.leader = true;
        clearTimeout(me.timers.poll); me.timers.poll = null;
        connect();
        return new Promise(function (resolve) { me.unlock = resolve; });
      }).catch(function () {});
      w.bc.postMessage({ t: 'hello' });
    }
    poll();
    return true;
  }
  function relayed(m) {
    if (w.leader) {
      if (m.t === 'send') send(m.type, m.payload);
      if (m.t === 'hello' && w.wsReady) w.bc.postMessage({ t: 'frame', data: '{"type":"ready"}' });
    } else if (m.t === 'frame') frame(m.data);
    else if (m.t === 'down') { w.wsReady = false; poll(); }
  }
  function send(type, payload) {
    if (w.bc && !w.leader && w.wsReady) { w.bc.postMessage({ t: 'send', type: type, payload: payload }); return true; }
    if (!w.ws || !w.wsReady) return false;
    try { w.ws.send(JSON.stringify({ type: type, payload: payload })); return true; } catch (e) { return false; }
  }
  function frame(text) {
    var f;
    try { f = JSON.parse(text); } catch (e) { return; }
    var p = f.payload || {};
    var s = st();
    if (f.cursor) save({ cursor: f.cursor });
    if (f.type === 'ready') {
      w.wsReady = true; w.fails = 0; w.tries = 0;
      clearTimeout(w.timers.poll); w.timers.poll = null;
      conn('live');
      catchUp().catch(function () {}); // covers the gap between the history load and the socket
      flush();
    } else if (f.type === 'resync') {
      save({ cursor: 0 });
      catchUp().catch(function () {});
    } else if (f.type === 'message') {
      if (p.conversationId === s.conv) add(p, true);
    } else if (f.type === 'messageDelta') {
      if (p.conversationId === s.conv) delta(p);
    } else if (f.type === 'typing') {
      if (p.conversationId === s.conv && p.isAgent) {
        showTyping(p.isTyping);
        // A draft the job ended without a message goes; typing may overtake its message a bit.
        if (!p.isTyping && w.draft) { clearTimeout(w.timers.draft); w.timers.draft = setTimeout(undraft, 1500); }
      }
    } else if (f.type === 'read') {
      if (p.conversationId === s.conv && p.isAgent) {
        Object.keys(w.msgs).forEach(function (id) {
          var m = w.msgs[id];
          if (!m.isFromAgent && m.id <= p.messageId) { m.readStatus = true; render(m); }
        });
      }
    } else if (f.type === 'status') {
      if (p.conversationId === s.conv && p.status === 'closed') closedConversation();
      else if (p.status === 'waiting' && (!s.conv || p.conversationId > s.conv)) adopt(p.conversationId);
    }
  }
  function poll() {
    if (!w || w.timers.poll) return;
    if (!w.wsReady) conn('polling');
    var me = w;
    var tick = function () {
      if (w !== me || me.wsReady) { me.timers.poll = null; return; }
      // The socket may have come back meanwhile: then its state stands.
      var state = function (name) { return function () { if (!me.wsReady) conn(name); }; };
      catchUp().then(state('polling'), state('offline')).then(function () {
        if (w !== me || me.wsReady) { me.timers.poll = null; return; }
        me.timers.poll = setTimeout(tick, me.open && !document.hidden ? 3000 : 15000);
      });
    };
    w.timers.poll = setTimeout(tick, 0);
  }
  function conn(state) {
    if (!w.ui) return;
    w.ui.box.setAttribute('data-conn', state);
    w.ui.status.textContent = state === 'offline' ? w.s.offline : '';
  }

  // messages
  function add(m, live) {
    if (!m || typeof m.id !== 'number') return;
    var known = w.msgs[m.id];
    w.msgs[m.id] = m;
    if (m.id > w.lastId) w.lastId = m.id;
    if (m.clientMessageId) {
      // Stored, even if our own POST's answer was lost: no resend.
      var s = st();
      var left = s.outbox.filter(function (x) { return x.cid !== m.clientMessageId; });
      if (left.length !== s.outbox.length) save({ outbox: left });
      var pending = w.ui && w.ui.root.querySelector('li[data-cid="' + cssEscape(m.clientMessageId) + '"]');
      if (pending && !pending.dataset.id) pending.remove();
    }
    if (w.draft && m.metadata && m.metadata.replyTo === w.draft.r) undraft();
    render(m);
    if (!known && m.isFromAgent) {
      showTyping(false);
      if (live) emit('message', m);
      markRead();
      badge();
    } else if (!known && live) emit('message', m);
  }
  // An automated reply as it is written (docs/realtime.md): seq 0 (re)starts it, a gap stops it.
  function delta(p) {
    var d = w.draft;
    if (p.seq === 0) { undraft(); d = w.draft = { r: p.replyTo, n: -1, t: '' }; }
    if (!d || p.replyTo !== d.r || p.seq !== d.n + 1) return;
    d.n = p.seq;
    d.t += p.text;
    if (!w.ui) return;
    var log = w.ui.log;
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    if (!d.li) {
      d.li = log.appendChild(el('li', { class: 'bot', 'aria-busy': 'true' }, [el('span', { class: 'who', text: w.s.bot }), el('span', { class: 'content' })]));
    }
    d.li.lastChild.textContent = d.t;
    if (atEnd) log.scrollTop = log.scrollHeight; // a customer reading back is not pulled down
  }
  function undraft() {
    clearTimeout(w.timers.draft);
    if (w.draft && w.draft.li) w.draft.li.remove();
    w.draft = null;
  }
  function cssEscape(v) { return window.CSS && CSS.escape ? CSS.escape(v) : v.replace(/["\\]/g, '\\$&'); }
  function kind(m) {
    if (!m.isFromAgent) return 'me';
    return m.metadata && m.metadata.automated ? 'bot' : 'agent';
  }
  function render(m) {
    if (!w.ui) return;
    var log = w.ui.log;
    var node = log.querySelector('li[data-id="' + m.id + '"]');
    var k = kind(m);
    if (!node) {
      node = el('li', { class: k, 'data-id': String(m.id) });
      if (m.clientMessageId) node.setAttribute('data-cid', m.clientMessageId);
      if (k !== 'me') node.appendChild(el('span', { class: 'who', text: k === 'bot' ? w.s.bot : w.s.agent }));
      node.appendChild(el('span', { class: 'content', text: m.content }));
      // Keep id order; pending messages (no id yet) stay last.
      var before = null;
      Array.prototype.some.call(log.children, function (li) {
        if (!li.dataset.id && li.dataset.cid || Number(li.dataset.id) > m.id) { before = li; return true; }
        return false;
      });
      log.insertBefore(node, before);
      var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      if (atEnd || k === 'me') log.scrollTop = log.scrollHeight;
    }
    if (k === 'me') tick(node, m.readStatus ? 'read' : 'sent');
  }
  function tick(node, state) {
    var t = node.querySelector('.tick') || node.appendChild(el('span', { class: 'tick' }));
    t.setAttribute('data-state', state);
    t.textContent = state === 'read' ? '✓✓' : state === 'sent' ? '✓' : '…';
    t.setAttribute('aria-label', w.s[state === 'pending' ? 'sending' : state]);
    node.classList.toggle('pending', state === 'pending');
  }
  function renderOutbox() {
    if (!w.ui) return;
    st().outbox.forEach(function (x) {
      if (w.ui.root.querySelector('li[data-cid="' + cssEscape(x.cid) + '"]')) return;
      var node = el('li', { class: 'me', 'data-cid': x.cid }, [el('span', { class: 'content', text: x.content })]);
      tick(node, 'pending');
      w.ui.log.appendChild(node);
    });
    w.ui.log.scrollTop = w.ui.log.scrollHeight;
  }
  function submit() {
    var text = w.ui.input.value;
    if (!text.trim()) return;
    w.ui.input.value = '';
    stopTyping();
    // Kept before it is sent: a reload or an outage never loses it, and the clientMessageId
    // makes every retry store it once.
    var s = st();
    s.outbox.push({ cid: randomId('w-'), content: text });
    save({ outbox: s.outbox });
    renderOutbox();
    start();
    flush();
  }
  function flush() {
    if (!w || w.flushing || !w.found) return;
    var s = st();
    if (!s.outbox.length) return;
    var me = w;
    w.flushing = true;
    var next = s.conv ? Promise.resolve(s.conv) : request('POST', '/api/partner/conversations', { customerId: w.cid }).then(function (r) {
      if (!r.ok) throw new Error('conversation ' + r.status);
      save({ conv: r.data.id });
      me.loaded = true;
      if (me.ui) me.ui.root.querySelectorAll('li.note.closed').forEach(function (n) { n.remove(); });
      return r.data.id;
    });
    next.then(function (conv) {
      if (w !== me) return 'done';
      var item = st().outbox[0];
      if (!item) return 'done';
      return request('POST', '/api/partner/messages', {
        conversationId: conv, senderId: me.cid, content: item.content, clientMessageId: item.cid
      }).then(function (r) {
        if (w !== me) return 'done';
        if (r.ok) { forget(item.cid); add(r.data, false); return 'more'; }
        if (r.code === 'conversation_closed' || r.code === 'conversation_not_found') { closedConversation(); return 'more'; }
        if (r.status === 400 || r.status === 413 || r.status === 422 || r.code === 'idempotency_conflict') {
          forget(item.cid); // refused for good (too long, invalid): dropped, not retried forever
          return 'more';
        }
        throw new Error('send ' + r.status); // anything else (403 included) is retried
      });
    }).then(function (result) {
      me.flushing = false;
      me.tries = 0;
      if (result === 'more' && w === me) flush();
    }, function () {
      me.flushing = false;
      if (w === me) { conn(navigator.onLine === false ? 'offline' : me.ui && me.ui.box.getAttribute('data-conn')); retryLater('flush', flush); }
    });
  }
  function forget(cid) {
    save({ outbox: st().outbox.filter(function (x) { return x.cid !== cid; }) });
    var n = w.ui && w.ui.root.querySelector('li[data-cid="' + cssEscape(cid) + '"]:not([data-id])');
    if (n) n.remove();
  }
  function closedConversation() {
    save({ conv: null });
    w.msgs = {}; w.lastId = 0;
    if (!w.ui) return;
    Array.prototype.slice.call(w.ui.log.querySelectorAll('li[data-id]')).forEach(function (n) { n.remove(); });
    w.ui.log.appendChild(el('li', { class: 'note closed', text: w.s.closed }));
  }
  function adopt(conv) {
    save({ conv: conv });
    w.msgs = {}; w.lastId = 0;
    if (w.ui) Array.prototype.slice.call(w.ui.log.querySelectorAll('li[data-id], li.closed')).forEach(function (n) { n.remove(); });
    catchUp().catch(function () {});
  }

  // typing, read ticks, unread
  function typing() {
    var conv = st().conv;
    if (!conv) return;
    var now = Date.now();
    if (now - w.typingSent > 2000 && send('typing', { conversationId: conv, isTyping: true })) w.typingSent = now;
    clearTimeout(w.timers.typing);
    w.timers.typing = setTimeout(stopTyping, 3000);
  }
  function stopTyping() {
    clearTimeout(w.timers.typing);
    if (w.typingSent && st().conv) send('typing', { conversationId: st().conv, isTyping: false });
    w.typingSent = 0;
  }
  function showTyping(on) {
    if (!w.ui) return;
    w.ui.typing.hidden = !on;
    clearTimeout(w.timers.shown);
    if (on) w.timers.shown = setTimeout(function () { showTyping(false); }, 8000);
  }
  function lastAgentId() {
    var last = 0;
    Object.keys(w.msgs).forEach(function (id) { if (w.msgs[id].isFromAgent && w.msgs[id].id > last) last = w.msgs[id].id; });
    return last;
  }
  function markRead() {
    if (!w || !w.open || document.hidden) return;
    var last = lastAgentId();
    if (last > st().seen) save({ seen: last });
    var conv = st().conv;
    if (last > w.readSent && conv && send('read', { conversationId: conv, messageId: last })) w.readSent = last;
    badge();
  }
  function badge() {
    if (!w.ui) return;
    var seen = st().seen;
    var n = 0;
    Object.keys(w.msgs).forEach(function (id) { if (w.msgs[id].isFromAgent && w.msgs[id].id > seen) n++; });
    if (w.open) n = 0;
    w.ui.badge.hidden = n === 0;
    w.ui.badge.textContent = n > 99 ? '99+' : String(n);
    w.ui.launcher.setAttribute('aria-label', w.s.open + (n ? ' (' + n + ' ' + w.s.unread + ')' : ''));
    if (n !== w.unread) { w.unread = n; emit('unread', n); }
  }

  // the rest of the public API
  function setUser(user) {
    if (!w) { err('setUser() before init()'); return Promise.resolve(false); }
    if (typeOf(user) !== 'object') { err('setUser() needs {name, email, birthdate}'); return Promise.resolve(false); }
    if (!w.o.apiKey || w.token) {
      console.warn(TAG + ' setUser() needs the partner API key; with a session token the partner\'s server sets the customer (PATCH /api/customers/:id)');
      return Promise.resolve(false);
    }
    var body = checked(user, { name: 'string', email: 'string', birthdate: 'string' }, 'setUser.');
    return request('PATCH', '/api/customers/' + encodeURIComponent(w.cid), body).then(function (r) { return r.ok; }, function () { return false; });
  }
  function on(name, fn) {
    if (['message', 'unread', 'open', 'close', 'error'].indexOf(name) < 0 || typeof fn !== 'function') {
      err('on(event, fn): event is message, unread, open, close or error');
      return api;
    }
    (handlers[name] = handlers[name] || []).push(fn);
    return api;
  }
  function destroy() {
    if (!w) return;
    var me = w;
    w = null;
    me.destroyed = true;
    Object.keys(me.timers).forEach(function (k) { clearTimeout(me.timers[k]); });
    me.off.forEach(function (f) { f(); });
    if (me.ws) { var ws = me.ws; me.ws = null; try { ws.close(1000); } catch (e) { /* already closed */ } }
    if (me.unlock) me.unlock();
    if (me.bc) me.bc.close();
    if (me.ui) me.ui.host.remove();
    handlers = {};
  }

  var api = {
    version: '1', init: init, open: open, close: close, toggle: toggle, setUser: setUser, on: on, destroy: destroy
  };
  window.ChatWidget = api;
})();
