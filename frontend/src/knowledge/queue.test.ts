import { describe, expect, it } from "vitest";
import { busy, nextToStart, percent, uploadState, uploadsReducer, type UploadItem } from "./queue";

const three = uploadsReducer([], {
  type: "add",
  files: [
    { id: "a", name: "a.md", size: 100 },
    { id: "b", name: "b.pdf", size: 2000 },
    { id: "c", name: "c.txt", size: 0 },
  ],
});

describe("uploadsReducer", () => {
  it("adds files waiting, with nothing sent yet", () => {
    expect(three.map((u) => [u.id, u.status, u.sent, u.total])).toEqual([
      ["a", "waiting", 0, 100],
      ["b", "waiting", 0, 2000],
      ["c", "waiting", 0, 0],
    ]);
  });

  it("tracks each file's progress on its own", () => {
    let state = uploadsReducer(three, { type: "start", id: "a" });
    state = uploadsReducer(state, { type: "start", id: "b" });
    state = uploadsReducer(state, { type: "progress", id: "a", sent: 60, total: 240 });
    state = uploadsReducer(state, { type: "progress", id: "b", sent: 2100, total: 2200 });
    expect(percent(state[0])).toBe(25);
    expect(percent(state[1])).toBe(95);
    expect(percent(state[2])).toBe(0);
    expect(uploadState(state[0])).toBe("Uploading 25 %");
  });

  it("ignores progress of a file that is not being sent", () => {
    const state = uploadsReducer(three, { type: "progress", id: "a", sent: 50, total: 100 });
    expect(state[0].sent).toBe(0);
  });

  it("starts a file only once", () => {
    const done = uploadsReducer(uploadsReducer(three, { type: "start", id: "a" }), { type: "done", id: "a", unchanged: false });
    expect(uploadsReducer(done, { type: "start", id: "a" })[0].status).toBe("done");
  });

  it("finishes at 100 % and says whether the file was already there", () => {
    let state = uploadsReducer(three, { type: "start", id: "c" });
    state = uploadsReducer(state, { type: "done", id: "c", unchanged: true });
    expect(percent(state[2])).toBe(100);
    expect(uploadState(state[2])).toBe("Already there, unchanged");
  });

  it("keeps the API's reason of a failed upload", () => {
    let state = uploadsReducer(three, { type: "start", id: "b" });
    state = uploadsReducer(state, { type: "failed", id: "b", error: "Too large: the upload limit is 25 MB." });
    expect(state[1].status).toBe("failed");
    expect(uploadState(state[1])).toBe("Too large: the upload limit is 25 MB.");
  });

  it("dismisses one file and clears the finished ones only", () => {
    let state = uploadsReducer(three, { type: "start", id: "a" });
    state = uploadsReducer(state, { type: "done", id: "a", unchanged: false });
    state = uploadsReducer(state, { type: "start", id: "b" });
    state = uploadsReducer(state, { type: "failed", id: "b", error: "no" });
    expect(uploadsReducer(state, { type: "clear-finished" }).map((u) => u.id)).toEqual(["c"]);
    expect(uploadsReducer(state, { type: "dismiss", id: "c" }).map((u) => u.id)).toEqual(["a", "b"]);
  });
});

describe("nextToStart", () => {
  it("fills the free slots with the oldest waiting files", () => {
    expect(nextToStart(three, 2).map((u) => u.id)).toEqual(["a", "b"]);
    const running = uploadsReducer(three, { type: "start", id: "a" });
    expect(nextToStart(running, 2).map((u) => u.id)).toEqual(["b"]);
    const full = uploadsReducer(running, { type: "start", id: "b" });
    expect(nextToStart(full, 2)).toEqual([]);
  });

  it("starts the next file when one finishes", () => {
    let state = uploadsReducer(uploadsReducer(three, { type: "start", id: "a" }), { type: "start", id: "b" });
    state = uploadsReducer(state, { type: "failed", id: "a", error: "x" });
    expect(nextToStart(state, 2).map((u) => u.id)).toEqual(["c"]);
  });
});

describe("busy", () => {
  it("is true while anything waits or is being sent", () => {
    expect(busy(three)).toBe(true);
    const finished: UploadItem[] = three.map((u) => ({ ...u, status: "done" }));
    expect(busy(finished)).toBe(false);
    expect(busy([])).toBe(false);
  });
});
