import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** A stand-in for the browser WebSocket: records instances and what was sent. */
class FakeSocket {
  static all: FakeSocket[] = [];
  url: string;
  sent: string[] = [];
  closed = false;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(url: string) {
    this.url = url;
    FakeSocket.all.push(this);
  }
  send(s: string) {
    this.sent.push(s);
  }
  close() {
    this.closed = true;
    this.onclose?.();
  }
  receive(m: object) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  drop() {
    this.onclose?.();
  }
}

describe('the shared live socket', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.resetModules();
    FakeSocket.all = [];
    vi.stubGlobal('WebSocket', FakeSocket);
    vi.stubGlobal('window', { location: { origin: 'https://ml.example' } });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('opens one socket for all listeners, answers pings, reconnects with back-off and asks for a resync', async () => {
    const { subscribeLive, isLiveUp } = await import('@/lib/live');
    const a: string[] = [];
    const b: string[] = [];
    const offA = subscribeLive((m) => a.push(m.type));
    const offB = subscribeLive((m) => b.push(m.type));
    expect(FakeSocket.all).toHaveLength(1);
    const s1 = FakeSocket.all[0];
    expect(s1.url).toBe('wss://ml.example/ws');

    s1.receive({ seq: 1, type: 'hello', ts: '2026-01-01T00:00:00Z', topics: [], data: {} });
    expect(isLiveUp()).toBe(true);
    s1.receive({ seq: 2, type: 'ping', ts: '', topics: [], data: {} });
    expect(s1.sent).toEqual(['{"type":"pong"}']);
    s1.receive({ seq: 3, type: 'job.progress', ts: '2026-01-01T00:00:10Z', topics: [], data: { job_id: 'x' } });
    expect(a).toEqual(['job.progress']);
    expect(b).toEqual(['job.progress']);

    s1.drop();
    expect(isLiveUp()).toBe(false);
    vi.advanceTimersByTime(999);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    const s2 = FakeSocket.all[1];
    s2.drop(); // the second try fails too: 2 s
    vi.advanceTimersByTime(1999);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    const s3 = FakeSocket.all[2];
    const got: { type: string; since?: unknown }[] = [];
    const offC = subscribeLive((m) => got.push({ type: m.type, since: m.data.since }));
    expect(FakeSocket.all).toHaveLength(3); // still one socket
    s3.receive({ seq: 1, type: 'hello', ts: '', topics: [], data: {} });
    expect(got).toEqual([{ type: 'resync', since: '2026-01-01T00:00:08.000Z' }]);

    // A server resync message is passed on as a resync too.
    s3.receive({ seq: 2, type: 'resync', ts: '', topics: [], data: { reason: 'slow_consumer', dropped: 5 } });
    expect(got.map((g) => g.type)).toEqual(['resync', 'resync']);

    // The last listener leaving closes the socket (after a grace period), with no reconnect.
    offA();
    offB();
    offC();
    vi.advanceTimersByTime(5000);
    expect(s3.closed).toBe(true);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(3);
  });
});
