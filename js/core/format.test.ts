import { describe, expect, it } from "vitest";
import { cellFormat, count, elideMiddle } from "./format";

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

describe("elideMiddle", () => {
  it("keeps both ends, or only the tail when very short", () => {
    expect(elideMiddle("extraordinarily_long_token", 12)).toBe("ex…ong_token");
    expect(elideMiddle("tok1000", 5)).toBe("…1000");
    expect(elideMiddle("tok2000", 5)).not.toBe(elideMiddle("tok1000", 5));
    expect(elideMiddle("short", 8)).toBe("short");
  });
});

describe("count", () => {
  it("writes what toLocaleString('en-US') writes", () => {
    for (const n of [
      0,
      7,
      1234,
      -98765,
      1234567890,
      12.5,
      0.125,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ])
      expect(count(n)).toBe(n.toLocaleString("en-US"));
    expect(count(3558)).toBe("3,558");
  });
});
