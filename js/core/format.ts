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

// One formatter for every call: n.toLocaleString("en-US") makes a new one each time (~35 us:
// 120 ms for the count columns of a 3,500-row weights table), this formats in well under 1 us.
const EN_US = new Intl.NumberFormat("en-US");

export function count(n: number): string {
  return EN_US.format(n);
}

/**
 * One number format for every cell of a view, so neighbouring cells line up and read alike:
 * four significant digits of the largest magnitude in [lo, hi] as a fixed number of decimals
 * (0.125 → "0.1250", so -0.0350 beside 0.1102), exponents where fixed decimals would be too long
 * or say nothing, and significant digits when the values span decades (a log colour scale).
 * The exact value stays on hover.
 */
export function cellFormat(
  lo: number | null | undefined,
  hi: number | null | undefined,
  opts: { log?: boolean; digits?: number } = {},
): (v: number) => string {
  const digits = opts.digits ?? 4;
  const special = (v: number): string | null => {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    return null;
  };
  const m = Math.max(Math.abs(lo ?? 0), Math.abs(hi ?? 0));
  if (!(m > 0) || !Number.isFinite(m) || m >= 1e6 || m < 1e-4 || opts.log) {
    return (v) =>
      special(v) ??
      (v === 0
        ? "0"
        : Math.abs(v) >= 1e6 || Math.abs(v) < 1e-4
          ? v.toExponential(digits - 1).replace("e+", "e")
          : String(Number.parseFloat(v.toPrecision(digits))));
  }
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(m)));
  return (v) => special(v) ?? v.toFixed(decimals);
}

/** `s` shortened to at most `n` characters by an ellipsis in the middle, keeping more tail;
 * under 8 characters only the tail ("tok1000", "tok2000" in 5: "…1000", "…2000"). */
export function elideMiddle(s: string, n: number): string {
  if (s.length <= n) return s;
  if (n <= 1) return "…".slice(0, n);
  const head = n < 8 ? 0 : Math.max(1, Math.floor((n - 1) / 4));
  return `${s.slice(0, head)}…${s.slice(s.length - (n - 1 - head))}`;
}
