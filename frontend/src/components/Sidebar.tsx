'use client';
import type { TabDef } from './tabs/registry';
import { Icon } from './Icon';
import { Logo } from './Logo';

interface Props {
  tabs: TabDef[];
  current: string | undefined;
  version?: string;
}

/** Navigation: plain links to `#tab` (keyboard and middle-click work natively). */
export function Sidebar({ tabs, current, version }: Props) {
  return (
    <aside className="sidebar">
      <a className="brand" href="#overview" aria-label="ML Service: overview">
        <Logo />
        <span>ML Service</span>
      </a>
      <nav aria-label="Dashboard">
        <ul className="nav">
          {tabs.map((t) => (
            <li key={t.id}>
              <a
                href={`#${t.id}`}
                aria-current={t.id === current ? 'page' : undefined}
                // Warm the tab's chunk before the click lands.
                onMouseEnter={() => void t.load()}
                onFocus={() => void t.load()}
              >
                <Icon d={t.icon} />
                {t.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {version && <div className="sidebar-foot">Version {version}</div>}
    </aside>
  );
}
