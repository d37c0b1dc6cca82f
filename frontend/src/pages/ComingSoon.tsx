export function ComingSoon({ what }: { what: string }) {
  return (
    <section className="page">
      <h1>{what}</h1>
      <p className="empty">{what} will be managed here once this server offers them.</p>
    </section>
  );
}
