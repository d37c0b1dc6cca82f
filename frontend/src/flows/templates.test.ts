import { describe, expect, it } from "vitest";
import { TEMPLATES, missingKinds } from "./templates";

describe("the growth template", () => {
  const growth = TEMPLATES.find((t) => t.id === "comment-growth");

  it("declares the field its ask node saves to, so the gallery creates it", () => {
    expect(growth).toBeDefined();
    const saves = (growth?.graph.nodes ?? [])
      .map((n) => (n.config as Record<string, unknown> | undefined)?.save_to_field)
      .filter(Boolean);
    expect(saves).toEqual(["email"]);
    expect(growth?.fields).toEqual([{ key: "email", label: "Email", type: "email" }]);
  });

  it("is offered only when the server has every kind it uses", () => {
    const kinds = new Set((growth?.graph.nodes ?? []).map((n) => n.kind));
    expect(missingKinds(growth!, kinds)).toEqual([]);
    kinds.delete("data.rotate");
    expect(missingKinds(growth!, kinds)).toEqual(["data.rotate"]);
  });

  it("wires every edge between nodes of the graph", () => {
    const ids = new Set((growth?.graph.nodes ?? []).map((n) => n.id));
    for (const edge of growth?.graph.edges ?? []) {
      expect(ids.has(edge.source) && ids.has(edge.target)).toBe(true);
    }
  });
});
