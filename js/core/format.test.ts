import { describe, expect, it } from "vitest";
import { cellFormat } from "./format";

describe("cellFormat", () => {
  it("gives every cell of a view the same decimals, sign kept", () => {
    const f = cellFormat(-0.125, 0.125);
    expect([-0.4859725, -0.30717, -0.034859333, 0.11024].map(f)).toEqual([
      "-0.4860",
      "-0.3072",
      "-0.0349",
      "0.1102",
    ]);
  });
  it("follows the magnitude of the range", () => {
    expect(cellFormat(-5.76, 5.76)(-1.23456)).toBe("-1.235");
    expect(cellFormat(0, 1000)(12.3456)).toBe("12");
    expect(cellFormat(0, 0.9)(0.123456)).toBe("0.1235");
  });
  it("uses exponents or significant digits where fixed decimals say nothing", () => {
    expect(cellFormat(-1e-6, 1e-6)(-3.14159e-7)).toBe("-3.142e-7");
    expect(cellFormat(0, 1e9)(123456789)).toBe("1.235e8");
    expect(cellFormat(1e-6, 1, { log: true })(0.000123456)).toBe("0.0001235");
  });
  it("names NaN and infinities", () => {
    const f = cellFormat(-1, 1);
    expect([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(f)).toEqual([
      "NaN",
      "+Inf",
      "-Inf",
    ]);
  });
});
