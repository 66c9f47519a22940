/**
 * The viewer page in a real browser (Debian's chromium driven by playwright-core, headless, WebGL
 * on SwiftShader): upload a small phantom CT through the page, wait for the job, then check that
 * the mask overlay is drawn (mask-red pixels read back from the WebGL canvas, and none once the
 * overlay is made transparent) and that the volume in mL matches the job's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Segmenter } from '../../../src/index.js';
import { hasCommand, requireTool } from '../../helpers/system-tools.js';
import { hasDicomTools, writeDicomSeries } from '../../helpers/dicom-series.js';
import { zipDirectory } from '../../helpers/zip.js';
import { smallCtBytes, smallPhantom, startServer, type TestServer } from './server-test-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** Found to work here: headless chromium renders WebGL2 through ANGLE on SwiftShader with these. */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];
const TOKEN = 'viewer-token-0123456789';

describe.runIf(requireTool(hasCommand(CHROMIUM), 'chromium'))('viewer page in chromium', () => {
  let segmenter: Segmenter;
  let server: TestServer;
  let context: BrowserContext;
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'spleen-viewer-'));
    segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
    server = await startServer({ segmenter, auth: { tokens: [TOKEN] } });
    context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
  });
  afterAll(async () => {
    await context?.close();
    await server?.close();
    await segmenter?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  /** Opens the page, gives the token, uploads `file` and waits for the job; the page must say Done, without errors. */
  async function uploadThroughPage(file: string) {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${server.base}/`);
    await page.fill('#token', TOKEN);
    await page.dispatchEvent('#token', 'change');
    await page.setInputFiles('#file', file);
    await page.waitForFunction(() => ['done', 'failed'].includes((globalThis as any).spleenViewer?.state), null, { timeout: 60_000 });
    expect(await page.textContent('#status')).toMatch(/^Done/);
    expect(errors).toEqual([]);
    return page;
  }

  it('uploads a CT, shows the volume in mL and draws the mask over the CT in three planes', async () => {
    const ctFile = path.join(tmp, 'phantom_ct.nii.gz');
    await writeFile(ctFile, smallCtBytes(1));
    const page = await uploadThroughPage(ctFile);

    const job = await page.evaluate(() => (globalThis as any).spleenViewer.job);
    expect(job.state).toBe('done');
    expect(await page.textContent('#volume-ml')).toBe(job.summary.volumeMl.toFixed(1));
    expect(job.summary.volumeMl).toBeGreaterThan(10);
    expect(await page.isVisible('#result')).toBe(true);
    expect(await page.getAttribute('#download', 'href')).toMatch(/^blob:/);

    const state = await page.evaluate(() => {
      const nv = (globalThis as any).spleenViewer.nv;
      return { volumes: nv.volumes.length, sliceType: nv.opts.sliceType, multiplanar: nv.sliceTypeMultiplanar };
    });
    expect(state).toEqual({ volumes: 2, sliceType: state.multiplanar, multiplanar: state.multiplanar });
    const withMask = await page.evaluate(() => (globalThis as any).spleenViewer.countMaskPixels());
    expect(withMask.lit).toBeGreaterThan(10_000);
    expect(withMask.red).toBeGreaterThan(1000);
    // The red comes from the overlay: made transparent, it is gone.
    const withoutMask = await page.evaluate(() => {
      const viewer = (globalThis as any).spleenViewer;
      viewer.nv.setOpacity(1, 0);
      return viewer.countMaskPixels();
    });
    expect(withoutMask.red).toBeLessThan(withMask.red / 20);
  });

  it.runIf(requireTool(hasDicomTools(), 'pydicom, dcmtk, gdcm, dcm2niix'))('takes a zipped DICOM series: shows the CT the server read, the mask over it, and offers the SEG', async () => {
    const zipFile = path.join(tmp, 'study.zip');
    await writeFile(zipFile, zipDirectory(await writeDicomSeries(smallPhantom(1).image, path.join(tmp, 'series'), { intercept: -1024 })));
    const page = await uploadThroughPage(zipFile);
    const job = await page.evaluate(() => (globalThis as any).spleenViewer.job);
    expect(job.input.format).toBe('dicom');
    expect(await page.isVisible('#seg-link')).toBe(true);
    expect(await page.getAttribute('#download-seg', 'href')).toMatch(/^blob:/);
    expect(await page.evaluate(() => (globalThis as any).spleenViewer.nv.volumes.length)).toBe(2);
    const drawn = await page.evaluate(() => (globalThis as any).spleenViewer.countMaskPixels());
    expect(drawn.lit).toBeGreaterThan(10_000);
    expect(drawn.red).toBeGreaterThan(1000);
  });
});
