/**
 * Inventory of the studies and series found, and the choice of the one CT series to segment:
 * by default the ORIGINAL/PRIMARY axial CT image series with the most slices (MONAI Deploy's
 * selector rules, monai-deploy-app-sdk dicom_series_selector_operator.py), or the series asked for.
 */
import { dicomInvalid, dicomUnsupported } from './dicom-errors.js';
import { CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE, type InstanceHeader } from './parse-instance.js';

/** One series of the inventory. */
export interface SeriesSummary {
  seriesInstanceUid: string;
  studyInstanceUid: string;
  modality: string;
  sopClassUid: string;
  imageType: string;
  seriesNumber: string;
  seriesDescription: string;
  instances: number;
  /** Slices: instances, or frames of multi-frame instances. */
  frames: number;
  /** Why the default rules pass it over; absent when it is eligible. */
  rejected?: string;
}

export interface SeriesSelection {
  seriesInstanceUid: string;
  /** One sentence: which series and why. */
  reason: string;
  inventory: SeriesSummary[];
  instances: InstanceHeader[];
}

function isAxial(instance: InstanceHeader): boolean {
  const iop = instance.frames[0]?.iop;
  if (!iop) return instance.imageType[2] === 'AXIAL';
  // The slice normal is the cross product of the row and column directions; axial (gantry tilt
  // included) when it points mostly head-feet.
  const n = [iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5], iop[0] * iop[4] - iop[1] * iop[3]];
  return Math.abs(n[2]) >= Math.abs(n[0]) && Math.abs(n[2]) >= Math.abs(n[1]);
}

function rejection(first: InstanceHeader): string | undefined {
  if (first.modality !== 'CT') return `modality ${first.modality || 'missing'}, not CT`;
  if (first.sopClassUid !== CT_IMAGE_STORAGE && first.sopClassUid !== ENHANCED_CT_IMAGE_STORAGE) return `SOP class ${first.sopClassUid} is not (Enhanced) CT Image Storage`;
  if (first.imageType.includes('LOCALIZER')) return 'a localizer';
  if (first.imageType[0] !== 'ORIGINAL' || first.imageType[1] !== 'PRIMARY') return `image type ${first.imageType.join('\\')}, not ORIGINAL\\PRIMARY`;
  if (!isAxial(first)) return 'not axial';
  return undefined;
}

/** Groups instances by SeriesInstanceUID; series in order of first appearance. */
export function groupBySeries(instances: readonly InstanceHeader[]): Map<string, InstanceHeader[]> {
  const groups = new Map<string, InstanceHeader[]>();
  for (const instance of instances) {
    const list = groups.get(instance.seriesInstanceUid);
    if (list) list.push(instance);
    else groups.set(instance.seriesInstanceUid, [instance]);
  }
  return groups;
}

function summarize(uid: string, list: InstanceHeader[]): SeriesSummary {
  const first = list[0];
  return {
    seriesInstanceUid: uid,
    studyInstanceUid: first.studyInstanceUid,
    modality: first.modality,
    sopClassUid: first.sopClassUid,
    imageType: first.imageType.join('\\'),
    seriesNumber: first.seriesNumber,
    seriesDescription: first.seriesDescription,
    instances: list.length,
    frames: list.reduce((sum, i) => sum + i.frames.length, 0),
    rejected: rejection(first),
  };
}

/** Picks the series to read; `seriesUid` overrides the default rules (it must still be CT). */
export function selectSeries(instances: readonly InstanceHeader[], seriesUid?: string): SeriesSelection {
  if (instances.length === 0) throw dicomInvalid('No DICOM files found in the input (files without the DICM prefix are ignored)');
  const groups = groupBySeries(instances);
  const inventory = [...groups].map(([uid, list]) => summarize(uid, list));
  const studies = new Set(inventory.map((s) => s.studyInstanceUid)).size;
  const where = `${inventory.length} series in ${studies} ${studies === 1 ? 'study' : 'studies'}`;
  if (seriesUid !== undefined) {
    const chosen = inventory.find((s) => s.seriesInstanceUid === seriesUid);
    if (!chosen) throw dicomInvalid(`Series ${seriesUid} is not in the input (${where}: ${inventory.map((s) => s.seriesInstanceUid).join(', ')})`);
    if (chosen.modality !== 'CT' || (chosen.sopClassUid !== CT_IMAGE_STORAGE && chosen.sopClassUid !== ENHANCED_CT_IMAGE_STORAGE)) {
      throw dicomUnsupported(`Series ${seriesUid} is ${chosen.modality} (${chosen.sopClassUid}); only CT Image Storage and Enhanced CT are read`);
    }
    return { seriesInstanceUid: seriesUid, reason: `series ${seriesUid} (${chosen.frames} slices), as asked (--series); ${where}`, inventory, instances: groups.get(seriesUid)! };
  }
  const eligible = inventory.filter((s) => s.rejected === undefined);
  if (eligible.length === 0) {
    throw dicomInvalid(`No ORIGINAL/PRIMARY axial CT series in the input (${where}: ${inventory.map((s) => `${s.seriesInstanceUid}: ${s.rejected}`).join('; ')})`);
  }
  // Most slices; ties broken by series number, then UID, so the choice never depends on file order.
  eligible.sort((a, b) => b.frames - a.frames || Number(a.seriesNumber) - Number(b.seriesNumber) || a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
  const chosen = eligible[0];
  const others = inventory.filter((s) => s !== chosen).map((s) => `${s.seriesInstanceUid} (${s.rejected ?? `${s.frames} slices`})`);
  const reason =
    `series ${chosen.seriesInstanceUid} (#${chosen.seriesNumber || '?'} ${chosen.imageType}, ${chosen.frames} slices): ` +
    `the ORIGINAL/PRIMARY axial CT series with the most slices; ${where}` +
    (others.length > 0 ? `; passed over: ${others.join(', ')}` : '');
  return { seriesInstanceUid: chosen.seriesInstanceUid, reason, inventory, instances: groups.get(chosen.seriesInstanceUid)! };
}
