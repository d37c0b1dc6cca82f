import { useId, useMemo, useRef, useState, type KeyboardEvent } from "react";

/** The partial `{{ name` being typed before the caret, if any. */
export function openTemplate(text: string, caret: number): { start: number; typed: string } | null {
  const before = text.slice(0, caret);
  const open = before.lastIndexOf("{{");
  if (open < 0 || before.indexOf("}}", open) >= 0) return null;
  const typed = before.slice(open + 2).trimStart();
  if (!/^[A-Za-z0-9_.]*$/.test(typed)) return null;
  return { start: open, typed };
}

/** Replaces the open `{{ partial` before the caret with `{{ variable }}`. */
export function insertVariable(text: string, caret: number, variable: string): { text: string; caret: number } {
  const open = openTemplate(text, caret);
  if (!open) return { text, caret };
  const insert = `{{ ${variable} }}`;
  const after = text.slice(caret).replace(/^\s*}}/, "");
  return { text: text.slice(0, open.start) + insert + after, caret: open.start + insert.length };
}

interface Props {
  id: string;
  value: string;
  variables: string[];
  disabled?: boolean;
  required?: boolean;
  onChange: (value: string) => void;
  onBlur?: () => void;
  "aria-describedby"?: string;
}

/** A text input that suggests `{{ trigger.* }}` and upstream outputs after `{{`. */
export function TemplateInput({ id, value, variables, disabled, required, onChange, onBlur, ...aria }: Props) {
  const [caret, setCaret] = useState<number | null>(null);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const listId = useId();
  const open = caret === null ? null : openTemplate(value, caret);
  const matches = useMemo(
    () => (open ? variables.filter((v) => v.startsWith(open.typed)).slice(0, 12) : []),
    [open, variables],
  );
  const pick = (variable: string) => {
    const next = insertVariable(value, caret ?? value.length, variable);
    onChange(next.text);
    setCaret(null);
    requestAnimationFrame(() => input.current?.setSelectionRange(next.caret, next.caret));
  };
  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (!matches.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActive((a) => (a + step + matches.length) % matches.length);
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      pick(matches[Math.min(active, matches.length - 1)]);
    } else if (e.key === "Escape") {
      setCaret(null);
    }
  };
  const track = () => setCaret(input.current?.selectionStart ?? null);
  return (
    <div className="template-input">
      <input
        ref={input}
        id={id}
        className="form-control"
        value={value}
        disabled={disabled}
        required={required}
        role="combobox"
        aria-expanded={matches.length > 0}
        aria-controls={listId}
        aria-autocomplete="list"
        onChange={(e) => {
          onChange(e.target.value);
          setCaret(e.target.selectionStart);
          setActive(0);
        }}
        onKeyDown={onKeyDown}
        onClick={track}
        onKeyUp={(e) => {
          if (e.key.startsWith("Arrow") && !matches.length) track();
        }}
        onBlur={() => {
          setTimeout(() => setCaret(null), 150);
          onBlur?.();
        }}
        {...aria}
      />
      {matches.length > 0 && (
        <ul id={listId} role="listbox" className="suggestions">
          {matches.map((v, i) => (
            <li
              key={v}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(v);
              }}
            >
              {`{{ ${v} }}`}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
