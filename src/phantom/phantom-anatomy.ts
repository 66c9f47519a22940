/**
 * The phantom's anatomy as a list of simple solids in RAS+ world millimetres (patient centred at
 * the origin, +x toward the patient's right, +y anterior, +z superior), drawn from a seeded PRNG.
 *
 * The layout follows an adult abdomen at the level of the spleen (T10-L2) loosely; what matters for
 * a segmentation model is that the spleen is NOT separable by intensity alone: its HU range
 * overlaps the liver's, the muscles', the pancreas' and (without contrast) the kidneys', so a model
 * has to learn its shape and position (posterolateral left, under the left dome of the diaphragm,
 * inside the ribs, lateral to the stomach and the kidney).
 */
import type { Vec3 } from '../volume/volume.js';

/** Contrast phase: sets the organs' HU ranges. */
export type ContrastPhase = 'none' | 'portal-venous';

/** An ellipsoid, rotated, optionally lobulated (low-frequency radial perturbation) and bent. */
export interface Blob {
  kind: 'blob';
  centre: Vec3;
  radii: Vec3;
  /** Rows are the local axes in world coordinates: local = rotation * (world - centre). */
  rotation: Float64Array;
  /**
   * Coefficients of the 19 monomials of degree 1-3 in the unit direction (u, v, w); the surface
   * lies at normalised radius 1 + p(u, v, w). Null for a plain ellipsoid.
   */
  lobes: Float64Array | null;
  /** Bound on |p| over the unit sphere (sum of |coefficients|). */
  lobeBound: number;
  /** Crescent bend: the local first coordinate is shifted by bend * v^2 (concave toward -u). */
  bend: number;
  hu: number;
  /** Gas above a fluid level: world z above which the blob holds `hu` of the level instead. */
  level?: { zMm: number; hu: number };
  /** Voxels of this blob are the label's foreground. */
  label?: boolean;
}

/** An elliptic cylinder along world z. */
export interface Tube {
  kind: 'tube';
  centre: [number, number];
  radii: [number, number];
  zRange: [number, number];
  hu: number;
  /** Radius growth per mm below zRange[1] (the psoas thickens caudally). */
  growPerMm?: number;
  /** A cortical shell of this thickness (mm, along x) and HU. */
  shell?: { mm: number; hu: number };
  /**
   * Periodic along z (vertebrae): where ((z - phase) mod pitch) lies outside [from, to) the tube
   * holds `offHu`, or is not drawn when offHu is null.
   */
  period?: { pitchMm: number; phaseMm: number; fromMm: number; toMm: number; offHu: number | null };
}

export type Structure = Blob | Tube;

/** What fills every voxel before the solids are drawn. */
export interface BodyParams {
  /** Body cross-section half-axes, mm: x, anterior y, posterior y (the back is flatter). */
  rx: number;
  ryAnt: number;
  ryPost: number;
  /** Inner boundaries of the subcutaneous fat, the abdominal wall muscle and the rib band, as normalised radii. */
  fatInner: number;
  wallInner: number;
  ribInner: number;
  airHu: number;
  fatHu: number;
  muscleHu: number;
  visceralFatHu: number;
  ribs: { zMinMm: number; yMaxMm: number; slope: number; pitchMm: number; phaseMm: number; thickMm: number; hu: number };
  /** Diaphragm domes: lung where z > apex - curvature * |(x, y) - centre|^2. */
  lungs: {
    hu: number;
    left: { apexZMm: number; centre: [number, number]; curvature: number };
    right: { apexZMm: number; centre: [number, number]; curvature: number };
    mediastinumHalfWidthMm: number;
    mediastinumYMinMm: number;
    heartHu: number;
  };
  table: { topMm: number; thickMm: number; halfWidthMm: number; shellHu: number; coreHu: number };
}

export interface Anatomy {
  body: BodyParams;
  /** Drawn in order, each over the previous ones; the spleen comes last. */
  structures: Structure[];
  spleen: Blob | null;
  /** Mean HU of the main organs, for the record. */
  hu: { spleen: number; liver: number; kidney: number; muscle: number };
}

export interface AnatomyOptions {
  patientScale: number;
  contrast: ContrastPhase;
  spleen: boolean;
}

type Range = [number, number];

interface HuTable {
  fat: Range; visceralFat: Range; muscle: Range; liver: Range; spleen: Range; kidney: Range; aorta: Range;
  ivc: Range; pancreas: Range; bowel: Range; stomach: Range; bile: Range; cortex: Range; cancellous: Range;
  disc: Range; lung: Range; heart: Range; rib: Range; canal: Range;
}

// Typical adult values; the spleen's range overlaps the liver's, the muscles' and the pancreas'.
const HU_NONE: HuTable = {
  fat: [-120, -85], visceralFat: [-110, -75], muscle: [40, 58], liver: [46, 68], spleen: [38, 60], kidney: [26, 42],
  aorta: [35, 50], ivc: [30, 45], pancreas: [35, 52], bowel: [10, 40], stomach: [5, 25], bile: [0, 15],
  cortex: [500, 900], cancellous: [150, 300], disc: [70, 100], lung: [-900, -820], heart: [30, 45], rib: [350, 700], canal: [10, 25],
};
const HU_PORTAL: HuTable = {
  ...HU_NONE,
  muscle: [50, 68], liver: [92, 130], spleen: [98, 135], kidney: [150, 210], aorta: [140, 200], ivc: [120, 165],
  pancreas: [80, 112], bowel: [30, 65], heart: [120, 180],
};

/** The 19 monomials of degree 1-3 in (u, v, w), in the order Blob.lobes uses. */
export function lobeMonomials(u: number, v: number, w: number): number[] {
  return [u, v, w, u * u, v * v, w * w, u * v, u * w, v * w, u * u * u, v * v * v, w * w * w, u * u * v, u * u * w, v * v * u, v * v * w, w * w * u, w * w * v, u * v * w];
}

/** Rotation rows (local axes) from a yaw about z, a tilt about the local first axis and a roll about the second. */
export function localAxes(yawDeg: number, tiltDeg: number, rollDeg: number): Float64Array {
  const t = (yawDeg * Math.PI) / 180, a = (tiltDeg * Math.PI) / 180, b = (rollDeg * Math.PI) / 180;
  let ea = [Math.cos(t), Math.sin(t), 0];
  let eb = [-Math.sin(t), Math.cos(t), 0];
  let ec = [0, 0, 1];
  [eb, ec] = [eb.map((x, i) => Math.cos(a) * x + Math.sin(a) * ec[i]), eb.map((x, i) => -Math.sin(a) * x + Math.cos(a) * ec[i])];
  [ea, ec] = [ea.map((x, i) => Math.cos(b) * x - Math.sin(b) * ec[i]), ea.map((x, i) => Math.sin(b) * x + Math.cos(b) * ec[i])];
  return Float64Array.from([...ea, ...eb, ...ec]);
}

/** Samples the anatomy; every draw comes from `random` in a fixed order, so a seed fixes the patient. */
export function sampleAnatomy(random: () => number, options: AnatomyOptions): Anatomy {
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const table = options.contrast === 'portal-venous' ? HU_PORTAL : HU_NONE;
  const hu = (name: keyof HuTable) => Math.round(uniform(table[name][0], table[name][1]));
  const s = options.patientScale;

  const lobes = (amplitude: number): { lobes: Float64Array; lobeBound: number } => {
    const c = Float64Array.from({ length: 19 }, () => uniform(-1, 1));
    // The degree-1 terms only shift the blob; damp them so the amplitude goes into the shape.
    for (let m = 0; m < 3; m++) c[m] *= 0.3;
    const total = c.reduce((sum, x) => sum + Math.abs(x), 0);
    for (let m = 0; m < 19; m++) c[m] *= amplitude / total;
    return { lobes: c, lobeBound: amplitude };
  };
  const blob = (centre: Vec3, radii: Vec3, huValue: number, extra: Partial<Blob> = {}): Blob => ({
    kind: 'blob', centre, radii, rotation: localAxes(0, 0, 0), lobes: null, lobeBound: 0, bend: 0, hu: huValue, ...extra,
  });
  const tube = (centre: [number, number], radii: [number, number], huValue: number, extra: Partial<Tube> = {}): Tube => ({
    kind: 'tube', centre, radii, zRange: [-1e4, 1e4], hu: huValue, ...extra,
  });

  // Body and its wall.
  const rx = 160 * s * uniform(0.92, 1.08);
  const ryAnt = 118 * s * uniform(0.9, 1.1);
  const ryPost = 104 * s * uniform(0.92, 1.08);
  const sx = rx / 160;
  const sy = (ryAnt + ryPost) / 222;
  const fatInner = 1 - uniform(0.05, 0.16);
  const wallInner = fatInner - uniform(0.035, 0.06);
  const ribInner = wallInner - uniform(0.04, 0.055);
  const muscleHu = hu('muscle');
  const fatHu = hu('fat');
  const visceralFatHu = hu('visceralFat');

  // Spleen: posterolateral left, its long in-plane axis along the inner body wall, crescent-shaped
  // (concave toward the hilum), lobulated; size varies from small to splenomegaly.
  const size = uniform(0.8, 1.3);
  const spleenRadii: Vec3 = [uniform(17, 26) * s * size, uniform(40, 58) * s * size, uniform(40, 60) * s * size];
  const angle = (uniform(200, 222) * Math.PI) / 180;
  const spleenAmp = uniform(0.12, 0.28);
  const spleenBend = uniform(0.25, 0.6);
  const lateralReach = (1 + spleenAmp + spleenBend) * spleenRadii[0];
  const rho = ribInner - lateralReach / rx - 0.03;
  const z0 = uniform(-10, 25) * s;
  const spleenCentre: Vec3 = [rho * rx * Math.cos(angle), rho * ryPost * Math.sin(angle), z0];
  // Local first axis = outward normal of the wall at that angle (so +u is lateral, the bend makes the medial side concave).
  const normalYaw = (Math.atan2(Math.sin(angle) / ryPost, Math.cos(angle) / rx) * 180) / Math.PI;
  const spleenHu = hu('spleen');
  const spleenShape = lobes(spleenAmp);
  const spleen: Blob = blob(spleenCentre, spleenRadii, spleenHu, {
    rotation: localAxes(normalYaw + uniform(-12, 12), uniform(-25, 10), uniform(-10, 10)),
    ...spleenShape,
    bend: spleenBend,
    label: true,
  });
  const haloMm = uniform(2, 4);
  const spleenHalo: Blob = {
    ...spleen,
    radii: [spleenRadii[0] + haloMm, spleenRadii[1] + haloMm, spleenRadii[2] + haloMm],
    hu: visceralFatHu,
    label: false,
  };
  const spleenTop = z0 + spleenRadii[2] * (1 + spleenAmp);

  // Liver: right upper quadrant plus a left lobe reaching across the midline.
  const liverHu = hu('liver');
  const liverRadii: Vec3 = [uniform(58, 72) * sx, uniform(62, 74) * sy, uniform(75, 95) * s];
  const liver = blob([uniform(48, 58) * sx, uniform(-5, 10) * sy, z0 + uniform(10, 30) * s], liverRadii, liverHu, lobes(0.08));
  const leftLobe = blob([uniform(-5, 15) * sx, uniform(30, 45) * sy, liver.centre[2] + uniform(5, 20) * s], [uniform(30, 55) * sx, uniform(22, 32) * sy, uniform(28, 40) * s], liverHu, lobes(0.08));
  const liverTop = liver.centre[2] + liverRadii[2] * 1.08;
  const gallbladder = blob([uniform(35, 50) * sx, uniform(15, 30) * sy, liver.centre[2] - uniform(40, 60) * s], [13 * s, 15 * s, uniform(22, 32) * s], hu('bile'), {
    rotation: localAxes(uniform(-30, 30), uniform(-20, 20), 0),
  });

  const stomach = blob([uniform(-48, -30) * sx, uniform(25, 45) * sy, z0 + uniform(10, 35) * s], [uniform(26, 38) * s, uniform(22, 32) * s, uniform(35, 50) * s], hu('stomach'), {
    ...lobes(0.1),
    rotation: localAxes(uniform(-30, 30), uniform(-15, 15), 0),
  });
  stomach.level = { zMm: stomach.centre[2] + stomach.radii[2] * uniform(0.1, 0.6), hu: Math.round(uniform(-980, -900)) };

  // Pancreas: its tail reaches toward the splenic hilum.
  const pancreas = blob([uniform(-30, -18) * sx, uniform(-12, 2) * sy, z0 - uniform(15, 30) * s], [uniform(9, 13) * s, uniform(45, 60) * s, uniform(9, 13) * s], hu('pancreas'), {
    rotation: localAxes(90 + uniform(-20, 10), 0, uniform(-10, 10)),
    ...lobes(0.1),
  });

  const kidneyHu = hu('kidney');
  const kidney = (side: number, zc: number): Blob[] => {
    const centre: Vec3 = [side * uniform(55, 68) * sx, uniform(-58, -45) * sy, zc];
    const radii: Vec3 = [uniform(22, 28) * s, uniform(25, 31) * s, uniform(46, 58) * s];
    const rotation = localAxes(side * uniform(15, 35), 0, side * uniform(-15, -5));
    const shape = lobes(0.04);
    const perirenal = blob(centre, [radii[0] + 6 * s, radii[1] + 6 * s, radii[2] + 6 * s], visceralFatHu - 10, { rotation, ...shape });
    const organ = blob(centre, radii, kidneyHu, { rotation, ...shape });
    // Renal sinus fat on the medial side.
    const sinus = blob([centre[0] - side * 0.45 * radii[0], centre[1] + 0.2 * radii[1], centre[2]], [radii[0] * 0.4, radii[1] * 0.4, radii[2] * 0.45], visceralFatHu + 40, { rotation });
    return [perirenal, organ, sinus];
  };
  const leftKidney = kidney(-1, z0 - uniform(40, 60) * s);
  const rightKidney = kidney(1, z0 - uniform(55, 75) * s);

  const bowelHu = hu('bowel');
  const bowel: Blob[] = [];
  const loops = 8 + Math.floor(random() * 7);
  for (let n = 0; n < loops; n++) {
    const loop = blob(
      [uniform(-0.55, 0.55) * rx, uniform(-0.15, 0.6) * ryAnt, z0 - uniform(40, 170) * s],
      [uniform(12, 28) * s, uniform(12, 28) * s, uniform(12, 30) * s],
      bowelHu + Math.round(uniform(-8, 8)),
      { ...lobes(0.12), rotation: localAxes(uniform(0, 180), uniform(-30, 30), 0) },
    );
    if (random() < 0.4) loop.level = { zMm: loop.centre[2] + loop.radii[2] * uniform(-0.2, 0.6), hu: Math.round(uniform(-980, -850)) };
    bowel.push(loop);
  }
  // The splenic flexure of the colon, gas-filled, just anterior and inferior to the spleen's tip.
  const flexure = blob([spleenCentre[0] + uniform(10, 25) * sx, spleenCentre[1] + uniform(40, 60) * sy, z0 - uniform(25, 50) * s], [uniform(14, 20) * s, uniform(14, 20) * s, uniform(20, 30) * s], bowelHu, lobes(0.12));
  flexure.level = { zMm: flexure.centre[2] - flexure.radii[2] * uniform(0, 0.5), hu: Math.round(uniform(-980, -850)) };

  // Retroperitoneum and spine.
  const vertebraPitch = uniform(27, 33) * s;
  const discMm = uniform(6, 9) * s;
  const vertebraPhase = uniform(0, vertebraPitch);
  const spineY = uniform(-56, -48) * sy;
  const vertebra = tube([0, spineY], [uniform(18, 22) * s, uniform(15, 19) * s], hu('cancellous'), {
    shell: { mm: uniform(2, 3.5) * s, hu: hu('cortex') },
    period: { pitchMm: vertebraPitch, phaseMm: vertebraPhase, fromMm: discMm, toMm: vertebraPitch, offHu: hu('disc') },
  });
  const canal = tube([0, spineY - 26 * sy], [9 * s, 8 * s], hu('canal'));
  const posterior = tube([0, spineY - 38 * sy], [uniform(22, 28) * s, 9 * s], hu('cortex') - 250, {
    period: { pitchMm: vertebraPitch, phaseMm: vertebraPhase, fromMm: discMm, toMm: vertebraPitch * 0.75, offHu: null },
  });
  const paraspinal = [-1, 1].map((side) => tube([side * uniform(32, 36) * sx, spineY - 34 * sy], [uniform(17, 21) * s, uniform(12, 15) * s], muscleHu));
  const psoas = [-1, 1].map((side) => tube([side * uniform(27, 33) * sx, spineY + 6 * sy], [6 * s, 6 * s], muscleHu, {
    zRange: [-1e4, z0 - uniform(10, 30) * s],
    growPerMm: 0.012 / s,
  }));
  const aorta = tube([uniform(-16, -9) * sx, spineY + uniform(22, 28) * sy], [uniform(10, 13) * s, uniform(10, 13) * s], hu('aorta'));
  const ivc = tube([uniform(15, 22) * sx, spineY + uniform(24, 32) * sy], [uniform(12, 16) * s, uniform(8, 11) * s], hu('ivc'), {
    zRange: [-1e4, liverTop - 10 * s],
  });

  const body: BodyParams = {
    rx, ryAnt, ryPost, fatInner, wallInner, ribInner,
    airHu: -1000,
    fatHu, muscleHu, visceralFatHu,
    ribs: {
      zMinMm: z0 - uniform(90, 120) * s,
      yMaxMm: uniform(0.3, 0.6) * ryAnt,
      slope: uniform(0.3, 0.5),
      pitchMm: uniform(24, 30) * s,
      phaseMm: uniform(0, 30),
      thickMm: uniform(7, 10) * s,
      hu: hu('rib'),
    },
    lungs: {
      hu: hu('lung'),
      left: { apexZMm: spleenTop + uniform(4, 14) * s, centre: [-70 * sx, -10 * sy], curvature: uniform(0.004, 0.007) / s },
      right: { apexZMm: liverTop + uniform(2, 10) * s, centre: [70 * sx, -5 * sy], curvature: uniform(0.004, 0.007) / s },
      mediastinumHalfWidthMm: uniform(35, 50) * sx,
      mediastinumYMinMm: spineY + 20 * sy,
      heartHu: hu('heart'),
    },
    table: { topMm: -ryPost - uniform(6, 25), thickMm: uniform(10, 16), halfWidthMm: 225, shellHu: 250, coreHu: -350 },
  };

  const structures: Structure[] = [
    ...paraspinal, ...psoas,
    liver, leftLobe, gallbladder, stomach, pancreas,
    ...leftKidney, ...rightKidney,
    ...bowel, flexure,
    aorta, ivc, vertebra, canal, posterior,
  ];
  if (options.spleen) structures.push(spleenHalo, spleen);
  return {
    body,
    structures,
    spleen: options.spleen ? spleen : null,
    hu: { spleen: spleenHu, liver: liverHu, kidney: kidneyHu, muscle: muscleHu },
  };
}
