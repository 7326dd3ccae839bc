/** `next` from the login URL, only if it is a same-origin path (no open redirect). Own module: the Login page imports it. */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (next.startsWith('/login')) return '/';
  return next;
}
