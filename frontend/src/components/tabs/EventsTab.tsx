'use client';
/**
 * Events and monitoring: alerts (acknowledge), the event feed (type, source,
 * suspicious; by IP), an event's input/output, and drift reports per feature.
 * alert.*, drift.report_ready, security.* and finished jobs refresh it live.
 */
import { useEffect, useRef, useState } from 'react';
import { alerts, drift, events } from '@/api/endpoints';
import { formatDate } from '@/lib/format';
import { useLive } from '@/lib/live';
import { isFinished } from '@/lib/liveState';
import { useAction, useApi } from '@/lib/useApi';
import { DriftReportTable } from '../DriftReportTable';
import { DriftReportView } from '../DriftReportView';
import { Empty, ErrorBox, Loading } from '../Status';
import type { TabProps } from './registry';

function reportFromHash(): number | null {
  const m = /[?&]report=(\d+)/.exec(typeof window === 'undefined' ? '' : window.location.hash);
  return m ? Number(m[1]) : null;
}

export default function EventsTab(_: TabProps) {
  const [report, setReport] = useState<number | null>(null);
  const [tick, setTick] = useState(0);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    const on = () => setReport(reportFromHash());
    on();
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  useLive((m) => {
    const t = m.type;
    if (t.startsWith('alert.') || t.startsWith('security.') || t === 'drift.report_ready' || t === 'resync' || (t.startsWith('job.') && isFinished(String(m.data.status ?? '')))) {
      // Coalesce bursts into one refetch.
      if (timer.current) clearTimeout(timer.current);
      timer.current = setTimeout(() => setTick((x) => x + 1), 300);
    }
  });
  return (
    <>
      <Alerts tick={tick} />
      <Reports tick={tick} selected={report} />
      <Events tick={tick} />
    </>
  );
}

function Alerts({ tick }: { tick: number }) {
  const [status, setStatus] = useState('active');
  const list = useApi((signal) => alerts.list(status, signal), [status, tick]);
  const ack = useAction(alerts.ack);
  const items = list.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="alerts-h">
      <h2 id="alerts-h">Alerts</h2>
      <div className="toolbar">
        <div className="field">
          <label htmlFor="al-status">Status</label>
          <select id="al-status" value={status} onChange={(e) => setStatus(e.target.value)}>
            {['active', 'acknowledged', 'resolved', 'all'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
      </div>
      <ErrorBox message={list.error ?? ack.error} onRetry={list.reload} />
      {list.loading && !list.data ? (
        <Loading />
      ) : !items.length ? (
        <Empty>No {status === 'all' ? '' : `${status} `}alerts.</Empty>
      ) : (
        <ul className="alert-list">
          {items.map((a) => (
            <li key={a.id} className={`alert ${a.severity === 'critical' || a.severity === 'major' ? 'alert-error' : 'alert-warning'}`} data-testid="alert-item">
              <strong>{a.kind}</strong> {a.model_key && `· ${a.model_key} `}· {a.message} <span className="muted">({a.occurrences}×, last {formatDate(a.last_seen_at)}, {a.status})</span>{' '}
              {typeof a.link?.report_id === 'number' && <a href={`#events?report=${a.link.report_id}`}>report #{String(a.link.report_id)}</a>}{' '}
              {a.status === 'active' && (
                <button type="button" className="btn btn-sm" disabled={ack.pending} onClick={() => ack.run(a.id).then((r) => r.ok && list.reload())}>
                  Acknowledge
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Reports({ tick, selected }: { tick: number; selected: number | null }) {
  const list = useApi((signal) => drift.reports({ limit: 20 }, signal), [tick]);
  const items = list.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="reports-h">
      <h2 id="reports-h">Drift reports</h2>
      <ErrorBox message={list.error} onRetry={list.reload} />
      {list.loading && !list.data ? (
        <Loading />
      ) : !items.length ? (
        <Empty>No drift reports yet. Run “Check drift now” in Models.</Empty>
      ) : (
        <DriftReportTable items={items} selected={selected} />
      )}
      {selected !== null && <DriftReportView id={selected} />}
    </section>
  );
}

function Events({ tick }: { tick: number }) {
  const [typeInput, setTypeInput] = useState('');
  const [type, setType] = useState('');
  const [source, setSource] = useState('');
  // Typing a type filter fetches once the typing pauses, not per keystroke.
  useEffect(() => {
    const t = setTimeout(() => setType(typeInput.trim()), 300);
    return () => clearTimeout(t);
  }, [typeInput]);
  const [suspicious, setSuspicious] = useState(false);
  const [ip, setIp] = useState('');
  const [selected, setSelected] = useState<number | null>(null);
  const q = { type: type || undefined, source: source || undefined, suspicious: suspicious || undefined, limit: 100 };
  const list = useApi((signal) => (ip ? events.byIp(ip, q, signal) : events.list(q, signal)), [type, source, suspicious, ip, tick]);
  const items = list.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="events-h">
      <h2 id="events-h">Events</h2>
      <div className="toolbar">
        <div className="field">
          <label htmlFor="ev-type">Type</label>
          <input id="ev-type" type="text" value={typeInput} onChange={(e) => setTypeInput(e.target.value)} placeholder="e.g. login, train.completed" />
        </div>
        <div className="field">
          <label htmlFor="ev-source">Source</label>
          <select id="ev-source" value={source} onChange={(e) => setSource(e.target.value)}>
            <option value="">All sources</option>
            <option>gui</option>
            <option>api</option>
            <option>system</option>
          </select>
        </div>
        <label className="check">
          <input type="checkbox" checked={suspicious} onChange={(e) => setSuspicious(e.target.checked)} /> Suspicious only
        </label>
        {ip && (
          <span>
            IP {ip}{' '}
            <button type="button" className="link-btn" onClick={() => setIp('')}>
              Show all IPs
            </button>
          </span>
        )}
      </div>
      <ErrorBox message={list.error} onRetry={list.reload} />
      {list.loading && !list.data ? (
        <Loading label="Loading events…" />
      ) : !items.length ? (
        <Empty>No events match.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Type</th>
                <th scope="col">User</th>
                <th scope="col">Source</th>
                <th scope="col">IP</th>
                <th scope="col">Request</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id} className={e.suspicious ? 'suspicious' : undefined} aria-selected={e.id === selected} data-testid="event-row" data-type={e.type}>
                  <td>{formatDate(e.created_at)}</td>
                  <td>
                    <button type="button" className="link-btn" onClick={() => setSelected(e.id)} aria-label={`Details of event ${e.id} ${e.type}`}>
                      {e.type}
                    </button>
                    {e.suspicious && <span className="badge badge-bad"> suspicious</span>}
                  </td>
                  <td>{e.username ?? '—'}</td>
                  <td>{e.source}</td>
                  <td>
                    {e.client_ip ? (
                      <button type="button" className="link-btn" onClick={() => setIp(e.client_ip as string)} aria-label={`Events from ${e.client_ip}`}>
                        {e.client_ip}
                      </button>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td>{e.method ? `${e.method} ${e.path ?? ''} ${e.status_code ?? ''}` : '—'}</td>
                  <td>{e.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selected !== null && <EventView id={selected} />}
    </section>
  );
}

function EventView({ id }: { id: number }) {
  const e = useApi((signal) => events.get(id, signal), [id]);
  if (e.error) return <ErrorBox message={e.error} />;
  if (!e.data) return <Loading />;
  const d = e.data;
  return (
    <div data-testid="event-detail">
      <h3>
        Event #{d.id}: {d.type}
      </h3>
      {d.suspicious && (
        <div className="alert alert-error" role="alert">
          Suspicious: {d.reasons.join('; ')}
        </div>
      )}
      <p className="muted">
        {formatDate(d.created_at)} · {d.username ?? 'anonymous'} · {d.client_ip ?? '—'} · {d.user_agent ?? ''}
        {d.message ? ` · ${d.message}` : ''}
      </p>
      <div className="grid-2">
        <div>
          <h4>Input</h4>
          <pre className="json">{d.input ? JSON.stringify(d.input, null, 2) : '—'}</pre>
        </div>
        <div>
          <h4>Output</h4>
          <pre className="json">{d.output ? JSON.stringify(d.output, null, 2) : '—'}</pre>
        </div>
      </div>
    </div>
  );
}
