import { describe, expect, it } from "vitest";
import { uploadError } from "./upload";

describe("uploadError", () => {
  it("states the upload limit the API sends", () => {
    const body = { code: "payload_too_large", message: "file is larger than the 25000000-byte upload limit", details: { field: "file", max_bytes: 25_000_000 } };
    expect(uploadError(413, body)).toBe("Too large: the upload limit is 25 MB.");
  });

  it("says too large even when the body was refused before it was read", () => {
    expect(uploadError(413, { code: "payload_too_large", message: "request body is larger than 9 bytes", details: {} })).toBe(
      "Too large: the server refused a file of this size.",
    );
    expect(uploadError(413, undefined)).toBe("Too large: the server refused a file of this size.");
  });

  it("uses the API's explanation of a type or content that is not allowed", () => {
    const body = {
      code: "validation_error",
      message: "file: file 'x.exe' has an unsupported type; allowed extensions: .csv, .md",
      details: { problems: [{ field: "body.file", message: "file 'x.exe' has an unsupported type; allowed extensions: .csv, .md", type: "unsupported_type" }] },
    };
    expect(uploadError(422, body)).toBe("File 'x.exe' has an unsupported type; allowed extensions: .csv, .md");
  });

  it("falls back to the error message, or the status", () => {
    expect(uploadError(403, { code: "forbidden", message: "editors only", details: {} })).toBe("Editors only");
    expect(uploadError(502, "<html>bad gateway</html>")).toBe("The server answered 502.");
  });
});
