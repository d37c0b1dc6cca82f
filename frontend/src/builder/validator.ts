// An rjsf validator over @cfworker/json-schema. The app's CSP (script-src 'self', no
// 'unsafe-eval') forbids validators that compile schemas to code with `new Function`, as AJV does;
// this one interprets the schema instead, so forms validate as you type under the CSP.
import { Validator, type Schema } from "@cfworker/json-schema";
import {
  createErrorHandler,
  toErrorList,
  toErrorSchema,
  unwrapErrorHandler,
  validationDataMerge,
  type CustomValidator,
  type ErrorSchema,
  type ErrorTransformer,
  type RJSFSchema,
  type RJSFValidationError,
  type UiSchema,
  type ValidationData,
  type ValidatorType,
} from "@rjsf/utils";

// wrappers that only say "a part below failed": their leaf errors are reported instead
const WRAPPERS = new Set(["properties", "items", "allOf", "$ref", "additionalProperties", "prefixItems"]);

/** Rewrites the validator's wording ("Instance ...") for people. */
function words(keyword: string, error: string): string {
  const quoted = /"([^"]*)"/.exec(error)?.[1];
  const numbers = error.match(/-?\d+(\.\d+)?/g) ?? [];
  switch (keyword) {
    case "required":
      return "is required";
    case "type":
      return `must be ${quoted === "null" ? "empty" : `a ${quoted ?? "value"}`}`.replace(/"/g, "");
    case "minLength":
      return numbers[1] === "1" ? "must not be empty" : `must be at least ${numbers[1]} characters`;
    case "maxLength":
      return `must be at most ${numbers[1]} characters`;
    case "minimum":
      return `must be ${numbers[1]} or more`;
    case "maximum":
      return `must be ${numbers[1]} or less`;
    case "exclusiveMinimum":
      return `must be greater than ${numbers[1]}`;
    case "exclusiveMaximum":
      return `must be less than ${numbers[1]}`;
    case "enum":
      return "must be one of the listed values";
    case "pattern":
      return `must match ${quoted ?? "the pattern"}`;
    case "minItems":
      return `needs at least ${numbers[1] ?? numbers[0]} item(s)`;
    case "maxItems":
      return `allows at most ${numbers[1] ?? numbers[0]} item(s)`;
    case "minProperties":
      return `needs at least ${numbers[0]} entr${numbers[0] === "1" ? "y" : "ies"}`;
    case "maxProperties":
      return `allows at most ${numbers[0]} entries`;
    case "anyOf":
    case "oneOf":
      return "does not match any allowed form";
    default:
      return error.replace(/^Instance /, "value ");
  }
}

function toProperty(location: string): string {
  // "#/headers/X-Y" -> ".headers.X-Y"
  const parts = location.replace(/^#\/?/, "").split("/").filter(Boolean);
  return parts.map((p) => `.${decodeURIComponent(p.replace(/~1/g, "/").replace(/~0/g, "~"))}`).join("");
}

/** Validation errors of `data` against `schema`, in rjsf's shape, most specific first. */
export function rawErrors(schema: RJSFSchema, data: unknown): RJSFValidationError[] {
  const result = new Validator(schema as Schema, "2020-12", false).validate(data ?? {});
  const errors: RJSFValidationError[] = [];
  for (const e of result.errors) {
    if (WRAPPERS.has(e.keyword)) continue;
    let property = toProperty(e.instanceLocation);
    if (e.keyword === "required") {
      const key = /"([^"]*)"/.exec(e.error)?.[1];
      if (key) property = `${property}.${key}`;
    }
    const message = words(e.keyword, e.error);
    errors.push({
      name: e.keyword,
      property,
      message,
      stack: `${property ? `${property.slice(1)} ` : ""}${message}`,
      schemaPath: e.keywordLocation,
      params: {},
    });
  }
  return errors;
}

class InterpretingValidator implements ValidatorType {
  validateFormData(
    formData: unknown,
    schema: RJSFSchema,
    customValidate?: CustomValidator,
    transformErrors?: ErrorTransformer,
    uiSchema?: UiSchema,
  ): ValidationData<unknown> {
    let errors = rawErrors(schema, formData);
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    let data: ValidationData<unknown> = { errors, errorSchema: toErrorSchema(errors) as ErrorSchema };
    if (customValidate) {
      const handler = customValidate(formData, createErrorHandler(formData), uiSchema);
      data = validationDataMerge(data, unwrapErrorHandler(handler));
    }
    return data;
  }

  toErrorList(errorSchema?: ErrorSchema, fieldPath: string[] = []): RJSFValidationError[] {
    return toErrorList(errorSchema, fieldPath);
  }

  isValid(schema: RJSFSchema, formData: unknown, rootSchema: RJSFSchema): boolean {
    const withDefs = { ...schema, $defs: { ...(rootSchema.$defs ?? {}), ...(schema.$defs ?? {}) } };
    return new Validator(withDefs as Schema, "2020-12", true).validate(formData).valid;
  }

  rawValidation<Result = unknown>(schema: RJSFSchema, formData?: unknown) {
    return { errors: rawErrors(schema, formData) as Result[] };
  }
}

/** The form validator used by every node config form. */
export const validator = new InterpretingValidator();
