'use client';
import { useSyncExternalStore } from 'react';
import { getPrefs, getServerPrefs, subscribePrefs, type Prefs } from './prefs';

export function usePrefs(): Prefs {
  return useSyncExternalStore(subscribePrefs, getPrefs, getServerPrefs);
}
