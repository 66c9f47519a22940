/**
 * The viewer page served at `/`: drop a CT, watch the job, then see the CT with the mask in three
 * planes (NiiVue, served from the package: no CDN), the volume in mL and a download link. Kept as
 * strings in a module so the build ships it without a copy step. The token (when the server
 * needs one) is asked for on the page and kept in sessionStorage only.
 */

/** The page for a service mounted at `prefix` ('' at the root): its URLs resolve against it. */
export function viewerHtml(prefix: string): string {
  return VIEWER_HTML.replace('__BASE__', prefix.replace(/[^\w/.-]/g, ''));
}

const VIEWER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spleen-trt</title>
<link rel="icon" href="data:,">
<base href="__BASE__/">
<style>
  body { font: 15px system-ui, sans-serif; margin: 1.5rem; background: #111; color: #eee; }
  #drop { border: 2px dashed #888; border-radius: 8px; padding: 1.2rem; text-align: center; }
  #drop.over { border-color: #f44; }
  #status { margin: .8rem 0; min-height: 1.2em; }
  #status[data-state="failed"] { color: #f88; }
  progress { width: 100%; }
  #result { margin: .6rem 0; font-size: 1.1rem; }
  a { color: #8cf; }
  #view { width: 100%; height: 440px; background: #000; }
  .note { color: #999; font-size: 12px; }
</style>
</head>
<body>
<h1>spleen-trt</h1>
<p class="note">Spleen segmentation of abdominal CT. The embedded default model is trained on synthetic phantoms: not for clinical use.</p>
<div id="drop">Drop a CT (.nii, .nii.gz, or a zipped DICOM series) here, or <input type="file" id="file" accept=".nii,.gz,.zip"></div>
<p><label>Access token (if the server needs one) <input id="token" type="password" autocomplete="off"></label></p>
<div id="status" data-state="idle"></div>
<progress id="progress" max="1" value="0"></progress>
<div id="result" hidden>Spleen volume: <strong><span id="volume-ml"></span> mL</strong> (<span id="voxels"></span> voxels) &middot; <a id="download" href="#" download="mask.nii.gz">Download the mask</a><span id="seg-link" hidden> &middot; <a id="download-seg" href="#" download="seg.dcm">Download the DICOM SEG</a></span></div>
<div id="view"><canvas id="gl"></canvas></div>
<script type="module" src="viewer/app.js"></script>
</body>
</html>
`;

export const VIEWER_JS = `import { Niivue } from './niivue.js';

const $ = (id) => document.getElementById(id);
const token = $('token');
token.value = sessionStorage.getItem('spleen-trt-token') ?? '';
token.addEventListener('change', () => sessionStorage.setItem('spleen-trt-token', token.value));
const api = new URL('v1/segmentations', document.baseURI);
// A cyan crosshair: red is the mask's colour only.
const nv = new Niivue({ backColor: [0, 0, 0, 1], crosshairColor: [0, 0.8, 1, 1], show3Dcrosshair: false });
const ready = nv.attachTo('gl');
const viewer = { state: 'idle', job: null, nv };
window.spleenViewer = viewer;

function setStatus(state, text) {
  viewer.state = state;
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function headers() {
  return token.value ? { Authorization: 'Bearer ' + token.value } : {};
}

async function problem(response) {
  try {
    const body = await response.json();
    return body.code + ': ' + body.detail;
  } catch {
    return 'HTTP ' + response.status;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function segment(file) {
  $('result').hidden = true;
  $('progress').value = 0;
  setStatus('uploading', 'Uploading ' + Math.round(file.size / 1024) + ' KiB...');
  const response = await fetch(api, { method: 'POST', body: file, headers: { ...headers(), 'Content-Type': 'application/octet-stream' } });
  if (!response.ok) return setStatus('failed', 'Upload refused: ' + (await problem(response)));
  let job = await response.json();
  while (job.state === 'queued' || job.state === 'running') {
    const p = job.progress;
    if (job.state === 'queued') setStatus('queued', 'Queued (' + (job.queuePosition ?? 0) + ' ahead)');
    else if (p && p.windowsTotal > 0) {
      setStatus('running', 'Segmenting: ' + p.stage + ', window ' + p.windowsDone + ' of ' + p.windowsTotal);
      $('progress').value = p.windowsDone / p.windowsTotal;
    } else setStatus('running', 'Segmenting: ' + (p ? p.stage : 'starting'));
    await sleep(400);
    const poll = await fetch(new URL(job.urls.self, location.href), { headers: headers() });
    if (!poll.ok) return setStatus('failed', 'Status failed: ' + (await problem(poll)));
    job = await poll.json();
  }
  viewer.job = job;
  if (job.state !== 'done') return setStatus('failed', 'Job ' + job.state + ': ' + (job.error ? job.error.code + ': ' + job.error.message : ''));
  $('progress').value = 1;
  const mask = await fetch(new URL(job.urls.mask, location.href), { headers: headers() });
  if (!mask.ok) return setStatus('failed', 'Mask download failed: ' + (await problem(mask)));
  const maskUrl = URL.createObjectURL(await mask.blob());
  $('download').href = maskUrl;
  $('download').download = job.id + '-mask.nii.gz';
  $('volume-ml').textContent = job.summary.volumeMl.toFixed(1);
  $('voxels').textContent = String(job.summary.voxelCount);
  $('result').hidden = false;
  // A DICOM job: NiiVue is given the CT as the server read it (NIfTI), and the SEG is offered too.
  let ctUrl = URL.createObjectURL(file);
  $('seg-link').hidden = !job.urls.seg;
  if (job.urls.seg) {
    const seg = await fetch(new URL(job.urls.seg, location.href), { headers: headers() });
    if (!seg.ok) return setStatus('failed', 'SEG download failed: ' + (await problem(seg)));
    $('download-seg').href = URL.createObjectURL(await seg.blob());
    $('download-seg').download = job.id + '-seg.dcm';
  }
  if (job.input.format === 'dicom') {
    const ct = await fetch(new URL(job.urls.ct, location.href), { headers: headers() });
    if (!ct.ok) return setStatus('failed', 'CT download failed: ' + (await problem(ct)));
    ctUrl = URL.createObjectURL(await ct.blob());
  }
  await ready;
  // NiiVue takes the format from the name, so both carry a NIfTI extension.
  const ctName = job.input.format === 'nifti' && /\\.nii(\\.gz)?$/i.test(file.name) ? file.name : 'ct.nii.gz';
  await nv.loadVolumes([
    { url: ctUrl, name: ctName, colormap: 'gray', cal_min: -160, cal_max: 240 },
    { url: maskUrl, name: 'mask.nii.gz', colormap: 'red', opacity: 0.5, cal_min: 0.5, cal_max: 1 },
  ]);
  nv.setSliceType(nv.sliceTypeMultiplanar);
  // Centre the crosshair on the mask so all three planes cut through the spleen.
  const c = job.summary.centroidMm;
  if (c) nv.scene.crosshairPos = nv.mm2frac(c);
  nv.drawScene();
  setStatus('done', 'Done in ' + (job.timings.totalMs / 1000).toFixed(1) + ' s');
}

/** Counts mask-coloured (red) pixels in the frame just drawn: how the browser test sees the overlay. */
viewer.countMaskPixels = () => {
  nv.drawScene();
  const gl = nv.gl;
  const w = gl.drawingBufferWidth;
  const h = gl.drawingBufferHeight;
  const pixels = new Uint8Array(w * h * 4);
  gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
  let red = 0;
  let lit = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
    if (r > 0 || g > 0 || b > 0) lit++;
    if (r > 100 && r > g + 60 && r > b + 60) red++;
  }
  return { red, lit, width: w, height: h };
};

function start(file) {
  segment(file).catch((error) => setStatus('failed', String(error)));
}

$('file').addEventListener('change', (event) => event.target.files[0] && start(event.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer.files[0];
  if (file) start(file);
});
`;
