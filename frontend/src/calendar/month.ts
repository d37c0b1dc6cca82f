// The calendar's arithmetic: the weeks of a month (Monday first), posts by day, and where a
// post dropped on another day is scheduled (the same time of day, local time).

export interface CalendarPost {
  id: string;
  status: string;
  scheduled_at?: string | null;
  waiting_reason?: string | null;
  error?: string | null;
  problems?: { message: string }[];
}

/** The local date of `date` as YYYY-MM-DD. */
export function dayKey(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The weeks shown for a month: whole weeks, Monday to Sunday, covering every day of it. */
export function monthGrid(year: number, month: number): Date[][] {
  const first = new Date(year, month, 1);
  const offset = (first.getDay() + 6) % 7; // days since Monday
  const start = new Date(year, month, 1 - offset);
  const weeks: Date[][] = [];
  for (let cursor = start; ; ) {
    const week: Date[] = [];
    for (let d = 0; d < 7; d++) {
      week.push(new Date(cursor.getFullYear(), cursor.getMonth(), cursor.getDate() + d));
    }
    weeks.push(week);
    cursor = new Date(cursor.getFullYear(), cursor.getMonth(), cursor.getDate() + 7);
    if (cursor.getMonth() !== month && cursor > first) break;
  }
  return weeks;
}

/** The range the API is asked for: from the grid's first day to the day after its last. */
export function gridRange(weeks: Date[][]): { start: string; end: string } {
  const first = weeks[0][0];
  const last = weeks[weeks.length - 1][6];
  const end = new Date(last.getFullYear(), last.getMonth(), last.getDate() + 1);
  return { start: first.toISOString(), end: end.toISOString() };
}

/** Posts by the local day they are scheduled on; posts without a time are left out. */
export function byDay<T extends CalendarPost>(posts: T[]): Map<string, T[]> {
  const days = new Map<string, T[]>();
  for (const post of posts) {
    if (!post.scheduled_at) continue;
    const key = dayKey(new Date(post.scheduled_at));
    days.set(key, [...(days.get(key) ?? []), post]);
  }
  for (const list of days.values()) {
    list.sort((a, b) => String(a.scheduled_at).localeCompare(String(b.scheduled_at)));
  }
  return days;
}

/** When a post dropped on `day` is scheduled: its own time of day, or 09:00 for a draft. */
export function movedTo(post: CalendarPost, day: Date): string {
  const time = post.scheduled_at ? new Date(post.scheduled_at) : undefined;
  const when = new Date(
    day.getFullYear(),
    day.getMonth(),
    day.getDate(),
    time ? time.getHours() : 9,
    time ? time.getMinutes() : 0,
  );
  return when.toISOString();
}

/** Whether a post may still be moved: drafts, scheduled and failed posts. */
export function movable(post: CalendarPost): boolean {
  return post.status === "draft" || post.status === "scheduled" || post.status === "failed";
}

/** What the calendar says under a post: why it failed, why it waits, what to fix. */
export function postNote(post: CalendarPost): string | undefined {
  if (post.status === "failed" && post.error) return post.error;
  if (post.status === "scheduled" && post.waiting_reason) return post.waiting_reason;
  if (post.problems && post.problems.length) return post.problems.map((p) => p.message).join("; ");
  return undefined;
}
