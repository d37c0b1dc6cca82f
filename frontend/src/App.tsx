import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { ApiError } from "./api/client";
import { Shell } from "./components/Shell";
import { SignIn } from "./pages/SignIn";
import { Welcome } from "./pages/Welcome";
import { FlowsList } from "./pages/FlowsList";
import { Builder } from "./builder/Builder";
import { RunsList } from "./pages/RunsList";
import { RunDetail } from "./pages/RunDetail";
import { Credentials } from "./pages/Credentials";
import { Members } from "./pages/Members";
import { ComingSoon } from "./pages/ComingSoon";
import { Instagram } from "./pages/Instagram";
import { useMe } from "./state";

function RequireUser({ children }: { children: JSX.Element }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <p className="center muted">Loading…</p>;
  if (me.error instanceof ApiError && me.error.status === 401) {
    return <Navigate to="/signin" replace state={{ from: location.pathname }} />;
  }
  if (me.error) return <p className="center error">{me.error.message}</p>;
  return children;
}

export function App() {
  return (
    <Routes>
      <Route path="/signin" element={<SignIn mode="signin" />} />
      <Route path="/register" element={<SignIn mode="register" />} />
      <Route path="/forgot" element={<SignIn mode="forgot" />} />
      <Route path="/" element={<RequireUser><Welcome /></RequireUser>} />
      <Route path="/w/:ws" element={<RequireUser><Shell /></RequireUser>}>
        <Route index element={<Navigate to="flows" replace />} />
        <Route path="flows" element={<FlowsList />} />
        <Route path="flows/:flowId" element={<Builder />} />
        <Route path="runs" element={<RunsList />} />
        <Route path="runs/:executionId" element={<RunDetail />} />
        <Route path="credentials" element={<Credentials />} />
        <Route path="members" element={<Members />} />
        <Route path="knowledge" element={<ComingSoon what="Knowledge bases" />} />
        <Route path="instagram" element={<Instagram />} />
      </Route>
      <Route path="*" element={<p className="center">Page not found. <a href="/">Home</a></p>} />
    </Routes>
  );
}
