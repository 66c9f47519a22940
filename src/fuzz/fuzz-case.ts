/** The PRNG of one fuzz case: a function of the run's seed, the target's name and the case index. */
import { mulberry32 } from '../phantom/make-phantom.js';

export function caseRandom(seed: number, target: string, index: number): () => number {
  let h = seed >>> 0;
  for (const c of target) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return mulberry32((Math.imul(h ^ index, 0x9e3779b1) + index) >>> 0);
}
