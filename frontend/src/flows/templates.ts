// Starter flows as graph JSON. A template whose node kinds this server does not offer yet is
// shown disabled with what it needs (computed from /node-types).
import type { GraphSpec } from "../api/client";
// The growth template is JSON so the server's tests run exactly the graph the gallery offers.
import growthGraph from "./growth.json";

/** A contact field a template saves to; created in the workspace with the flow when missing. */
export interface TemplateField {
  key: string;
  label: string;
  type: "text" | "number" | "date" | "boolean" | "email" | "phone" | "url" | "choice";
}

export interface Template {
  id: string;
  name: string;
  description: string;
  graph: GraphSpec;
  fields?: TemplateField[];
}

const at = (x: number, y: number) => ({ x, y });

export const TEMPLATES: Template[] = [
  {
    id: "comment-growth",
    name: "Comment → DM growth: email capture",
    description:
      "A keyword comment gets one of several public replies and a private reply with a button; a tap asks for the email (re-asked until valid), saves it to the contact's email field, tags them lead and notifies your URL. Fill in the keyword and the notify URL.",
    graph: growthGraph as GraphSpec,
    fields: [{ key: "email", label: "Email", type: "email" }],
  },
  {
    id: "comment-auto-reply",
    name: "Comment auto-reply",
    description: "Reply publicly to Instagram comments that contain a keyword.",
    graph: {
      nodes: [
        { id: "comment", kind: "instagram.comment", label: "New comment", config: { keywords: ["price"] }, position: at(60, 120) },
        { id: "reply", kind: "instagram.reply_comment", label: "Reply", config: { message: "Thanks @{{ trigger.from_username }}! Check your DMs." }, position: at(340, 120) },
      ],
      edges: [{ source: "comment", source_port: "event", target: "reply", target_port: "in" }],
    },
  },
  {
    id: "comment-to-dm",
    name: "Comment → private DM with a link",
    description: "Answer a keyword comment with a private message carrying a link.",
    graph: {
      nodes: [
        { id: "comment", kind: "instagram.comment", label: "Keyword comment", config: { keywords: ["link"] }, position: at(60, 120) },
        { id: "dm", kind: "instagram.private_reply", label: "Send the link", config: { text: "Here you go: https://example.com" }, position: at(340, 120) },
      ],
      edges: [{ source: "comment", source_port: "event", target: "dm", target_port: "in" }],
    },
  },
  {
    id: "dm-faq",
    name: "DM FAQ from a knowledge base",
    description: "Answer direct messages with facts retrieved from your knowledge base.",
    graph: {
      nodes: [
        { id: "dm", kind: "instagram.dm", label: "New DM", config: {}, position: at(60, 120) },
        { id: "answer", kind: "ai.knowledge_answer", label: "Answer from knowledge", config: { knowledge_base_id: "" }, position: at(340, 120) },
        { id: "send", kind: "instagram.send_dm", label: "Reply", config: { text: "{{ nodes.answer.answer }}" }, position: at(620, 120) },
      ],
      edges: [
        { source: "dm", source_port: "event", target: "answer", target_port: "in" },
        { source: "answer", source_port: "answer", target: "send", target_port: "in" },
      ],
    },
  },
  {
    id: "intent-triage",
    name: "Intent triage with an LLM",
    description: "Classify incoming messages by intent and route each to its own branch.",
    graph: {
      nodes: [
        { id: "dm", kind: "instagram.dm", label: "New DM", config: {}, position: at(60, 160) },
        { id: "classify", kind: "ai.intent_classifier", label: "Intent", config: { text: "{{ trigger.text }}", labels: ["question", "complaint", "other"] }, position: at(340, 160) },
      ],
      edges: [{ source: "dm", source_port: "event", target: "classify", target_port: "in" }],
    },
  },
  {
    id: "daily-summary",
    name: "Daily summary to a webhook",
    description: "Every morning, compose a summary and POST it to a webhook URL.",
    graph: {
      nodes: [
        { id: "daily", kind: "trigger.schedule", label: "Every day at 9:00", config: { cron: "0 9 * * *", timezone: "UTC" }, position: at(60, 120) },
        { id: "summary", kind: "data.set", label: "Summary", config: { values: { text: "Good morning! Here is your daily Socialflow summary." } }, position: at(340, 120) },
        { id: "post", kind: "http.request", label: "Post to webhook", config: { method: "POST", url: "https://example.com/webhook", body_type: "json", body: "{{ nodes.summary.out }}" }, position: at(620, 120) },
      ],
      edges: [
        { source: "daily", source_port: "event", target: "summary", target_port: "in" },
        { source: "summary", source_port: "out", target: "post", target_port: "in" },
      ],
    },
  },
];

/** Node kinds a template uses that the server does not offer. */
export function missingKinds(template: Template, available: Set<string>): string[] {
  return [...new Set((template.graph.nodes ?? []).map((n) => n.kind))].filter((k) => !available.has(k));
}
