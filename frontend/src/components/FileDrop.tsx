/** A file picker that also takes a dropped file (keyboard: the labelled input). */
import { useState, type DragEvent } from 'react';

export function FileDrop({ id, label, accept, onFile, file }: { id: string; label: string; accept?: string; onFile: (f: File) => void; file: File | null }) {
  const [over, setOver] = useState(false);
  function onDrop(e: DragEvent) {
    e.preventDefault();
    setOver(false);
    const f = e.dataTransfer.files?.[0];
    if (f) onFile(f);
  }
  return (
    <div
      className={`dropzone${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <label htmlFor={id}>{label}</label>
      <p className="muted">Drop a file here or choose one (CSV, JSON, JSON Lines, Parquet).</p>
      <input id={id} type="file" accept={accept} onChange={(e) => e.target.files?.[0] && onFile(e.target.files[0])} />
      {file && <p>Selected: {file.name} ({Math.ceil(file.size / 1024)} KB)</p>}
    </div>
  );
}
