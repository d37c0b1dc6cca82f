// Sending one document: XMLHttpRequest (fetch reports no upload progress) with the session
// cookie and the CSRF header of every other write, and the API's refusals in words.
import { csrfHeaders, describeError } from "../api/client";
import { formatBytes } from "./documents";

export type UploadOutcome = { ok: true; unchanged: boolean } | { ok: false; error: string; aborted?: boolean };

export interface UploadHandle {
  done: Promise<UploadOutcome>;
  abort: () => void;
}

function capitalised(text: string): string {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

function fileProblem(details: Record<string, unknown>): string | undefined {
  const problems = Array.isArray(details.problems) ? (details.problems as Record<string, unknown>[]) : [];
  const problem = problems.find((p) => typeof p?.field === "string" && /(^|\.)file$/.test(p.field));
  return typeof problem?.message === "string" ? problem.message : undefined;
}

/** Why the API refused an upload, in words: the size limit, the type or content that is not
 * allowed (the API's own explanation), or any other error body. */
export function uploadError(status: number, body: unknown): string {
  const error = describeError(status, body);
  if (status === 413 || error.code === "payload_too_large") {
    const max = Number(error.details.max_bytes);
    return Number.isFinite(max) && max > 0
      ? `Too large: the upload limit is ${formatBytes(max)}.`
      : "Too large: the server refused a file of this size.";
  }
  return capitalised(fileProblem(error.details) ?? error.message);
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Uploads `file` as the multipart field `file` to `url`; `onProgress` gets the bytes of the
 * request body sent so far and its total. */
export function sendFile(url: string, file: Blob & { name: string }, onProgress: (sent: number, total: number) => void): UploadHandle {
  const request = new XMLHttpRequest();
  const done = new Promise<UploadOutcome>((resolve) => {
    request.open("POST", url);
    request.withCredentials = true;
    request.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(csrfHeaders("POST"))) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) resolve({ ok: true, unchanged: request.status === 200 });
      else resolve({ ok: false, error: uploadError(request.status, parsed(request.responseText)) });
    };
    // a server refusing a large body early may close the connection before it answers
    request.onerror = () => resolve({ ok: false, error: "The upload was interrupted: the server could not be reached or closed the connection." });
    request.onabort = () => resolve({ ok: false, error: "Cancelled.", aborted: true });
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
  return { done, abort: () => request.abort() };
}
