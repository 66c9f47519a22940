#!/usr/bin/python3
"""Writes a CT DICOM series from a NIfTI volume with pydicom: the independent writer of the DICOM tests.

The NIfTI holds integer HU on an affine (voxel -> RAS+ mm). Slice k of the volume becomes one CT
image (or one frame of an Enhanced CT): pixel (row r, column c) = voxel (i=c, j=r, k). The geometry
is derived here from the affine alone (RAS -> LPS, IOP from the first two columns, PixelSpacing
[row spacing, column spacing] = [|col j|, |col i|], IPP from voxel (0, 0, k)), so a sheared affine
(slice direction not normal to the rows and columns) is a gantry-tilted series.

Usage: make-dicom-series.py in.nii.gz out_dir [--slope S] [--intercept I] [--unsigned]
       [--bits-stored N] [--junk-high-bits] [--reverse] [--implicit] [--enhanced]
       [--series-uid UID] [--extras]
"""
import argparse
import os

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2'
ENHANCED_CT = '1.2.840.10008.5.1.4.1.1.2.1'


def fmt(values):
    return [float(f'{v:.6f}') for v in values]


def patient_study(ds, study_uid):
    ds.PatientName = 'Phantom^Spleen'
    ds.PatientID = 'PHANTOM-0001'
    ds.PatientBirthDate = '19700101'
    ds.PatientSex = 'O'
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = '20260101'
    ds.StudyTime = '120000'
    ds.StudyID = '1'
    ds.AccessionNumber = 'ACC0001'
    ds.ReferringPhysicianName = ''
    ds.Manufacturer = 'pydicom fixture'


def new_file(path, sop_class, sop_uid, implicit):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(path, {}, file_meta=meta, preamble=b'\0' * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = implicit
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    return ds


def pixel_module(ds, rows, cols, args):
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = args.bits_stored
    ds.HighBit = args.bits_stored - 1
    ds.PixelRepresentation = 0 if args.unsigned else 1


def stored_values(hu, args):
    stored = np.round((hu - args.intercept) / args.slope)
    if not np.array_equal(stored * args.slope + args.intercept, hu):
        raise SystemExit('HU values are not representable with this slope/intercept')
    lo, hi = (0, 2 ** args.bits_stored - 1) if args.unsigned else (-(2 ** (args.bits_stored - 1)), 2 ** (args.bits_stored - 1) - 1)
    if stored.min() < lo or stored.max() > hi:
        raise SystemExit(f'stored values {stored.min()}..{stored.max()} do not fit {args.bits_stored} bits')
    stored = stored.astype(np.int64)
    if args.junk_high_bits:
        # Bits above BitsStored that a reader must mask away (overlay bits in old scanners).
        stored = (stored & (2 ** args.bits_stored - 1)) | (0xF000 & ~(2 ** args.bits_stored - 1) & 0xFFFF)
    return stored.astype(np.uint16 if args.unsigned or args.junk_high_bits else np.int16)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('nifti')
    p.add_argument('out')
    p.add_argument('--slope', type=float, default=1.0)
    p.add_argument('--intercept', type=float, default=0.0)
    p.add_argument('--unsigned', action='store_true')
    p.add_argument('--bits-stored', type=int, default=16)
    p.add_argument('--junk-high-bits', action='store_true')
    p.add_argument('--reverse', action='store_true', help='file names and InstanceNumber run against the slice position')
    p.add_argument('--implicit', action='store_true')
    p.add_argument('--enhanced', action='store_true')
    p.add_argument('--series-uid')
    p.add_argument('--study-uid')
    p.add_argument('--extras', action='store_true', help='add a localizer, a shorter derived series and non-DICOM files')
    args = p.parse_args()

    img = nib.load(args.nifti)
    hu = np.asarray(img.dataobj).astype(np.float64)
    a = img.affine.astype(np.float64)
    lps = np.diag([-1.0, -1.0, 1.0])
    col_i = lps @ a[:3, 0]
    col_j = lps @ a[:3, 1]
    col_k = lps @ a[:3, 2]
    origin = lps @ a[:3, 3]
    ni, nj, nk = hu.shape
    row_dir = col_i / np.linalg.norm(col_i)
    col_dir = col_j / np.linalg.norm(col_j)
    iop = fmt(list(row_dir) + list(col_dir))
    spacing = fmt([np.linalg.norm(col_j), np.linalg.norm(col_i)])
    normal = np.cross(row_dir, col_dir)
    thickness = abs(float(np.dot(col_k, normal)))
    stored = stored_values(hu, args)
    study_uid = args.study_uid or generate_uid()
    series_uid = args.series_uid or generate_uid()
    for_uid = generate_uid()
    os.makedirs(args.out, exist_ok=True)

    def common(ds, series_number):
        patient_study(ds, study_uid)
        ds.Modality = 'CT'
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ''
        ds.KVP = '120'
        ds.ContentDate = '20260101'
        ds.ContentTime = '120000'

    if args.enhanced:
        uid = generate_uid()
        path = os.path.join(args.out, 'enhanced.dcm')
        ds = new_file(path, ENHANCED_CT, uid, args.implicit)
        common(ds, 1)
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL', 'NONE']
        ds.InstanceNumber = 1
        ds.NumberOfFrames = nk
        pixel_module(ds, nj, ni, args)
        shared = Dataset()
        pm = Dataset()
        pm.PixelSpacing = spacing
        pm.SliceThickness = f'{thickness:.6f}'
        shared.PixelMeasuresSequence = [pm]
        po = Dataset()
        po.ImageOrientationPatient = iop
        shared.PlaneOrientationSequence = [po]
        pv = Dataset()
        pv.RescaleSlope = args.slope
        pv.RescaleIntercept = args.intercept
        pv.RescaleType = 'HU'
        shared.PixelValueTransformationSequence = [pv]
        ds.SharedFunctionalGroupsSequence = [shared]
        frames = []
        order = list(range(nk))[::-1] if args.reverse else list(range(nk))
        for k in order:
            f = Dataset()
            pp = Dataset()
            pp.ImagePositionPatient = fmt(origin + k * col_k)
            f.PlanePositionSequence = [pp]
            frames.append(f)
        ds.PerFrameFunctionalGroupsSequence = frames
        ds.PixelData = np.ascontiguousarray(np.stack([stored[:, :, k].T for k in order])).tobytes()
        ds.save_as(path, write_like_original=False)
        return

    for k in range(nk):
        uid = generate_uid()
        n = nk - k if args.reverse else k + 1
        path = os.path.join(args.out, f'IM{n:05d}')
        ds = new_file(path, CT_IMAGE, uid, args.implicit)
        common(ds, 1)
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
        ds.InstanceNumber = n
        ds.ImagePositionPatient = fmt(origin + k * col_k)
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = spacing
        ds.SliceThickness = f'{thickness:.6f}'
        pixel_module(ds, nj, ni, args)
        ds.RescaleSlope = args.slope
        ds.RescaleIntercept = args.intercept
        ds.RescaleType = 'HU'
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        ds.save_as(path, write_like_original=False)

    if args.extras:
        # A localizer (one slice), a derived series with fewer slices, and files that are not DICOM.
        nested = os.path.join(args.out, 'other', 'deeper')
        os.makedirs(nested, exist_ok=True)
        for name, image_type, count in (('scout', ['ORIGINAL', 'PRIMARY', 'LOCALIZER'], 1), ('mpr', ['DERIVED', 'SECONDARY', 'AXIAL'], 3)):
            s_uid = generate_uid()
            for k in range(count):
                uid = generate_uid()
                path = os.path.join(nested, f'{name}{k}.dcm')
                ds = new_file(path, CT_IMAGE, uid, args.implicit)
                patient_study(ds, study_uid)
                ds.Modality = 'CT'
                ds.SeriesInstanceUID = s_uid
                ds.SeriesNumber = 2 if name == 'scout' else 3
                ds.FrameOfReferenceUID = for_uid
                ds.ImageType = image_type
                ds.InstanceNumber = k + 1
                ds.ImagePositionPatient = fmt(origin + k * col_k)
                ds.ImageOrientationPatient = iop
                ds.PixelSpacing = spacing
                pixel_module(ds, 4, 4, args)
                ds.RescaleSlope = 1
                ds.RescaleIntercept = 0
                ds.PixelData = np.zeros((4, 4), np.uint16 if args.unsigned else np.int16).tobytes()
                ds.save_as(path, write_like_original=False)
        with open(os.path.join(args.out, 'README.txt'), 'w') as f:
            f.write('not DICOM\n')
        with open(os.path.join(args.out, 'other', 'DICOMDIR.bak'), 'wb') as f:
            f.write(b'\0' * 64)


if __name__ == '__main__':
    main()
