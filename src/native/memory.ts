/**
 * Huge-page advice for large fresh buffers (native/memory_js.cc): on virtual machines a 4 KiB page
 * fault is expensive (first touching a 94 MB volume took ~40 ms on the project's 2-core VM, ~8 ms
 * in 2 MiB pages). Advice only: without the addon, off Linux, or where transparent huge pages are
 * off, nothing changes but the speed.
 */
import { loadAddon } from './addon.js';

interface Memory {
  adviseHugePages(view: ArrayBufferView): void;
  setHugePageAdvice(on: boolean): void;
}
let loaded: Memory | null | undefined;

function memory(): Memory | null {
  if (loaded === undefined) {
    const exported = (loadAddon() as { memory?: Partial<Memory> } | null)?.memory;
    loaded = typeof exported?.adviseHugePages === 'function' && typeof exported.setHugePageAdvice === 'function' ? (exported as Memory) : null;
  }
  return loaded;
}

/** Advises huge pages for the not yet touched `view` (ignored below a few MiB). */
export function adviseHugePages(view: ArrayBufferView): void {
  memory()?.adviseHugePages(view);
}

/** Switches the advice off or back on, here and in the addon's own buffers; for A/B benches. */
export function setHugePageAdvice(on: boolean): void {
  memory()?.setHugePageAdvice(on);
}
