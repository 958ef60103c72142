// Frontdesk agent console: plain JavaScript, no build step, no external resources.
//
// Data flow: REST for snapshots (lists, history, customer) and for actions; one WebSocket for
// live events. Every logged event carries a cursor; after a drop the socket reconnects with
// `since=<last cursor>` and the server replays what was missed before `ready`, so nothing is
// lost. On every `ready` the lists and the open conversation are fetched again as a safety net.
'use strict';

(function () {
  const TOKEN_KEY = 'frontdesk.console.token';
  const AGENT_KEY = 'frontdesk.console.agent';
  const PAGE = 1000;
  const TYPING_IDLE_MS = 3000;
  const TYPING_REPEAT_MS = 2500;
  // A typing indicator that never got its "stopped" frame (the other side vanished) fades out.
  const TYPING_STALE_MS = 8000;
  const ACK_TIMEOUT_MS = 6000;
  const HEARTBEAT_MS = 20000;
  const PONG_TIMEOUT_MS = 10000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  // A draft whose job ended without a message goes this long after the bot's typing stops:
  // typing and the message travel apart, and typing may come a few milliseconds first.
  const DRAFT_LINGER_MS = 1500;

  const $ = (id) => document.getElementById(id);
  /** A conversation's lifecycle, in order: waiting -> active -> closed. */
  const STAGE = { waiting: 0, active: 1, closed: 2 };

  const state = {
    token: null,
    agent: null,
    /** id -> conversation summary (the list shape, with fallbacks filled in). */
    convs: new Map(),
    /** id -> cursor of the last status event applied, to keep it over older snapshots. */
    statusSeen: new Map(),
    /** conversation id -> Map(message id -> message). */
    messages: new Map(),
    /** conversation id -> Map(clientMessageId -> {content, state, error, at, timer}). */
    pending: new Map(),
    /** Conversations whose full history has been fetched. */
    loaded: new Set(),
    /** conversation id -> highest customer message id already reported read. */
    readSent: new Map(),
    /** conversation id -> {isAgent, timer}. */
    typing: new Map(),
    /** conversation id -> automated reply being written: {replyTo, seq, text, timer}. */
    drafts: new Map(),
    openId: null,
    detail: null,
    cursor: null,
    ws: null,
    attempts: 0,
    reconnectTimer: null,
    heartbeatTimer: null,
    pongTimer: null,
    refreshTimer: null,
    refreshSeq: 0,
    typingSentAt: 0,
    typingFor: null,
    typingIdleTimer: null,
    backfilled: new Set(),
    /** Conversations whose refused take already said another agent took them. */
    toldElsewhere: new Set(),
  };

  // ---------------------------------------------------------------------------------------
  // HTTP

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, 'network_error', 'The server cannot be reached. Retrying when the connection is back.');
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      const failure = new ApiError(
        response.status,
        error.code || 'http_' + response.status,
        error.message || 'The request failed (' + response.status + ').',
      );
      if (response.status === 401 && state.token && path !== '/api/agent/login') {
        expireSession();
      }
      throw failure;
    }
    return data;
  }

  // ---------------------------------------------------------------------------------------
  // Small DOM helpers: text only, never innerHTML with data, so content cannot inject markup.

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = value;
        else if (key === 'dataset') Object.assign(node.dataset, value);
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children || []) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function announce(text) {
    const region = $('announcer');
    region.textContent = '';
    // A fresh text node after clearing makes screen readers read it even if it repeats.
    window.setTimeout(() => {
      region.textContent = text;
    }, 50);
  }

  function toast(text, kind) {
    const box = el('div', { class: 'toast ' + (kind || 'error') }, [
      el('span', { text }),
      el('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, ['×']),
    ]);
    box.querySelector('button').addEventListener('click', () => box.remove());
    $('toasts').append(box);
    window.setTimeout(() => box.remove(), 7000);
  }

  // ---------------------------------------------------------------------------------------
  // Formatting

  function customerName(conv) {
    const customer = conv && conv.customer;
    if (customer && customer.name) return customer.name;
    return (customer && customer.id) || (conv && conv.customerId) || 'New conversation #' + (conv ? conv.id : '');
  }

  function waitingText(since) {
    const started = Date.parse(since);
    if (Number.isNaN(started)) return '';
    const seconds = Math.max(0, Math.floor((Date.now() - started) / 1000));
    if (seconds < 60) return seconds + 's';
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + 'm';
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + 'h ' + (minutes % 60) + 'm';
    return Math.floor(hours / 24) + 'd';
  }

  function clockTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function longDate(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    return date.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
  }

  function birthdateText(value) {
    // YYYY-MM-DD is a calendar date, not an instant: format it without a time zone shift.
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
    if (!match) return value || '';
    const date = new Date(Date.UTC(+match[1], +match[2] - 1, +match[3]));
    return date.toLocaleDateString([], { year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' });
  }

  function valueText(value) {
    if (value === null || value === undefined) return '';
    if (typeof value === 'string') return value;
    return JSON.stringify(value);
  }

  /** Chips for a message's metadata: `commandType value`, then any other plain fields. */
  function metadataChips(metadata) {
    if (!metadata || typeof metadata !== 'object') return [];
    const chips = [];
    if (typeof metadata.commandType === 'string') {
      const value = valueText(metadata.value);
      chips.push(
        el('span', { class: 'chip' }, [
          el('span', { class: 'chip-key', text: metadata.commandType }),
          value ? ' ' : null,
          value ? el('span', { class: 'chip-value', text: value }) : null,
        ]),
      );
    }
    for (const [key, value] of Object.entries(metadata)) {
      if (key === 'commandType' || key === 'automated' || key === 'clientMessageId') continue;
      // The automated reply's bookkeeping: the draft it replaced, the hand-off (in the header).
      if (key === 'replyTo' || key === 'handoff') continue;
      if (key === 'value' && typeof metadata.commandType === 'string') continue;
      const text = valueText(value);
      chips.push(el('span', { class: 'chip muted' }, [el('span', { class: 'chip-key', text: key }), ' ', text.slice(0, 60)]));
    }
    return chips;
  }

  function senderLabel(message, conv) {
    if (!message.isFromAgent) return customerName(conv);
    if (message.senderId === 'bot') return 'Assistant';
    if (state.agent && message.senderId === 'agent-' + state.agent.id) return 'You';
    return 'Agent ' + String(message.senderId).replace(/^agent-/, '');
  }

  // ---------------------------------------------------------------------------------------
  // Model

  function isMine(conv) {
    return !!(conv && conv.status === 'active' && state.agent && conv.agentId === state.agent.id);
  }

  function isListed(conv) {
    return conv.status === 'waiting' || isMine(conv);
  }

  function byId(a, b) {
    return a.id - b.id;
  }

  function earlier(a, b) {
    if (!a) return b || null;
    if (!b) return a;
    return a.id <= b.id ? a : b;
  }

  function later(a, b) {
    if (!a) return b || null;
    if (!b) return a;
    return a.id >= b.id ? a : b;
  }

  /** A list item with every optional field present, whatever the server sent. */
  function normalise(raw) {
    const conv = Object.assign({}, raw);
    if (!conv.customer || typeof conv.customer !== 'object') {
      conv.customer = { id: conv.customerId, name: null, email: null };
      conv.needsCustomer = true;
    }
    if (conv.partner === undefined) conv.partner = null;
    if (conv.firstMessage === undefined) {
      conv.firstMessage = null;
      conv.needsFirst = true;
    }
    if (conv.lastMessage === undefined) conv.lastMessage = null;
    if (typeof conv.unreadCount !== 'number') conv.unreadCount = 0;
    return conv;
  }

  function placeholder(id, status, agentId) {
    const conv = normalise({ id, customerId: null, agentId: agentId ?? null, status, createdAt: new Date().toISOString() });
    conv.placeholder = true;
    return conv;
  }

  function messagesOf(id) {
    let map = state.messages.get(id);
    if (!map) {
      map = new Map();
      state.messages.set(id, map);
    }
    return map;
  }

  function pendingOf(id) {
    let map = state.pending.get(id);
    if (!map) {
      map = new Map();
      state.pending.set(id, map);
    }
    return map;
  }

  function storeMessage(message) {
    const map = messagesOf(message.conversationId);
    const known = map.get(message.id);
    // A read receipt may have been applied to the copy we hold; never un-read it.
    if (known && known.readStatus && !message.readStatus) message = Object.assign({}, message, { readStatus: true });
    map.set(message.id, message);
    if (message.clientMessageId) settlePending(message.conversationId, message.clientMessageId);
  }

  /** The server has the message: its "sending" placeholder goes. */
  function settlePending(id, clientMessageId) {
    const pending = state.pending.get(id);
    const entry = pending && pending.get(clientMessageId);
    if (entry) {
      window.clearTimeout(entry.timer);
      pending.delete(clientMessageId);
    }
  }

  function mergeSummary(raw, fetchCursor) {
    const fresh = normalise(raw);
    const local = state.convs.get(fresh.id);
    if (!local) {
      state.convs.set(fresh.id, fresh);
      return;
    }
    const merged = Object.assign({}, local, fresh);
    merged.placeholder = false;
    // What the snapshot lacks is what still needs fetching, not what a placeholder lacked.
    merged.needsCustomer = !!fresh.needsCustomer;
    merged.needsFirst = !!fresh.needsFirst;
    if ((state.statusSeen.get(fresh.id) ?? -1) > fetchCursor) {
      // A status event arrived after this snapshot was requested: it is at least as new.
      merged.status = local.status;
      merged.agentId = local.agentId;
    }
    // A hand-off is final: an older snapshot without it does not undo the live event.
    merged.handoff = fresh.handoff || local.handoff || null;
    merged.firstMessage = earlier(local.firstMessage, fresh.firstMessage);
    merged.lastMessage = later(local.lastMessage, fresh.lastMessage);
    if (fresh.needsCustomer && !local.needsCustomer) {
      merged.customer = local.customer;
      merged.needsCustomer = false;
    }
    // Once the first message was fetched (or found not yet written), messages keep it current.
    if (fresh.needsFirst && (local.firstMessage || !local.needsFirst)) merged.needsFirst = false;
    state.convs.set(fresh.id, merged);
  }

  // ---------------------------------------------------------------------------------------
  // Loading

  async function refreshLists() {
    const fetchCursor = state.cursor ?? -1;
    const seq = ++state.refreshSeq;
    let waiting;
    let mine;
    try {
      [waiting, mine] = await Promise.all([
        api('GET', '/api/agent/conversations?status=waiting'),
        api('GET', '/api/agent/conversations?status=active&mine=true'),
      ]);
    } catch (error) {
      if (error.status !== 401) setListError(error.message);
      return;
    }
    // A newer refresh is under way; its answer will be at least as fresh.
    if (seq !== state.refreshSeq) return;
    setListError(null);
    const fresh = new Map();
    for (const conv of [].concat(waiting || [], mine || [])) fresh.set(conv.id, conv);
    for (const [id, conv] of state.convs) {
      if (fresh.has(id) || !isListed(conv)) continue;
      if ((state.statusSeen.get(id) ?? -1) > fetchCursor) continue;
      // Left the queue (or our hands) while we were not looking: the snapshot knows best.
      if (id === state.openId) {
        loadDetail(id);
      } else {
        state.convs.delete(id);
      }
    }
    for (const conv of fresh.values()) mergeSummary(conv, fetchCursor);
    for (const conv of state.convs.values()) backfill(conv);
    renderAll();
  }

  function scheduleRefresh() {
    window.clearTimeout(state.refreshTimer);
    // Short: it only gathers a burst of events (a new conversation and its first message).
    state.refreshTimer = window.setTimeout(refreshLists, 50);
  }

  /** Older servers list bare conversations: fetch who and what once per conversation. */
  async function backfill(conv) {
    if (!conv.needsCustomer && !conv.needsFirst) return;
    if (state.backfilled.has(conv.id)) return;
    state.backfilled.add(conv.id);
    try {
      const [detail, first] = await Promise.all([
        conv.needsCustomer ? api('GET', '/api/agent/conversations/' + conv.id) : null,
        conv.needsFirst ? api('GET', '/api/agent/conversations/' + conv.id + '/messages?limit=1') : null,
      ]);
      const current = state.convs.get(conv.id);
      if (!current) return;
      if (detail && detail.customer) {
        const customer = detail.customer;
        current.customer = { id: customer.id, name: customer.name, email: customer.email };
        if (customer.partner && !current.partner) current.partner = customer.partner;
        current.needsCustomer = false;
      }
      if (first) {
        // None yet: the first is the earliest to arrive since (live events keep it current).
        const held = Array.from(messagesOf(conv.id).values()).sort(byId)[0];
        current.firstMessage = earlier(current.firstMessage, first[0] || held);
        current.needsFirst = false;
      }
      renderAll();
    } catch (_) {
      // The list still shows the customer id; nothing else depends on this.
    }
  }

  async function loadDetail(id) {
    try {
      const detail = await api('GET', '/api/agent/conversations/' + id);
      if (state.openId !== id) return;
      state.detail = detail;
      const conv = state.convs.get(id);
      if (conv) {
        if (detail.customer) {
          conv.customer = { id: detail.customer.id, name: detail.customer.name, email: detail.customer.email };
          if (detail.customer.partner) conv.partner = Object.assign({}, conv.partner || {}, detail.customer.partner);
          conv.needsCustomer = false;
        }
        // Statuses only move forward, so a snapshot further along is newer than any event we
        // applied (e.g. a take refused because another agent holds it, heard before its event).
        if (!state.statusSeen.has(id) || conv.placeholder || STAGE[detail.status] > STAGE[conv.status]) {
          conv.status = detail.status;
          conv.agentId = detail.agentId;
        }
        conv.customerId = detail.customerId;
        conv.createdAt = detail.createdAt;
        conv.handoff = detail.handoff || conv.handoff || null;
        conv.placeholder = false;
      } else {
        state.convs.set(id, normalise(detail));
      }
      renderAll();
    } catch (error) {
      if (state.openId === id && error.status !== 401) toast(error.message);
    }
  }

  /** Fetches everything after the newest message we hold, page by page. */
  async function loadMessages(id) {
    try {
      let after = 0;
      // Continue from the newest message only once the full history is here: live events that
      // arrived earlier may have left gaps behind them.
      if (state.loaded.has(id)) {
        for (const message of messagesOf(id).values()) after = Math.max(after, message.id);
      }
      for (;;) {
        const page = await api('GET', '/api/agent/conversations/' + id + '/messages?after=' + after + '&limit=' + PAGE);
        for (const message of page) storeMessage(message);
        if (page.length) after = page[page.length - 1].id;
        if (page.length < PAGE) break;
      }
      state.loaded.add(id);
      const conv = state.convs.get(id);
      if (conv) {
        const all = Array.from(messagesOf(id).values()).sort(byId);
        conv.firstMessage = earlier(conv.firstMessage, all[0]);
        conv.lastMessage = later(conv.lastMessage, all[all.length - 1]);
      }
      if (state.openId === id) {
        renderChat(true);
        markRead();
      }
    } catch (error) {
      if (state.openId === id && error.status !== 401) toast(error.message);
    }
  }

  // ---------------------------------------------------------------------------------------
  // WebSocket

  function socketUrl() {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const params = new URLSearchParams({ clientId: 'agent-' + state.agent.id, token: state.token });
    if (state.cursor !== null) params.set('since', String(state.cursor));
    return scheme + '//' + window.location.host + '/ws?' + params.toString();
  }

  function connect() {
    window.clearTimeout(state.reconnectTimer);
    if (!state.token || state.ws) return;
    setConnection(state.attempts ? 'reconnecting' : 'connecting');
    let socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (_) {
      scheduleReconnect();
      return;
    }
    state.ws = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      startHeartbeat(socket);
    });
    socket.addEventListener('message', (event) => {
      if (state.ws !== socket) return;
      alive(socket);
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      handleFrame(frame);
    });
    socket.addEventListener('close', () => {
      if (state.ws !== socket) return;
      dropSocket();
      if (!state.token) return;
      // Refused before opening: maybe the session expired (the API answers 401 and signs out).
      if (!opened) api('GET', '/api/agent/me').catch(() => {});
      scheduleReconnect();
    });
  }

  function dropSocket() {
    const socket = state.ws;
    state.ws = null;
    // Deltas are never replayed and the end of a draft may be missed while away: the stored
    // message, replayed on reconnect, shows the reply whole.
    for (const id of Array.from(state.drafts.keys())) dropDraft(id);
    window.clearInterval(state.heartbeatTimer);
    window.clearTimeout(state.pongTimer);
    if (socket && socket.readyState <= WebSocket.OPEN) {
      try {
        socket.close();
      } catch (_) {
        // Already closing.
      }
    }
    if (state.token) setConnection('reconnecting');
  }

  function scheduleReconnect() {
    window.clearTimeout(state.reconnectTimer);
    // Exponential backoff with full jitter, so a restarted server is not hit by every agent at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.attempts += 1;
    state.reconnectTimer = window.setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (!state.token || state.ws) return;
    state.attempts = 0;
    connect();
  }

  function startHeartbeat(socket) {
    window.clearInterval(state.heartbeatTimer);
    state.heartbeatTimer = window.setInterval(() => {
      if (state.ws !== socket || socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ type: 'ping' }));
      window.clearTimeout(state.pongTimer);
      // A half-open connection never errors by itself: no answer means it is dead.
      state.pongTimer = window.setTimeout(() => {
        if (state.ws !== socket) return;
        dropSocket();
        scheduleReconnect();
      }, PONG_TIMEOUT_MS);
    }, HEARTBEAT_MS);
  }

  function alive(socket) {
    if (state.ws === socket) window.clearTimeout(state.pongTimer);
  }

  function sendFrame(frame) {
    const socket = state.ws;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function handleFrame(frame) {
    const cursor = typeof frame.cursor === 'number' ? frame.cursor : null;
    if (frame.type === 'ready') {
      if (cursor !== null) state.cursor = cursor;
      state.attempts = 0;
      setConnection('live');
      onReady();
      return;
    }
    // Replays and live events may overlap by design; the cursor tells what we already applied.
    if (cursor !== null && state.cursor !== null && cursor <= state.cursor) return;
    const payload = frame.payload || {};
    switch (frame.type) {
      case 'message':
        applyMessage(payload);
        break;
      case 'status':
        applyStatus(payload, cursor);
        break;
      case 'read':
        applyRead(payload);
        break;
      case 'flashback':
        applyFlashback(payload);
        break;
      case 'typing':
        applyTyping(payload);
        break;
      case 'messageDelta':
        applyDelta(payload);
        break;
      case 'handoff':
        applyHandoff(payload);
        break;
      case 'ack':
        // The stored message need not repeat our clientMessageId; the ack always names it.
        if (payload.message && payload.clientMessageId) settlePending(payload.message.conversationId, payload.clientMessageId);
        if (payload.message) applyMessage(payload.message);
        break;
      case 'error':
        applySocketError(payload);
        break;
      default:
        break;
    }
    if (cursor !== null) state.cursor = Math.max(state.cursor ?? cursor, cursor);
  }

  function onReady() {
    refreshLists();
    if (state.openId !== null) {
      loadDetail(state.openId);
      loadMessages(state.openId);
    }
    flushPending();
  }

  // ---------------------------------------------------------------------------------------
  // Events

  function applyMessage(message) {
    if (!message || typeof message.conversationId !== 'number') return;
    const id = message.conversationId;
    const known = messagesOf(id).has(message.id);
    storeMessage(message);
    let conv = state.convs.get(id);
    if (!conv) {
      conv = placeholder(id, 'waiting', null);
      state.convs.set(id, conv);
      scheduleRefresh();
    }
    conv.lastMessage = later(conv.lastMessage, message);
    if (!conv.needsFirst || conv.placeholder) conv.firstMessage = earlier(conv.firstMessage, message);
    conv.updatedAt = message.timestamp;
    const draft = state.drafts.get(id);
    // The stored reply replaces its draft: one bubble, never two.
    if (draft && message.metadata && message.metadata.replyTo === draft.replyTo) dropDraft(id);
    if (!message.isFromAgent) {
      clearTyping(id);
      if (!known) {
        const reading = id === state.openId && isMine(conv) && chatVisible();
        if (!reading) conv.unreadCount = (conv.unreadCount || 0) + 1;
        if (isMine(conv) || id === state.openId) {
          announce('New message from ' + customerName(conv) + ': ' + message.content);
        }
      }
    } else if (message.senderId === 'bot') {
      clearTyping(id);
    }
    renderLists();
    if (id === state.openId) {
      renderChat(true);
      markRead();
    }
  }

  function applyStatus(payload, cursor) {
    const id = payload.conversationId;
    if (typeof id !== 'number') return;
    if (cursor !== null) state.statusSeen.set(id, cursor);
    let conv = state.convs.get(id);
    if (!conv) {
      conv = placeholder(id, payload.status, payload.agentId);
      if (!isListed(conv) && id !== state.openId) return;
      state.convs.set(id, conv);
      if (payload.status === 'waiting') announce('A new conversation is waiting.');
      scheduleRefresh();
    }
    const wasMine = isMine(conv);
    conv.status = payload.status;
    conv.agentId = payload.agentId ?? null;
    if (id === state.openId) {
      if (state.detail) {
        state.detail.status = conv.status;
        state.detail.agentId = conv.agentId;
      }
      if (conv.status === 'active' && !isMine(conv) && !wasMine) {
        // Once only: a refused take may have said so already (a snapshot ahead of this event
        // has not: it changes the banner silently).
        if (!state.toldElsewhere.delete(id)) toast('Another agent took this conversation.', 'info');
      } else if (conv.status === 'closed' && wasMine) {
        announce('The conversation is closed.');
      }
    }
    if (!isListed(conv) && id !== state.openId) state.convs.delete(id);
    renderAll();
  }

  function applyRead(payload) {
    const id = payload.conversationId;
    const conv = state.convs.get(id);
    for (const message of messagesOf(id).values()) {
      // isAgent: an agent read the customer's messages; otherwise the customer read ours.
      if (message.id <= payload.messageId && message.isFromAgent !== !!payload.isAgent) {
        message.readStatus = true;
      }
    }
    if (conv && payload.isAgent) {
      let unread = 0;
      for (const message of messagesOf(id).values()) {
        if (!message.isFromAgent && message.id > payload.messageId) unread += 1;
      }
      conv.unreadCount = unread;
      state.readSent.set(id, Math.max(state.readSent.get(id) || 0, payload.messageId));
    }
    renderLists();
    if (id === state.openId) renderChat(false);
  }

  function applyFlashback(payload) {
    // Customer ids are per partner, so the event alone cannot tell which partner's customer it
    // is: fetch the open conversation's customer again if the id matches.
    if (state.openId === null || !state.detail || !state.detail.customer) return;
    if (state.detail.customer.id === payload.customerId) loadDetail(state.openId);
  }

  function applyTyping(payload) {
    const id = payload.conversationId;
    const conv = state.convs.get(id);
    if (payload.isAgent && !payload.isTyping && state.drafts.has(id)) {
      const draft = state.drafts.get(id);
      window.clearTimeout(draft.timer);
      draft.timer = window.setTimeout(() => {
        if (state.drafts.get(id) === draft) dropDraft(id);
      }, DRAFT_LINGER_MS);
    }
    // Our own typing (from another tab) is no news to us; but a stop always clears, as the
    // bot's stop comes after we took the conversation from it.
    if (!conv || (payload.isAgent && isMine(conv) && payload.isTyping)) return;
    if (payload.isTyping) {
      clearTyping(id);
      const timer = window.setTimeout(() => {
        clearTyping(id);
        renderTyping();
        renderLists();
      }, TYPING_STALE_MS);
      state.typing.set(id, { isAgent: !!payload.isAgent, timer });
    } else {
      clearTyping(id);
    }
    renderTyping();
    renderLists();
  }

  /** A piece of an automated reply (docs/realtime.md): seq 0 (re)starts, a gap freezes it. */
  function applyDelta(payload) {
    const id = payload.conversationId;
    if (typeof id !== 'number' || typeof payload.seq !== 'number' || typeof payload.text !== 'string') return;
    let draft = state.drafts.get(id);
    if (payload.seq === 0) {
      if (draft) window.clearTimeout(draft.timer);
      draft = { replyTo: payload.replyTo, seq: -1, text: '', timer: null };
      state.drafts.set(id, draft);
    }
    if (!draft || draft.replyTo !== payload.replyTo || payload.seq !== draft.seq + 1) return;
    draft.seq = payload.seq;
    draft.text += payload.text;
    if (id !== state.openId) return;
    // In place when it is on screen: no rebuild of the whole history per piece.
    const node = document.querySelector('#messages li.draft .content');
    if (node) {
      const list = $('messages');
      const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
      node.textContent = draft.text;
      if (nearBottom) list.scrollTop = list.scrollHeight;
    } else {
      renderChat(false);
    }
  }

  function dropDraft(id) {
    const draft = state.drafts.get(id);
    if (!draft) return;
    window.clearTimeout(draft.timer);
    state.drafts.delete(id);
    if (id === state.openId) renderChat(false);
  }

  function applyHandoff(payload) {
    const id = payload.conversationId;
    if (typeof id !== 'number') return;
    const handoff = { reason: String(payload.reason || ''), at: payload.at || null };
    const conv = state.convs.get(id);
    if (!conv) {
      // Not known yet (a new conversation handed off at once): the lists will carry the flag.
      scheduleRefresh();
      return;
    }
    conv.handoff = handoff;
    if (state.openId === id && state.detail) state.detail.handoff = handoff;
    if (conv.status === 'waiting') announce(customerName(conv) + ' needs a person: ' + handoff.reason);
    renderAll();
  }

  function clearTyping(id) {
    const entry = state.typing.get(id);
    if (entry) window.clearTimeout(entry.timer);
    state.typing.delete(id);
  }

  function applySocketError(payload) {
    if (payload.clientMessageId) {
      for (const [convId, pending] of state.pending) {
        const entry = pending.get(payload.clientMessageId);
        if (entry) {
          window.clearTimeout(entry.timer);
          entry.state = 'failed';
          entry.error = payload.message || 'The message was not sent.';
          if (convId === state.openId) renderChat(false);
          return;
        }
      }
    }
    toast(payload.message || 'The server refused the last action.');
  }

  // ---------------------------------------------------------------------------------------
  // Actions

  function newClientMessageId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return 'console-' + window.crypto.randomUUID();
    return 'console-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
  }

  function sendReply(text) {
    const id = state.openId;
    const conv = state.convs.get(id);
    if (!isMine(conv)) return;
    const clientMessageId = newClientMessageId();
    pendingOf(id).set(clientMessageId, { content: text, state: 'sending', error: null, at: new Date().toISOString(), timer: null });
    stopTyping();
    dispatch(id, clientMessageId);
    renderChat(true);
  }

  /** Over the socket when it is open, else over REST; the clientMessageId makes retries safe. */
  function dispatch(id, clientMessageId) {
    const entry = pendingOf(id).get(clientMessageId);
    if (!entry) return;
    entry.state = 'sending';
    window.clearTimeout(entry.timer);
    const sent = sendFrame({ type: 'message', payload: { conversationId: id, content: entry.content, clientMessageId } });
    if (sent) {
      entry.timer = window.setTimeout(() => postReply(id, clientMessageId), ACK_TIMEOUT_MS);
    } else {
      postReply(id, clientMessageId);
    }
  }

  async function postReply(id, clientMessageId) {
    const entry = pendingOf(id).get(clientMessageId);
    if (!entry) return;
    try {
      const message = await api('POST', '/api/agent/conversations/' + id + '/messages', {
        content: entry.content,
        clientMessageId,
      });
      settlePending(id, clientMessageId);
      applyMessage(message);
    } catch (error) {
      const still = pendingOf(id).get(clientMessageId);
      if (!still) return;
      if (error.status === 0 || error.status === 503) {
        // Offline: it goes out again when the socket is back (see flushPending).
        still.state = 'queued';
      } else {
        still.state = 'failed';
        still.error = error.message;
      }
      if (id === state.openId) renderChat(false);
    }
  }

  function flushPending() {
    for (const [id, pending] of state.pending) {
      for (const [clientMessageId, entry] of pending) {
        if (entry.state !== 'failed') dispatch(id, clientMessageId);
      }
    }
  }

  function markRead() {
    const id = state.openId;
    const conv = state.convs.get(id);
    if (!isMine(conv) || !chatVisible()) return;
    let newest = 0;
    for (const message of messagesOf(id).values()) {
      if (!message.isFromAgent) newest = Math.max(newest, message.id);
    }
    if (!newest || newest <= (state.readSent.get(id) || 0)) return;
    state.readSent.set(id, newest);
    conv.unreadCount = 0;
    renderLists();
    if (!sendFrame({ type: 'read', payload: { conversationId: id, messageId: newest } })) {
      api('POST', '/api/agent/conversations/' + id + '/read', { messageId: newest }).catch(() => {
        state.readSent.delete(id);
      });
    }
  }

  function chatVisible() {
    if (document.visibilityState !== 'visible') return false;
    // On a phone only one pane shows; messages count as read only when the chat is on screen.
    return !narrow() || $('panes').dataset.view === 'chat';
  }

  function narrow() {
    return window.matchMedia('(max-width: 700px)').matches;
  }

  function onComposerInput() {
    const id = state.openId;
    if (!isMine(state.convs.get(id))) return;
    const now = Date.now();
    if ($('composer-input').value.trim() === '') {
      stopTyping();
      return;
    }
    if (state.typingFor !== id || now - state.typingSentAt > TYPING_REPEAT_MS) {
      if (state.typingFor !== null && state.typingFor !== id) stopTyping();
      sendFrame({ type: 'typing', payload: { conversationId: id, isTyping: true } });
      state.typingFor = id;
      state.typingSentAt = now;
    }
    window.clearTimeout(state.typingIdleTimer);
    state.typingIdleTimer = window.setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    window.clearTimeout(state.typingIdleTimer);
    if (state.typingFor === null) return;
    sendFrame({ type: 'typing', payload: { conversationId: state.typingFor, isTyping: false } });
    state.typingFor = null;
    state.typingSentAt = 0;
  }

  async function take() {
    const id = state.openId;
    const button = $('take');
    button.disabled = true;
    try {
      const conversation = await api('POST', '/api/agent/conversations/' + id + '/assign');
      const conv = state.convs.get(id);
      if (conv) {
        conv.status = conversation.status;
        conv.agentId = conversation.agentId;
      }
      renderAll();
      markRead();
      $('composer-input').focus();
    } catch (error) {
      if (error.code === 'assigned_elsewhere') {
        toast('Another agent took this conversation first.', 'info');
        state.toldElsewhere.add(id);
        loadDetail(id);
        refreshLists();
      } else if (error.status !== 401) {
        toast(error.message);
      }
    } finally {
      button.disabled = false;
    }
  }

  async function closeConversation() {
    const id = state.openId;
    try {
      const conversation = await api('POST', '/api/agent/conversations/' + id + '/close');
      stopTyping();
      const conv = state.convs.get(id);
      if (conv) {
        conv.status = conversation.status;
        conv.agentId = conversation.agentId;
      }
      renderAll();
      $('chat-title').focus();
    } catch (error) {
      if (error.status !== 401) toast(error.message);
    }
  }

  function openConversation(id) {
    if (state.openId !== id) {
      stopTyping();
      state.openId = id;
      state.detail = null;
      $('composer-input').value = '';
    }
    setView('chat');
    renderAll();
    loadDetail(id);
    loadMessages(id);
  }

  function setView(view) {
    $('panes').dataset.view = view;
    if (view === 'chat') markRead();
  }

  function listedInOrder() {
    return [].concat(queueItems(), mineItems());
  }

  function moveSelection(step) {
    const items = listedInOrder();
    if (!items.length) return;
    const index = items.findIndex((conv) => conv.id === state.openId);
    const next = items[(index + step + items.length) % items.length];
    openConversation(next.id);
    const button = document.querySelector('.conv[data-id="' + next.id + '"]');
    if (button) button.focus();
  }

  // ---------------------------------------------------------------------------------------
  // Rendering

  function queueItems() {
    return Array.from(state.convs.values())
      .filter((conv) => conv.status === 'waiting')
      // Handed off by the bot first: those wait for a person and nobody else answers them.
      .sort((a, b) => !!b.handoff - !!a.handoff || Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id - b.id);
  }

  function mineItems() {
    return Array.from(state.convs.values())
      .filter(isMine)
      .sort((a, b) => (b.lastMessage ? b.lastMessage.id : 0) - (a.lastMessage ? a.lastMessage.id : 0) || b.id - a.id);
  }

  function renderAll() {
    renderLists();
    renderChat(false);
    renderCustomer();
  }

  function renderLists() {
    const queue = queueItems();
    const mine = mineItems();
    renderList($('queue-list'), queue, true);
    renderList($('mine-list'), mine, false);
    $('queue-count').textContent = String(queue.length);
    $('mine-count').textContent = String(mine.length);
    show($('queue-empty'), queue.length === 0);
    show($('mine-empty'), mine.length === 0);
    const unread = mine.reduce((sum, conv) => sum + (conv.unreadCount || 0), 0);
    document.title = (unread ? '(' + unread + ') ' : '') + 'Frontdesk agent console';
  }

  /** Keyed update: existing buttons are reused and only moved when needed, so focus stays. */
  function renderList(list, items, waiting) {
    const focusedId = document.activeElement && document.activeElement.classList.contains('conv')
      ? document.activeElement.dataset.id
      : null;
    const existing = new Map();
    for (const li of Array.from(list.children)) existing.set(li.dataset.id, li);
    items.forEach((conv, index) => {
      const key = String(conv.id);
      let li = existing.get(key);
      if (!li) {
        li = el('li', { dataset: { id: key } }, [el('button', { type: 'button', class: 'conv', dataset: { id: key } })]);
      }
      existing.delete(key);
      fillItem(li.firstChild, conv, waiting);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    for (const li of existing.values()) li.remove();
    if (focusedId && document.activeElement === document.body) {
      const again = document.querySelector('.conv[data-id="' + focusedId + '"]');
      if (again) again.focus();
    }
  }

  function fillItem(button, conv, waiting) {
    const name = customerName(conv);
    const typing = state.typing.get(conv.id);
    const preview = waiting ? conv.firstMessage : conv.lastMessage;
    const partnerName = conv.partner && conv.partner.name;
    const idText = (conv.customer && conv.customer.id) || conv.customerId || '';
    button.classList.toggle('selected', conv.id === state.openId);
    if (conv.id === state.openId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    const unread = conv.unreadCount || 0;
    const children = [
      el('span', { class: 'conv-top' }, [
        el('span', { class: 'conv-name', text: name }),
        waiting
          ? el('span', { class: 'conv-wait', dataset: { since: conv.createdAt || '' }, text: 'Waiting ' + waitingText(conv.createdAt) })
          : el('span', { class: 'conv-time', text: preview ? clockTime(preview.timestamp) : '' }),
      ]),
      el('span', { class: 'conv-meta' }, [
        el('span', { class: 'conv-customer-id', text: idText }),
        partnerName ? el('span', { class: 'conv-partner', text: partnerName }) : null,
      ]),
      conv.handoff
        ? el('span', { class: 'conv-handoff', title: conv.handoff.reason }, [
            el('span', { class: 'handoff-label', text: 'Needs a person' }),
            ' ',
            el('span', { class: 'handoff-reason', text: conv.handoff.reason }),
          ])
        : null,
      el('span', { class: 'conv-bottom' }, [
        typing
          ? el('span', { class: 'conv-preview typing-text', text: typing.isAgent ? 'Assistant is typing…' : 'typing…' })
          : el('span', { class: 'conv-preview', text: preview ? preview.content : 'No messages yet' }),
        unread
          ? el('span', { class: 'badge', 'aria-label': unread + ' unread', text: String(unread) })
          : null,
      ]),
    ];
    button.replaceChildren(...children.filter(Boolean));
    const label = [name, idText !== name ? idText : null, partnerName, conv.handoff ? 'needs a person: ' + conv.handoff.reason : null, waiting ? 'waiting ' + waitingText(conv.createdAt) : null, unread ? unread + ' unread' : null]
      .filter(Boolean)
      .join(', ');
    button.setAttribute('aria-label', label);
  }

  function tickWaitingTimes() {
    for (const node of document.querySelectorAll('.conv-wait')) {
      node.textContent = 'Waiting ' + waitingText(node.dataset.since);
    }
  }

  function renderChat(scroll) {
    const id = state.openId;
    const conv = id === null ? null : state.convs.get(id) || (state.detail ? normalise(state.detail) : null);
    show($('chat-placeholder'), !conv);
    show($('chat-view'), !!conv);
    if (!conv) return;
    const mine = isMine(conv);
    $('chat-title').textContent = customerName(conv);
    const partnerName = conv.partner && conv.partner.name;
    const statusText = { waiting: 'Waiting', active: mine ? 'Active' : 'With another agent', closed: 'Closed' }[conv.status] || conv.status;
    $('chat-subtitle').replaceChildren(
      el('span', { class: 'status-pill ' + conv.status, text: statusText }),
      ' ',
      [conv.customer && conv.customer.id !== customerName(conv) ? conv.customer.id : null, partnerName, '#' + conv.id]
        .filter(Boolean)
        .join(' · '),
    );
    const handoff = $('chat-handoff');
    handoff.replaceChildren(
      ...(conv.handoff
        ? [el('span', { class: 'handoff-label', text: 'Needs a person' }), ' ', el('span', { class: 'handoff-reason', text: conv.handoff.reason })]
        : []),
    );
    show(handoff, !!conv.handoff);
    show($('take'), conv.status === 'waiting');
    show($('close'), mine);
    show($('composer'), mine);
    const banner = $('chat-banner');
    if (conv.status === 'closed') {
      banner.textContent = 'This conversation is closed.';
      show(banner, true);
    } else if (conv.status === 'waiting') {
      banner.textContent = 'Take the conversation to reply.';
      show(banner, true);
    } else if (!mine) {
      banner.textContent = 'Another agent is handling this conversation.';
      show(banner, true);
    } else {
      show(banner, false);
    }
    renderMessages(conv, scroll);
    renderTyping();
  }

  function renderMessages(conv, scroll) {
    const list = $('messages');
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const items = Array.from(messagesOf(conv.id).values()).sort(byId);
    const nodes = items.map((message) => messageNode(message, conv));
    const draft = state.drafts.get(conv.id);
    if (draft) nodes.push(draftNode(draft, conv));
    for (const [clientMessageId, entry] of pendingOf(conv.id)) {
      nodes.push(pendingNode(clientMessageId, entry, conv));
    }
    if (!items.length && !nodes.length) {
      nodes.push(el('li', { class: 'messages-empty', text: state.loaded.has(conv.id) ? 'No messages yet.' : 'Loading…' }));
    }
    list.replaceChildren(...nodes);
    if (scroll || nearBottom) list.scrollTop = list.scrollHeight;
  }

  function messageNode(message, conv) {
    const bot = message.senderId === 'bot' || (message.metadata && message.metadata.automated === true);
    const own = message.isFromAgent && !bot;
    const side = !message.isFromAgent ? 'from-customer' : bot ? 'from-bot' : 'from-agent';
    const foot = [el('time', { datetime: message.timestamp, title: message.timestamp, text: clockTime(message.timestamp) })];
    if (message.isFromAgent) {
      const read = !!message.readStatus;
      foot.push(
        el('span', { class: 'tick', dataset: { state: read ? 'read' : 'sent' }, 'aria-label': read ? 'Read by the customer' : 'Sent' }, [
          el('span', { class: 'tick-icon', 'aria-hidden': 'true', text: read ? '✓✓' : '✓' }),
          ' ',
          read ? 'Read' : 'Sent',
        ]),
      );
    }
    return el('li', { class: 'message ' + side + (own ? ' own' : ''), dataset: { id: String(message.id) } }, [
      el('div', { class: 'bubble' }, [
        el('div', { class: 'message-head' }, [
          el('span', { class: 'sender', text: senderLabel(message, conv) }),
          bot ? el('span', { class: 'label-bot', text: 'bot' }) : null,
        ]),
        el('p', { class: 'content', text: message.content }),
        (() => {
          const chips = metadataChips(message.metadata);
          return chips.length ? el('div', { class: 'chips' }, chips) : null;
        })(),
        el('div', { class: 'message-foot' }, foot),
      ]),
    ]);
  }

  /** The automated reply being written; aria-busy keeps screen readers from reading each piece. */
  function draftNode(draft, conv) {
    return el('li', { class: 'message from-bot draft', 'aria-busy': 'true' }, [
      el('div', { class: 'bubble' }, [
        el('div', { class: 'message-head' }, [
          el('span', { class: 'sender', text: senderLabel({ isFromAgent: true, senderId: 'bot' }, conv) }),
          el('span', { class: 'label-bot', text: 'bot' }),
        ]),
        el('p', { class: 'content', text: draft.text }),
        el('div', { class: 'message-foot' }, [el('span', { class: 'draft-note', text: 'Writing…' })]),
      ]),
    ]);
  }

  function pendingNode(clientMessageId, entry, conv) {
    const failed = entry.state === 'failed';
    const foot = failed
      ? [
          el('span', { class: 'send-error', text: 'Not sent: ' + (entry.error || 'error') }),
          el('button', { type: 'button', class: 'btn link retry', dataset: { clientMessageId } }, ['Retry']),
        ]
      : [el('span', { class: 'tick', dataset: { state: entry.state }, text: entry.state === 'queued' ? 'Waiting for connection…' : 'Sending…' })];
    return el('li', { class: 'message from-agent own pending' + (failed ? ' failed' : ''), dataset: { pending: clientMessageId } }, [
      el('div', { class: 'bubble' }, [
        el('div', { class: 'message-head' }, [el('span', { class: 'sender', text: senderLabel({ isFromAgent: true, senderId: 'agent-' + state.agent.id }, conv) })]),
        el('p', { class: 'content', text: entry.content }),
        el('div', { class: 'message-foot' }, foot),
      ]),
    ]);
  }

  function renderTyping() {
    const node = $('typing');
    const entry = state.openId === null ? null : state.typing.get(state.openId);
    if (!entry) {
      show(node, false);
      node.textContent = '';
      return;
    }
    const conv = state.convs.get(state.openId);
    node.replaceChildren(
      el('span', { class: 'typing-dots', 'aria-hidden': 'true' }, [el('span'), el('span'), el('span')]),
      (entry.isAgent ? 'Assistant' : customerName(conv)) + ' is typing…',
    );
    show(node, true);
  }

  function renderCustomer() {
    const body = $('customer-body');
    const detail = state.detail;
    if (state.openId === null) {
      body.replaceChildren(el('p', { class: 'empty', text: 'No conversation selected.' }));
      return;
    }
    if (!detail || !detail.customer) {
      body.replaceChildren(el('p', { class: 'empty', text: 'Loading…' }));
      return;
    }
    const customer = detail.customer;
    const partner = customer.partner || {};
    const row = (label, value, cls) =>
      [el('dt', { text: label }), el('dd', { class: cls || null }, value ? [value] : [el('span', { class: 'unset', text: 'Not given' })])];
    const fields = el('dl', { class: 'fields' }, [
      ...row('Name', customer.name, 'field-name'),
      ...row('Customer ID', customer.id, 'field-id'),
      ...row('Email', customer.email, 'field-email'),
      ...row('Partner', partner.name ? partner.name + (partner.domain ? ' (' + partner.domain + ')' : '') : null, 'field-partner'),
      ...row('Birthdate', customer.birthdate ? birthdateText(customer.birthdate) : null, 'field-birthdate'),
      ...row('Customer since', customer.createdAt ? longDate(customer.createdAt) : null, 'field-since'),
    ]);
    const avatar = el('div', { class: 'avatar', 'aria-hidden': 'true', text: (customer.name || customer.id || '?').trim().charAt(0).toUpperCase() });
    const heading = el('div', { class: 'customer-card' }, [
      avatar,
      el('div', {}, [
        el('p', { class: 'customer-name', text: customer.name || customer.id }),
        el('p', { class: 'customer-sub', text: customer.email || customer.id }),
      ]),
    ]);
    body.replaceChildren(heading, fields, flashbackSection(customer));
  }

  function flashbackSection(customer) {
    const profile = customer.flashback && customer.flashback.flashBack;
    const section = el('section', { class: 'flashback', 'aria-labelledby': 'flashback-heading' }, [
      el('h3', { id: 'flashback-heading', text: 'Flashback profile' }),
    ]);
    if (!profile) {
      section.append(
        el('p', {
          class: 'empty flashback-none',
          text: customer.birthdate ? 'No profile yet: it appears once the customer is old enough.' : 'No profile: the partner has not shared a birthdate.',
        }),
      );
      return section;
    }
    const event = (label, date, trait, cls) =>
      el('li', { class: 'flashback-event ' + cls }, [
        el('span', { class: 'flashback-label', text: label }),
        el('span', { class: 'flashback-trait', text: trait }),
        el('span', { class: 'flashback-date', text: date ? date.month + ' ' + date.year : '' }),
      ]);
    section.append(
      el('ul', { class: 'flashback-events' }, [
        event('Childhood', profile.firstEventDate, profile.firstEventTrait, 'first'),
        event('Coming of age', profile.secondEventDate, profile.secondEventTrait, 'second'),
      ]),
    );
    return section;
  }

  function setConnection(kind) {
    const box = $('connection');
    box.dataset.state = kind;
    $('connection-text').textContent = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' }[kind] || kind;
  }

  function setListError(text) {
    let node = $('list-error');
    if (!text) {
      if (node) node.remove();
      return;
    }
    if (!node) {
      node = el('p', { id: 'list-error', class: 'list-error', role: 'status' });
      document.querySelector('.list-pane').prepend(node);
    }
    node.textContent = text;
  }

  // ---------------------------------------------------------------------------------------
  // Session

  function showSignIn(notice) {
    show($('workspace'), false);
    show($('signin'), true);
    const box = $('signin-notice');
    box.textContent = notice || '';
    show(box, !!notice);
    $('signin-email').focus();
  }

  function startWorkspace() {
    show($('signin'), false);
    show($('workspace'), true);
    $('me-name').textContent = state.agent.name || state.agent.email;
    setView('list');
    renderAll();
    refreshLists();
    connect();
  }

  function resetState() {
    window.clearTimeout(state.reconnectTimer);
    window.clearTimeout(state.refreshTimer);
    const socket = state.ws;
    state.ws = null;
    if (socket) {
      try {
        socket.close(1000, 'signed out');
      } catch (_) {
        // Already closed.
      }
    }
    window.clearInterval(state.heartbeatTimer);
    window.clearTimeout(state.pongTimer);
    for (const entry of state.typing.values()) window.clearTimeout(entry.timer);
    for (const draft of state.drafts.values()) window.clearTimeout(draft.timer);
    for (const pending of state.pending.values()) for (const entry of pending.values()) window.clearTimeout(entry.timer);
    Object.assign(state, {
      token: null,
      agent: null,
      convs: new Map(),
      statusSeen: new Map(),
      messages: new Map(),
      pending: new Map(),
      loaded: new Set(),
      readSent: new Map(),
      typing: new Map(),
      drafts: new Map(),
      backfilled: new Set(),
      toldElsewhere: new Set(),
      openId: null,
      detail: null,
      cursor: null,
      attempts: 0,
      typingFor: null,
      // Answers to requests made before signing out are dropped.
      refreshSeq: state.refreshSeq + 1,
    });
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(AGENT_KEY);
    $('queue-list').replaceChildren();
    $('mine-list').replaceChildren();
    $('messages').replaceChildren();
  }

  function expireSession() {
    if (!state.token) return;
    resetState();
    showSignIn('Your session has ended. Please sign in again.');
  }

  async function signOut() {
    const token = state.token;
    stopTyping();
    resetState();
    showSignIn('You are signed out.');
    if (token) {
      // Best effort: the token also expires by itself.
      fetch('/api/agent/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + token } }).catch(() => {});
    }
  }

  async function onSignIn(event) {
    event.preventDefault();
    const email = $('signin-email').value.trim();
    const password = $('signin-password').value;
    const error = $('signin-error');
    show(error, false);
    if (!email || !password) {
      error.textContent = 'Enter your email and password.';
      show(error, true);
      return;
    }
    const button = $('signin-submit');
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const session = await api('POST', '/api/agent/login', { email, password });
      state.token = session.token;
      state.agent = session.agent;
      sessionStorage.setItem(TOKEN_KEY, session.token);
      sessionStorage.setItem(AGENT_KEY, JSON.stringify(session.agent));
      $('signin-password').value = '';
      startWorkspace();
    } catch (failure) {
      error.textContent = failure.message;
      show(error, true);
      $('signin-password').focus();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  }

  async function resume() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      showSignIn(null);
      return;
    }
    state.token = token;
    try {
      state.agent = await api('GET', '/api/agent/me');
      sessionStorage.setItem(AGENT_KEY, JSON.stringify(state.agent));
      startWorkspace();
    } catch (error) {
      if (error.status === 401) return; // expireSession already showed the form.
      // The server is unreachable: work from the saved identity and let the socket retry.
      try {
        state.agent = JSON.parse(sessionStorage.getItem(AGENT_KEY) || 'null');
      } catch (_) {
        state.agent = null;
      }
      if (state.agent) startWorkspace();
      else {
        state.token = null;
        showSignIn(error.message);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Wiring

  function wire() {
    $('signin-form').addEventListener('submit', onSignIn);
    $('signout').addEventListener('click', signOut);

    const onListClick = (event) => {
      const button = event.target.closest('.conv');
      if (button) openConversation(Number(button.dataset.id));
    };
    $('queue-list').addEventListener('click', onListClick);
    $('mine-list').addEventListener('click', onListClick);

    $('take').addEventListener('click', take);
    $('close').addEventListener('click', () => {
      const dialog = $('close-dialog');
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else closeConversation();
    });
    $('close-dialog').addEventListener('close', () => {
      if ($('close-dialog').returnValue === 'confirm') closeConversation();
    });

    $('chat-back').addEventListener('click', () => {
      setView('list');
      const button = document.querySelector('.conv[data-id="' + state.openId + '"]');
      if (button) button.focus();
    });
    $('show-customer').addEventListener('click', () => {
      setView('customer');
      $('customer-heading').focus();
    });
    $('customer-back').addEventListener('click', () => {
      setView('chat');
      $('chat-title').focus();
    });

    const input = $('composer-input');
    $('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      const text = input.value;
      if (!text.trim()) return;
      input.value = '';
      sendReply(text);
      input.focus();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('composer').requestSubmit();
      }
    });
    input.addEventListener('input', onComposerInput);
    input.addEventListener('blur', stopTyping);

    $('messages').addEventListener('click', (event) => {
      const retry = event.target.closest('.retry');
      if (retry && state.openId !== null) dispatch(state.openId, retry.dataset.clientMessageId);
    });

    document.addEventListener('keydown', (event) => {
      if (!state.token || $('close-dialog').open) return;
      if (event.altKey && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) {
        event.preventDefault();
        moveSelection(event.key === 'ArrowDown' ? 1 : -1);
      } else if (event.key === 'Escape' && narrow() && $('panes').dataset.view !== 'list') {
        event.preventDefault();
        setView($('panes').dataset.view === 'customer' ? 'chat' : 'list');
      }
    });

    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        markRead();
        reconnectNow();
      }
    });
    window.addEventListener('online', reconnectNow);
    window.setInterval(tickWaitingTimes, 1000);
  }

  wire();
  resume();
})();
