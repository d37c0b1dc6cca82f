import { createContext, useContext, useMemo } from "react";
import Form, { getDefaultRegistry } from "@rjsf/core";
import type { DescriptionFieldProps, ErrorSchema, RJSFSchema, UiSchema, WidgetProps } from "@rjsf/utils";
import { useQuery } from "@tanstack/react-query";
import { api, ok, type GraphProblem, type NodeDescription } from "../api/client";
import { Markup } from "../components/Markup";
import type { EditorNode } from "./graph";
import { TemplateInput } from "./TemplateInput";
import { validator } from "./validator";

const Defaults = getDefaultRegistry().widgets;

interface FormInfo {
  variables: string[];
  credentials: { name: string; kind: string }[];
  credentialKinds: string[];
}

const FormInfoContext = createContext<FormInfo>({ variables: [], credentials: [], credentialKinds: [] });

/** Text fields suggest template variables after `{{`; other types keep rjsf's widget. */
function TextWidget(props: WidgetProps) {
  const { variables } = useContext(FormInfoContext);
  if (props.schema.type !== "string" || props.schema.format) return <Defaults.TextWidget {...props} />;
  return (
    <TemplateInput
      id={props.id}
      value={typeof props.value === "string" ? props.value : ""}
      variables={variables}
      disabled={props.disabled || props.readonly}
      required={props.required}
      onChange={(v) => props.onChange(v === "" ? props.options.emptyValue : v)}
      onBlur={() => props.onBlur(props.id, props.value)}
      aria-describedby={`${props.id}__description`}
    />
  );
}

/** A field's description with its ``code`` spans rendered. */
function DescriptionFieldTemplate({ id, description }: DescriptionFieldProps) {
  if (!description) return null;
  if (typeof description !== "string") return <div id={id} className="field-description">{description}</div>;
  return (
    <p id={id} className="field-description">
      <Markup text={description} />
    </p>
  );
}

/** Picks one of the workspace's credentials of the kinds the node declares. */
function CredentialWidget(props: WidgetProps) {
  const { credentials, credentialKinds } = useContext(FormInfoContext);
  const usable = credentials.filter((c) => credentialKinds.includes(c.kind));
  return (
    <select
      id={props.id}
      className="form-control"
      value={typeof props.value === "string" ? props.value : ""}
      disabled={props.disabled || props.readonly}
      onChange={(e) => props.onChange(e.target.value || undefined)}
    >
      <option value="">{usable.length ? "Any of the workspace's" : `No ${credentialKinds.join("/")} credential yet`}</option>
      {usable.map((c) => (
        <option key={c.name} value={c.name}>
          {c.name} ({c.kind})
        </option>
      ))}
    </select>
  );
}

/** The uiSchema of a kind: credential fields (`credential`, `*_credential`) get the picker. */
export function uiSchemaFor(kind: NodeDescription): UiSchema {
  const ui: UiSchema = { "ui:submitButtonOptions": { norender: true } };
  const props = (kind.config_schema as RJSFSchema).properties ?? {};
  for (const name of Object.keys(props)) {
    if (kind.credentials.length && (name === "credential" || name.endsWith("_credential"))) {
      ui[name] = { "ui:widget": "CredentialWidget" };
    }
  }
  return ui;
}

/** The API's problems of one node as rjsf extra errors, by field. */
export function problemsAsErrors(problems: GraphProblem[]): ErrorSchema {
  const errors: Record<string, { __errors: string[] }> = {};
  for (const p of problems) {
    const field = (p.field ?? "").replace(/^config\./, "").split(".")[0] || "__root";
    if (field === "__root") continue;
    (errors[field] ??= { __errors: [] }).__errors.push(p.message);
  }
  return errors as ErrorSchema;
}

interface Props {
  workspaceId: string;
  node: EditorNode;
  kind?: NodeDescription;
  variables: string[];
  problems: GraphProblem[];
  readOnly: boolean;
  onLabel: (label: string) => void;
  onConfig: (config: Record<string, unknown>) => void;
  onDelete: () => void;
}

/** The side panel of the selected node: label, help, and the config form of its kind. */
export function ConfigPanel({ workspaceId, node, kind, variables, problems, readOnly, onLabel, onConfig, onDelete }: Props) {
  const credentials = useQuery({
    queryKey: ["credentials", workspaceId],
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/credentials", { params: { path: { workspace_id: workspaceId } } })),
    enabled: Boolean(kind?.credentials.length),
  });
  const info = useMemo<FormInfo>(
    () => ({
      variables,
      credentials: (credentials.data ?? []).map((c) => ({ name: c.name, kind: c.kind })),
      credentialKinds: kind?.credentials ?? [],
    }),
    [variables, credentials.data, kind],
  );
  const ui = useMemo(() => (kind ? uiSchemaFor(kind) : {}), [kind]);
  const nodeProblems = problems.filter((p) => p.node_id === node.id);
  const general = nodeProblems.filter((p) => !p.field || !p.field.startsWith("config"));
  return (
    <aside className="panel" aria-label="Node settings">
      <h2>{kind?.title ?? node.data.kind}</h2>
      {kind?.description && (
        <p className="muted small kind-description">
          <Markup text={kind.description} />
        </p>
      )}
      {general.map((p) => (
        <p key={p.code + p.message} className="error" role="alert">
          {p.message}
        </p>
      ))}
      <label>
        Label
        <input
          value={node.data.label}
          maxLength={100}
          disabled={readOnly}
          onChange={(e) => onLabel(e.target.value)}
          placeholder={kind?.title}
        />
      </label>
      <p className="muted small">
        Id <code>{node.id}</code> — use <code>{`{{ nodes.${node.id}.<port> }}`}</code> downstream.
      </p>
      {kind ? (
        <FormInfoContext.Provider value={info}>
          <Form
            key={node.id}
            schema={kind.config_schema as RJSFSchema}
            uiSchema={ui}
            formData={node.data.config}
            validator={validator}
            widgets={{ TextWidget, CredentialWidget }}
            templates={{ DescriptionFieldTemplate }}
            extraErrors={problemsAsErrors(nodeProblems)}
            liveValidate
            showErrorList={false}
            disabled={readOnly}
            onChange={(e) => onConfig((e.formData ?? {}) as Record<string, unknown>)}
          />
        </FormInfoContext.Provider>
      ) : (
        <p className="error">This server has no node kind “{node.data.kind}”.</p>
      )}
      {!readOnly && (
        <button type="button" className="danger" onClick={onDelete}>
          Delete node
        </button>
      )}
    </aside>
  );
}
