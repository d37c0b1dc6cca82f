// The upload queue of one knowledge base as a React hook: files are added, sent a few at a time
// with their own progress, and `onSettled` runs after each one so the document list refreshes.
import { useCallback, useEffect, useReducer, useRef } from "react";
import { nextToStart, uploadsReducer, type UploadItem } from "./queue";
import { sendFile, type UploadHandle } from "./upload";

export interface Uploads {
  items: UploadItem[];
  add: (files: Iterable<File>) => void;
  /** Cancels a file being sent or waiting, or removes a finished one from the list. */
  remove: (id: string) => void;
  clearFinished: () => void;
}

export function useUploads(url: string, onSettled: () => void): Uploads {
  const [items, dispatch] = useReducer(uploadsReducer, []);
  const files = useRef(new Map<string, File>());
  const handles = useRef(new Map<string, UploadHandle>());
  const counter = useRef(0);
  const settled = useRef(onSettled);
  settled.current = onSettled;

  useEffect(() => {
    for (const item of nextToStart(items)) {
      const file = files.current.get(item.id);
      // an effect may run twice for the same state (StrictMode): never send a file twice
      if (!file || handles.current.has(item.id)) continue;
      dispatch({ type: "start", id: item.id });
      const handle = sendFile(url, file, (sent, total) => dispatch({ type: "progress", id: item.id, sent, total }));
      handles.current.set(item.id, handle);
      void handle.done.then((outcome) => {
        handles.current.delete(item.id);
        files.current.delete(item.id);
        if (outcome.ok) dispatch({ type: "done", id: item.id, unchanged: outcome.unchanged });
        else if (outcome.aborted) dispatch({ type: "dismiss", id: item.id });
        else dispatch({ type: "failed", id: item.id, error: outcome.error });
        settled.current();
      });
    }
  }, [items, url]);

  const add = useCallback((chosen: Iterable<File>) => {
    const added = [...chosen].map((file) => {
      counter.current += 1;
      const id = `upload-${counter.current}`;
      files.current.set(id, file);
      return { id, name: file.name, size: file.size };
    });
    if (added.length) dispatch({ type: "add", files: added });
  }, []);

  const remove = useCallback((id: string) => {
    const handle = handles.current.get(id);
    if (handle) {
      handle.abort();
      return;
    }
    files.current.delete(id);
    dispatch({ type: "dismiss", id });
  }, []);

  const clearFinished = useCallback(() => dispatch({ type: "clear-finished" }), []);
  return { items, add, remove, clearFinished };
}
