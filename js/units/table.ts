// DOM-free logic of the units table: the order of rows under a sort key and a filter.

export interface UnitColumns {
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
  max: ArrayLike<number>;
  frac_zero: ArrayLike<number>;
  frac_saturated: ArrayLike<number>;
  nonfinite: ArrayLike<number>;
}

export const SORTS: Record<string, string> = {
  index: "unit #",
  dead: "dead first",
  saturated: "saturated first",
  mean: "mean, high first",
  std: "std, high first",
  max: "max, high first",
  nonfinite: "NaN/Inf first",
};

export const FILTERS: Record<string, string> = {
  all: "all units",
  dead: "dead (≥ 99% zeros)",
  saturated: "saturated (≥ 50%)",
  nonfinite: "with NaN/Inf",
  alive: "not dead",
};

export const DEAD = 0.99;
export const SATURATED = 0.5;

function keep(c: UnitColumns, filter: string, u: number): boolean {
  switch (filter) {
    case "dead":
      return c.frac_zero[u] >= DEAD;
    case "alive":
      return !(c.frac_zero[u] >= DEAD);
    case "saturated":
      return c.frac_saturated[u] >= SATURATED;
    case "nonfinite":
      return c.nonfinite[u] > 0;
    default:
      return true;
  }
}

/** Units passing `filter`, ordered by `sort` (high first; NaN last; ties by unit index). */
export function unitOrder(c: UnitColumns, n: number, sort: string, filter: string): number[] {
  const rows: number[] = [];
  for (let u = 0; u < n; u++) if (keep(c, filter, u)) rows.push(u);
  const key: ArrayLike<number> | null =
    sort === "dead"
      ? c.frac_zero
      : sort === "saturated"
        ? c.frac_saturated
        : sort === "mean"
          ? c.mean
          : sort === "std"
            ? c.std
            : sort === "max"
              ? c.max
              : sort === "nonfinite"
                ? c.nonfinite
                : null;
  if (!key) return rows;
  const v = (u: number) => (Number.isNaN(key[u]) ? Number.NEGATIVE_INFINITY : key[u]);
  return rows.sort((a, b) => v(b) - v(a) || a - b);
}
