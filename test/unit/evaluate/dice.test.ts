/** The bundle's metric on masks small enough to count by hand. */
import { describe, expect, it } from 'vitest';
import { diceCounts, foregroundDice, meanDice } from '../../../src/evaluate/dice.js';

describe('foregroundDice', () => {
  it('is 2|P and G| / (|P| + |G|), by hand', () => {
    // P = {0, 1}, G = {0, 2}: |P and G| = 1, so 2 * 1 / (2 + 2) = 0.5.
    expect(foregroundDice(Uint8Array.of(1, 1, 0, 0), Uint8Array.of(1, 0, 1, 0))).toBe(0.5);
    // P = {0, 1, 2}, G = {1}: 2 * 1 / (3 + 1) = 0.5; the other way round gives the same.
    expect(foregroundDice(Uint8Array.of(1, 1, 1, 0), Uint8Array.of(0, 1, 0, 0))).toBe(0.5);
    expect(foregroundDice(Uint8Array.of(0, 1, 0, 0), Uint8Array.of(1, 1, 1, 0))).toBe(0.5);
    // P = {0, 1, 2, 3}, G = {0, 1, 2}: 2 * 3 / 7.
    expect(foregroundDice(Uint8Array.of(1, 1, 1, 1), Uint8Array.of(1, 1, 1, 0))).toBeCloseTo(6 / 7, 15);
    expect(foregroundDice(Uint8Array.of(0, 1, 1), Uint8Array.of(0, 1, 1))).toBe(1);
  });

  it('counts any non-zero value as foreground', () => {
    expect(diceCounts(Uint8Array.of(2, 0, 255), Uint8Array.of(1, 1, 0))).toEqual({ intersection: 1, predicted: 2, reference: 2 });
  });

  it('is 0 for a missed spleen and NaN for an empty reference, whatever the prediction', () => {
    expect(foregroundDice(Uint8Array.of(0, 0, 0), Uint8Array.of(0, 1, 1))).toBe(0);
    expect(foregroundDice(Uint8Array.of(0, 1, 0), Uint8Array.of(0, 0, 0))).toBeNaN();
    expect(foregroundDice(Uint8Array.of(0, 0, 0), Uint8Array.of(0, 0, 0))).toBeNaN();
  });

  it('averages only finite scores', () => {
    expect(meanDice([1, NaN, 0.5])).toBe(0.75);
    expect(meanDice([NaN, NaN])).toBeNaN();
    expect(meanDice([])).toBeNaN();
  });

  it('refuses masks of different sizes', () => {
    expect(() => foregroundDice(new Uint8Array(3), new Uint8Array(4))).toThrow(RangeError);
  });
});
