// The upload queue of a knowledge base page as plain state: which files wait, which are being
// sent and how far, which finished or failed and why. No React and no network here.

export type UploadStatus = "waiting" | "uploading" | "done" | "failed";

export interface UploadItem {
  id: string;
  name: string;
  size: number;
  /** Bytes of the request body sent so far (multipart framing included). */
  sent: number;
  /** Bytes of the whole request body, once the browser knows it. */
  total: number;
  status: UploadStatus;
  /** Why the upload failed, in words. */
  error?: string;
  /** The same file (name and content) was already in the base: nothing changed. */
  unchanged?: boolean;
}

export type UploadAction =
  | { type: "add"; files: { id: string; name: string; size: number }[] }
  | { type: "start"; id: string }
  | { type: "progress"; id: string; sent: number; total: number }
  | { type: "done"; id: string; unchanged: boolean }
  | { type: "failed"; id: string; error: string }
  | { type: "dismiss"; id: string }
  | { type: "clear-finished" };

/** Files sent at once: more would only share the same upstream bandwidth. */
export const PARALLEL_UPLOADS = 2;

function update(items: UploadItem[], id: string, change: (item: UploadItem) => UploadItem): UploadItem[] {
  return items.map((item) => (item.id === id ? change(item) : item));
}

export function uploadsReducer(items: UploadItem[], action: UploadAction): UploadItem[] {
  switch (action.type) {
    case "add":
      return [
        ...items,
        ...action.files.map((f): UploadItem => ({ ...f, sent: 0, total: f.size, status: "waiting" })),
      ];
    case "start":
      return update(items, action.id, (item) => (item.status === "waiting" ? { ...item, status: "uploading" } : item));
    case "progress":
      return update(items, action.id, (item) =>
        item.status === "uploading" ? { ...item, sent: action.sent, total: Math.max(action.total, action.sent) } : item,
      );
    case "done":
      return update(items, action.id, (item) => ({ ...item, status: "done", sent: item.total, unchanged: action.unchanged }));
    case "failed":
      return update(items, action.id, (item) => ({ ...item, status: "failed", error: action.error }));
    case "dismiss":
      return items.filter((item) => item.id !== action.id);
    case "clear-finished":
      return items.filter((item) => item.status === "waiting" || item.status === "uploading");
  }
}

/** The waiting uploads to start now so that at most `parallel` are in flight, oldest first. */
export function nextToStart(items: UploadItem[], parallel = PARALLEL_UPLOADS): UploadItem[] {
  const running = items.filter((item) => item.status === "uploading").length;
  const free = Math.max(0, parallel - running);
  return items.filter((item) => item.status === "waiting").slice(0, free);
}

/** Progress of one upload, 0–100 (a finished one is 100, an empty file too once done). */
export function percent(item: UploadItem): number {
  if (item.status === "done") return 100;
  if (item.total <= 0) return 0;
  return Math.min(100, Math.floor((item.sent / item.total) * 100));
}

/** What the uploads list says about one file, in words. */
export function uploadState(item: UploadItem): string {
  switch (item.status) {
    case "waiting":
      return "Waiting";
    case "uploading":
      return percent(item) >= 100 ? "Checking…" : `Uploading ${percent(item)} %`;
    case "done":
      return item.unchanged ? "Already there, unchanged" : "Uploaded";
    case "failed":
      return item.error ?? "Failed";
  }
}

/** Whether any upload is still waiting or being sent. */
export function busy(items: UploadItem[]): boolean {
  return items.some((item) => item.status === "waiting" || item.status === "uploading");
}
