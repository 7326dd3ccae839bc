'use client';
/**
 * The one WebSocket of the dashboard (`/ws`, authenticated by the httpOnly
 * session cookie). Opened by the first subscriber, closed shortly after the
 * last one leaves. Reconnects with back-off (1 s … 30 s); after a reconnect
 * (or a server `resync`) listeners get a synthetic
 * `{type: 'resync', data: {since}}` and refetch what they show
 * (jobs: GET /jobs?updated_since=since).
 */
import { useEffect, useRef, useState } from 'react';
import { API_URL } from '@/api/client';
import { backoffMs, parseMessage, resyncSince, type LiveMessage } from './liveState';

type Listener = (m: LiveMessage) => void;
type StateListener = (up: boolean) => void;

const listeners = new Set<Listener>();
const stateListeners = new Set<StateListener>();
let ws: WebSocket | null = null;
let up = false;
let attempt = 0;
let everConnected = false;
let lastTs: string | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
let closeTimer: ReturnType<typeof setTimeout> | null = null;

function emit(m: LiveMessage) {
  for (const l of [...listeners]) {
    try {
      l(m);
    } catch (e) {
      console.error(e);
    }
  }
}

function setUp(v: boolean) {
  if (up === v) return;
  up = v;
  for (const l of [...stateListeners]) l(v);
}

function url(): string {
  const base = API_URL || window.location.origin;
  return base.replace(/^http/, 'ws') + '/ws';
}

function resync() {
  emit({ seq: 0, type: 'resync', ts: new Date().toISOString(), topics: [], data: { since: resyncSince(lastTs) } });
}

function open() {
  if (ws || typeof WebSocket === 'undefined') return;
  const sock = new WebSocket(url());
  ws = sock;
  sock.onmessage = (ev) => {
    const m = parseMessage(ev.data);
    if (!m) return;
    if (m.type === 'ping') {
      sock.send('{"type":"pong"}');
      return;
    }
    if (m.type === 'hello') {
      attempt = 0;
      setUp(true);
      if (everConnected) resync();
      everConnected = true;
      return;
    }
    if (m.type === 'resync') {
      resync();
      return;
    }
    if (m.ts) lastTs = m.ts;
    emit(m);
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    setUp(false);
    if (!listeners.size) return;
    const delay = backoffMs(attempt++);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (listeners.size) open();
    }, delay);
  };
}

function close() {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  const s = ws;
  ws = null;
  setUp(false);
  s?.close();
}

export function subscribeLive(fn: Listener): () => void {
  listeners.add(fn);
  if (closeTimer) clearTimeout(closeTimer);
  closeTimer = null;
  open();
  return () => {
    listeners.delete(fn);
    if (!listeners.size) closeTimer = setTimeout(close, 5000);
  };
}

export function isLiveUp(): boolean {
  return up;
}

/** Subscribe for the component's lifetime; returns whether the socket is up. */
export function useLive(handler: Listener): boolean {
  const ref = useRef(handler);
  ref.current = handler;
  const [connected, setConnected] = useState(up);
  useEffect(() => {
    const off = subscribeLive((m) => ref.current(m));
    stateListeners.add(setConnected);
    setConnected(up);
    return () => {
      off();
      stateListeners.delete(setConnected);
    };
  }, []);
  return connected;
}
