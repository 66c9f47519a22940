/**
 * The transfer syntaxes the reader accepts and how each is decoded; everything else is refused
 * with its name. Lossy syntaxes are refused even where a decoder exists: CT numbers from a lossy
 * stream are not the scanner's, and the segmentation should not silently run on them.
 */
import { dicomUnsupported } from '../dicom-errors.js';

export type PixelEncoding = 'native' | 'rle' | 'jpeg-lossless' | 'jpeg-ls' | 'jpeg2000';

export interface TransferSyntax {
  uid: string;
  name: string;
  encoding: PixelEncoding;
}

const ACCEPTED: readonly TransferSyntax[] = [
  { uid: '1.2.840.10008.1.2', name: 'Implicit VR Little Endian', encoding: 'native' },
  { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian', encoding: 'native' },
  { uid: '1.2.840.10008.1.2.1.99', name: 'Deflated Explicit VR Little Endian', encoding: 'native' },
  { uid: '1.2.840.10008.1.2.5', name: 'RLE Lossless', encoding: 'rle' },
  { uid: '1.2.840.10008.1.2.4.57', name: 'JPEG Lossless, Non-Hierarchical (Process 14)', encoding: 'jpeg-lossless' },
  { uid: '1.2.840.10008.1.2.4.70', name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 SV1)', encoding: 'jpeg-lossless' },
  { uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', encoding: 'jpeg-ls' },
  { uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 Image Compression (Lossless Only)', encoding: 'jpeg2000' },
];

/** Names of refused syntaxes, so the error says what the file is. */
const REFUSED_NAMES: Record<string, string> = {
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian (retired)',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (lossy)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (lossy)',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless (lossy)',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000 Image Compression (may be lossy)',
  '1.2.840.10008.1.2.4.92': 'JPEG 2000 Part 2 Multi-component (Lossless Only)',
  '1.2.840.10008.1.2.4.93': 'JPEG 2000 Part 2 Multi-component',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL (Lossless Only)',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264',
  '1.2.840.10008.1.2.4.110': 'JPEG XL Lossless',
};

/** The accepted syntax for `uid`, or ERR_DICOM_UNSUPPORTED naming it. */
export function transferSyntax(uid: string): TransferSyntax {
  const found = ACCEPTED.find((t) => t.uid === uid);
  if (found) return found;
  const name = REFUSED_NAMES[uid] ?? 'unknown';
  throw dicomUnsupported(
    `Transfer syntax ${uid} (${name}) is not supported; accepted: ${ACCEPTED.map((t) => `${t.uid} (${t.name})`).join(', ')}`,
  );
}
