import { describe, expect, it } from "vitest";
import { chunksText, counted, documentType, formatBytes, formatScore, pollInterval, type DocumentLike } from "./documents";

function doc(status: string, extra: Partial<DocumentLike> = {}): DocumentLike {
  return { filename: "faq.md", content_type: "text/markdown", status, chunks_total: 0, chunks_done: 0, ...extra };
}

describe("pollInterval", () => {
  it("polls while a document is pending or processing", () => {
    expect(pollInterval([doc("ready"), doc("pending")], 1000)).toBe(1000);
    expect(pollInterval([doc("processing")], 1000)).toBe(1000);
  });
  it("stops once none is", () => {
    expect(pollInterval([doc("ready"), doc("failed")])).toBe(false);
    expect(pollInterval([])).toBe(false);
    expect(pollInterval(undefined)).toBe(false);
  });
});

describe("formatBytes", () => {
  it("uses the units people read", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(14_200)).toBe("14 kB");
    expect(formatBytes(3_100_000)).toBe("3.1 MB");
    expect(formatBytes(25_000_000)).toBe("25 MB");
    expect(formatBytes(-1)).toBe("—");
  });
});

describe("documentType", () => {
  it("names known content types and falls back to the extension", () => {
    expect(documentType(doc("ready"))).toBe("Markdown");
    expect(documentType({ filename: "a.pdf", content_type: "application/pdf" })).toBe("PDF");
    expect(documentType({ filename: "notes.rst", content_type: "application/octet-stream" })).toBe("RST");
  });
});

describe("chunksText", () => {
  it("counts chunks when ready and shows progress while processing", () => {
    expect(chunksText(doc("ready", { chunks_total: 1, chunks_done: 1 }))).toBe("1 chunk");
    expect(chunksText(doc("ready", { chunks_total: 12, chunks_done: 12 }))).toBe("12 chunks");
    expect(chunksText(doc("processing", { chunks_total: 40, chunks_done: 8 }))).toBe("8 of 40 embedded");
    expect(chunksText(doc("processing"))).toBe("");
    expect(chunksText(doc("failed", { chunks_total: 3 }))).toBe("");
  });
});

describe("formatScore", () => {
  it("keeps three significant digits", () => {
    expect(formatScore(0.0327868852)).toBe("0.0328");
    expect(formatScore(Number.NaN)).toBe("—");
  });
});

describe("counted", () => {
  it("pluralises", () => {
    expect(counted(1, "document")).toBe("1 document");
    expect(counted(0, "document")).toBe("0 documents");
  });
});
