import { useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, describeError, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";

type Mode = "signin" | "register" | "forgot";

async function login(email: string, password: string): Promise<void> {
  const response = await fetch("/api/auth/login", {
    method: "POST",
    credentials: "same-origin",
    body: new URLSearchParams({ username: email, password }),
  });
  if (!response.ok) throw describeError(response.status, await response.json().catch(() => null));
}

function OAuthButtons() {
  const providers = useQuery({
    queryKey: ["oauth-providers"],
    queryFn: async () => ok(await api.GET("/api/auth/oauth/providers")),
  });
  const start = useMutation({
    mutationFn: async (provider: string) =>
      ok(await api.GET("/api/auth/oauth/{provider}/authorize", { params: { path: { provider } } })),
    onSuccess: (answer) => window.location.assign(answer.authorization_url),
  });
  if (!providers.data?.length) return null;
  return (
    <div className="oauth">
      <p className="muted">or continue with</p>
      {providers.data.map((p) => (
        <button key={p.name} type="button" onClick={() => start.mutate(p.name)}>
          {p.title}
        </button>
      ))}
      <ErrorNote error={start.error} />
    </div>
  );
}

export function SignIn({ mode }: { mode: Mode }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [sent, setSent] = useState(false);
  const navigate = useNavigate();
  const from = (useLocation().state as { from?: string } | null)?.from ?? "/";
  const queries = useQueryClient();
  const submit = useMutation({
    mutationFn: async () => {
      if (mode === "forgot") {
        ok(await api.POST("/api/auth/forgot-password", { body: { email } }));
        return;
      }
      if (mode === "register") {
        ok(await api.POST("/api/auth/register", { body: { email, password } }));
      }
      await login(email, password);
    },
    onSuccess: async () => {
      if (mode === "forgot") {
        setSent(true);
        return;
      }
      await queries.resetQueries();
      navigate(from, { replace: true });
    },
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    submit.mutate();
  };
  const title = { signin: "Sign in", register: "Create your account", forgot: "Reset your password" }[mode];
  return (
    <main className="auth">
      <section className="card narrow">
        <p className="brand">Socialflow</p>
        <h1>{title}</h1>
        {sent ? (
          <p role="status">If an account exists for {email}, a reset link is on its way.</p>
        ) : (
          <form onSubmit={onSubmit} className="stack">
            <label>
              Email
              <input
                type="email"
                autoComplete="email"
                value={email}
                onChange={(e) => setEmail(e.target.value)}
                required
              />
            </label>
            {mode !== "forgot" && (
              <label>
                Password
                <input
                  type="password"
                  autoComplete={mode === "register" ? "new-password" : "current-password"}
                  value={password}
                  minLength={mode === "register" ? 10 : undefined}
                  onChange={(e) => setPassword(e.target.value)}
                  required
                />
              </label>
            )}
            <button type="submit" className="primary" disabled={submit.isPending}>
              {mode === "forgot" ? "Send reset link" : title}
            </button>
            <ErrorNote error={submit.error} />
          </form>
        )}
        {mode !== "forgot" && <OAuthButtons />}
        <p className="links">
          {mode !== "signin" && <Link to="/signin">Sign in</Link>}
          {mode !== "register" && <Link to="/register">Create an account</Link>}
          {mode !== "forgot" && <Link to="/forgot">Forgot password?</Link>}
        </p>
      </section>
    </main>
  );
}
