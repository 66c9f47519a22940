// The smallest use of the library: segment one CT and write the mask next to it.
//   node examples/segment-file.mjs ct.nii.gz [mask.nii.gz]
// Runs on every Node that package.json "engines" allows. On Node >= 24 (or with TypeScript's
// downlevelling) `await using segmenter = await Segmenter.create()` replaces the try/finally.
import { Segmenter, readNifti, writeNifti } from 'spleen-trt';

const [input, output = input.replace(/(\.nii)?(\.gz)?$/, '_trans.nii.gz')] = process.argv.slice(2);
if (!input) {
  console.error('usage: node examples/segment-file.mjs <ct.nii[.gz]> [mask.nii.gz]');
  process.exit(2);
}

const segmenter = await Segmenter.create(); // the embedded default model; { model: 'dir' } for yours
try {
  const { volume } = await readNifti(input);
  const { mask, summary, timings } = await segmenter.segment(volume);
  await writeNifti(output, mask);
  console.log(`${output}: spleen ${summary.volumeMl.toFixed(1)} mL, ${timings.totalMs.toFixed(0)} ms on ${segmenter.info.backend}`);
} finally {
  await segmenter.close();
}
