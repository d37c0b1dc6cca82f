import { useEffect, useRef, useState, type DragEvent } from "react";
import { formatBytes } from "./documents";
import { busy, percent, uploadState } from "./queue";
import { useUploads } from "./useUploads";

function hasFiles(event: { dataTransfer: DataTransfer | null }): boolean {
  return Boolean(event.dataTransfer?.types.includes("Files"));
}

/** A drop zone that is also a button opening the file picker, and one progress bar per file. */
export function UploadZone({ url, onSettled }: { url: string; onSettled: () => void }) {
  const uploads = useUploads(url, onSettled);
  const picker = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);

  // a file dropped next to the zone would make the browser leave the page to open it
  useEffect(() => {
    const keep = (event: globalThis.DragEvent) => {
      if (hasFiles(event)) event.preventDefault();
    };
    window.addEventListener("dragover", keep);
    window.addEventListener("drop", keep);
    return () => {
      window.removeEventListener("dragover", keep);
      window.removeEventListener("drop", keep);
    };
  }, []);

  const onDragOver = (event: DragEvent) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    setOver(true);
  };
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    uploads.add(event.dataTransfer.files);
  };
  const finished = uploads.items.some((item) => item.status === "done" || item.status === "failed");

  return (
    <section className="uploads" aria-label="Upload documents">
      <button
        type="button"
        className={`dropzone${over ? " over" : ""}`}
        onClick={() => picker.current?.click()}
        onDragEnter={onDragOver}
        onDragOver={onDragOver}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <strong>Drop documents here, or choose files</strong>
        <span className="muted">Several files at once. The server checks each file's type and size and says why it refuses one.</span>
      </button>
      <input
        ref={picker}
        type="file"
        multiple
        hidden
        aria-label="Documents to upload"
        onChange={(event) => {
          uploads.add(event.target.files ?? []);
          event.target.value = "";
        }}
      />
      {uploads.items.length > 0 && (
        <>
          <ul className="upload-list" aria-label="Uploads" aria-live="polite">
            {uploads.items.map((item) => (
              <li key={item.id} className={`upload upload-${item.status}`}>
                <span className="upload-name" title={item.name}>
                  {item.name}
                </span>
                <span className="muted small">{formatBytes(item.size)}</span>
                {item.status === "failed" ? (
                  <span className="upload-error">{uploadState(item)}</span>
                ) : (
                  <>
                    <progress max={100} value={percent(item)} aria-label={`Upload of ${item.name}`} />
                    <span className="upload-state">{uploadState(item)}</span>
                  </>
                )}
                <button
                  type="button"
                  className="ghost"
                  onClick={() => uploads.remove(item.id)}
                  aria-label={`${item.status === "done" || item.status === "failed" ? "Dismiss" : "Cancel"} ${item.name}`}
                >
                  {item.status === "done" || item.status === "failed" ? "Dismiss" : "Cancel"}
                </button>
              </li>
            ))}
          </ul>
          {finished && !busy(uploads.items) && (
            <button type="button" className="ghost small" onClick={uploads.clearFinished}>
              Clear finished uploads
            </button>
          )}
        </>
      )}
    </section>
  );
}
