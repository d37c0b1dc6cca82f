import { describe, expect, it } from "vitest";
import type { RJSFSchema } from "@rjsf/utils";
import { problemsAsErrors } from "./ConfigPanel";
import { insertVariable, openTemplate } from "./TemplateInput";
import { rawErrors, validator } from "./validator";
import { secretBody } from "../pages/Credentials";

const HTTP: RJSFSchema = {
  type: "object",
  additionalProperties: false,
  required: ["url"],
  properties: {
    url: { type: "string", minLength: 1, maxLength: 20 },
    method: { type: "string", enum: ["GET", "POST"] },
    timeout_seconds: { type: "number", exclusiveMinimum: 0, maximum: 120 },
    cron: { anyOf: [{ type: "string" }, { type: "null" }], default: null },
    headers: { type: "object", additionalProperties: { type: "string" }, maxProperties: 2 },
  },
};

describe("config validation", () => {
  it("accepts a valid config", () => {
    expect(rawErrors(HTTP, { url: "https://a", method: "GET", cron: null })).toEqual([]);
  });

  it("reports a missing required field on the field itself", () => {
    const [error] = rawErrors(HTTP, {});
    expect(error).toMatchObject({ name: "required", property: ".url", message: "is required" });
  });

  it("reports each bad field in words", () => {
    const errors = rawErrors(HTTP, { url: "", method: "PUT", timeout_seconds: 0, headers: { a: "1", b: "2", c: "3" } });
    const byField = Object.fromEntries(errors.map((e) => [e.property, e.message]));
    expect(byField[".url"]).toBe("must not be empty");
    expect(byField[".method"]).toBe("must be one of the listed values");
    expect(byField[".timeout_seconds"]).toBe("must be greater than 0");
    expect(byField[".headers"]).toBe("allows at most 2 entries");
  });

  it("builds rjsf's error schema and honours custom validation", () => {
    const result = validator.validateFormData({ url: "x".repeat(21) }, HTTP, (data, errors) => {
      if ((data as { url: string }).url.startsWith("x")) errors.url?.addError("must not start with x");
      return errors;
    });
    expect((result.errorSchema as Record<string, { __errors?: string[] }>).url?.__errors).toEqual(["must be at most 20 characters", "must not start with x"]);
  });

  it("tells rjsf which anyOf option matches", () => {
    const root = HTTP;
    expect(validator.isValid({ type: "null" }, null, root)).toBe(true);
    expect(validator.isValid({ type: "null" }, "0 9 * * *", root)).toBe(false);
  });

  it("turns the API's problems into field errors", () => {
    const errors = problemsAsErrors([
      { code: "invalid_config", message: "Field required", node_id: "n", field: "config.url" },
      { code: "unreachable", message: "not connected", node_id: "n", field: null },
    ]);
    expect(errors).toEqual({ url: { __errors: ["Field required"] } });
  });
});

describe("template autocomplete", () => {
  it("finds the open {{ before the caret", () => {
    expect(openTemplate("Hi {{ trig", 10)).toEqual({ start: 3, typed: "trig" });
    expect(openTemplate("Hi {{ a }} there", 16)).toBeNull();
    expect(openTemplate("no template", 5)).toBeNull();
  });

  it("inserts the picked variable, closing the braces once", () => {
    expect(insertVariable("Hi {{ tr", 8, "trigger.username")).toEqual({ text: "Hi {{ trigger.username }}", caret: 25 });
    expect(insertVariable("Hi {{ tr }}!", 8, "trigger.name").text).toBe("Hi {{ trigger.name }}!");
  });
});

describe("credential forms", () => {
  it("sends required fields and only the optional ones given", () => {
    expect(secretBody("openai", { api_key: "sk" })).toEqual({ api_key: "sk" });
    expect(secretBody("openai", { api_key: "sk", base_url: "http://x" })).toEqual({ api_key: "sk", base_url: "http://x" });
  });
});
