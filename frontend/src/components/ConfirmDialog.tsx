'use client';
/**
 * Confirmation in a native <dialog> (modal, focus kept inside, Esc cancels).
 * const confirm = useConfirm(); … if (await confirm.ask({...})) …; render {confirm.dialog}
 */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';

interface Ask {
  title: string;
  body?: ReactNode;
  confirmLabel?: string;
  danger?: boolean;
}

export function useConfirm() {
  const [req, setReq] = useState<(Ask & { resolve: (ok: boolean) => void }) | null>(null);
  const ref = useRef<HTMLDialogElement>(null);
  const returnFocus = useRef<HTMLElement | null>(null);

  useEffect(() => {
    const d = ref.current;
    if (req && d && !d.open) d.showModal();
  }, [req]);

  const ask = useCallback(
    (a: Ask) =>
      new Promise<boolean>((resolve) => {
        returnFocus.current = document.activeElement as HTMLElement | null;
        setReq({ ...a, resolve });
      }),
    [],
  );

  const finish = (ok: boolean) => {
    req?.resolve(ok);
    ref.current?.close();
    setReq(null);
    returnFocus.current?.focus?.();
  };

  const dialog = req ? (
    <dialog
      ref={ref}
      className="confirm"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        finish(false);
      }}
    >
      <h2 id="confirm-title">{req.title}</h2>
      {req.body && <div>{req.body}</div>}
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={() => finish(false)} autoFocus>
          Cancel
        </button>
        <button
          type="button"
          className={req.danger ? 'btn btn-danger-solid' : 'btn btn-primary'}
          onClick={() => finish(true)}
        >
          {req.confirmLabel ?? 'Confirm'}
        </button>
      </div>
    </dialog>
  ) : null;

  return { ask, dialog };
}
