import { lazy, Suspense } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { ApiError } from "./api/client";
import { Shell } from "./components/Shell";
import { SignIn } from "./pages/SignIn";
import { Welcome } from "./pages/Welcome";
import { useMe } from "./state";

// pages load on first visit: the sign-in and flows list do not carry React Flow and the forms
const FlowsList = lazy(() => import("./pages/FlowsList").then((m) => ({ default: m.FlowsList })));
const Builder = lazy(() => import("./builder/Builder").then((m) => ({ default: m.Builder })));
const RunsList = lazy(() => import("./pages/RunsList").then((m) => ({ default: m.RunsList })));
const RunDetail = lazy(() => import("./pages/RunDetail").then((m) => ({ default: m.RunDetail })));
const Credentials = lazy(() => import("./pages/Credentials").then((m) => ({ default: m.Credentials })));
const Members = lazy(() => import("./pages/Members").then((m) => ({ default: m.Members })));
const KnowledgeBases = lazy(() => import("./pages/Knowledge").then((m) => ({ default: m.KnowledgeBases })));
const KnowledgeBasePage = lazy(() => import("./pages/Knowledge").then((m) => ({ default: m.KnowledgeBasePage })));
const Events = lazy(() => import("./pages/Events").then((m) => ({ default: m.Events })));
const EventDetail = lazy(() => import("./pages/EventDetail").then((m) => ({ default: m.EventDetail })));
const Replay = lazy(() => import("./pages/Replay").then((m) => ({ default: m.Replay })));
const Contacts = lazy(() => import("./contacts/Contacts").then((m) => ({ default: m.Contacts })));
const Broadcasts = lazy(() => import("./broadcasts/Broadcasts").then((m) => ({ default: m.Broadcasts })));
const ContactProfile = lazy(() => import("./contacts/ContactProfile").then((m) => ({ default: m.ContactProfile })));
const Calendar = lazy(() => import("./pages/Calendar").then((m) => ({ default: m.Calendar })));
const Instagram = lazy(() => import("./pages/Instagram").then((m) => ({ default: m.Instagram })));
const Conversations = lazy(() => import("./pages/Conversations").then((m) => ({ default: m.Conversations })));
const InstagramConnected = lazy(() =>
  import("./pages/InstagramConnected").then((m) => ({ default: m.InstagramConnected })),
);
const InstagramConnectRefused = lazy(() =>
  import("./pages/InstagramConnected").then((m) => ({ default: m.InstagramConnectRefused })),
);

const LOADING = <p className="center muted">Loading…</p>;

function RequireUser({ children }: { children: JSX.Element }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return LOADING;
  if (me.error instanceof ApiError && me.error.status === 401) {
    return <Navigate to="/signin" replace state={{ from: location.pathname }} />;
  }
  if (me.error) return <p className="center error">{me.error.message}</p>;
  return children;
}

export function App() {
  return (
    <Suspense fallback={LOADING}>
      <Routes>
        <Route path="/signin" element={<SignIn mode="signin" />} />
        <Route path="/register" element={<SignIn mode="register" />} />
        <Route path="/forgot" element={<SignIn mode="forgot" />} />
        <Route path="/" element={<RequireUser><Welcome /></RequireUser>} />
        <Route path="/instagram/connected" element={<InstagramConnectRefused />} />
        <Route path="/w/:ws" element={<RequireUser><Shell /></RequireUser>}>
          <Route index element={<Navigate to="flows" replace />} />
          <Route path="flows" element={<FlowsList />} />
          <Route path="flows/:flowId" element={<Builder />} />
          <Route path="flows/:flowId/replays/:replayId" element={<Replay />} />
          <Route path="events" element={<Events />} />
          <Route path="events/:eventId" element={<EventDetail />} />
          <Route path="runs" element={<RunsList />} />
          <Route path="runs/:executionId" element={<RunDetail />} />
          <Route path="credentials" element={<Credentials />} />
          <Route path="members" element={<Members />} />
          <Route path="knowledge" element={<KnowledgeBases />} />
          <Route path="knowledge/:kbId" element={<KnowledgeBasePage />} />
          <Route path="instagram" element={<Instagram />} />
          <Route path="contacts" element={<Contacts />} />
          <Route path="contacts/:contactId" element={<ContactProfile />} />
          <Route path="conversations" element={<Conversations />} />
          <Route path="broadcasts" element={<Broadcasts />} />
          <Route path="calendar" element={<Calendar />} />
          <Route path="instagram/connected" element={<InstagramConnected />} />
        </Route>
        <Route path="*" element={<p className="center">Page not found. <a href="/">Home</a></p>} />
      </Routes>
    </Suspense>
  );
}
