// Short number labels for axes, colour bars and stats (exact values use wire.formatExact).

export function shortNumber(v: number | null | undefined): string {
  if (v === null || v === undefined) return "—";
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace("e+", "e");
  return String(Number.parseFloat(v.toPrecision(4)));
}

export function count(n: number): string {
  return n.toLocaleString("en-US");
}
