// The live run stream: a WebSocket to /ws/workspaces/{id}/executions that reconnects.
import { useEffect, useRef, useState } from "react";

export interface StreamNode {
  type: "node";
  execution_id: string;
  node_id: string;
  status: string;
  error: string | null;
  duration_ms: number | null;
}

export interface StreamExecution {
  type: "execution";
  execution_id: string;
  flow_id: string | null;
  status: string;
}

export interface StreamSnapshot {
  type: "snapshot";
  executions: { id: string; status: string; node_runs?: { node_id: string; status: string }[] }[];
}

export type StreamMessage = StreamNode | StreamExecution | StreamSnapshot;

/** Follows a workspace's runs (or one run); `onMessage` gets every message. Returns whether the
 * stream is connected. */
export function useRunStream(
  workspaceId: string,
  onMessage: (message: StreamMessage) => void,
  executionId?: string,
  enabled = true,
): boolean {
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!enabled || !workspaceId) return undefined;
    let socket: WebSocket | undefined;
    let closed = false;
    let delay = 500;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = () => {
      const scheme = window.location.protocol === "https:" ? "wss" : "ws";
      const query = executionId ? `?execution_id=${encodeURIComponent(executionId)}` : "";
      socket = new WebSocket(`${scheme}://${window.location.host}/ws/workspaces/${workspaceId}/executions${query}`);
      socket.onopen = () => {
        delay = 500;
        setConnected(true);
      };
      socket.onmessage = (event) => {
        try {
          handler.current(JSON.parse(String(event.data)) as StreamMessage);
        } catch {
          /* not JSON: ignored */
        }
      };
      socket.onclose = (event) => {
        setConnected(false);
        // 4401/4403: not signed in or not a member; reconnecting would not help
        if (closed || event.code === 4401 || event.code === 4403) return;
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 10_000);
      };
    };
    open();
    return () => {
      closed = true;
      if (timer) clearTimeout(timer);
      socket?.close();
    };
  }, [workspaceId, executionId, enabled]);
  return connected;
}
