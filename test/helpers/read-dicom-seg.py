#!/usr/bin/python3
"""Reads a DICOM SEG back with pydicom into a mask on its source series' grid: the independent check.

Usage: read-dicom-seg.py seg.dcm source_dir out.raw
Writes the mask as uint8 in C order over (i, j, k) with i = column, j = Rows - 1 - row (dcm2niix's
layout), k = source slice in ascending order along the slice normal; each frame is placed by the
SOPInstanceUID (and frame number) it references, never by its position in the SEG. Prints JSON with
what it checked.
"""
import json
import os
import sys

import numpy as np
import pydicom


def main():
    seg_path, source_dir, out_path = sys.argv[1:4]
    seg = pydicom.dcmread(seg_path)
    series_uid = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    positions = {}
    iop = None
    for folder, _, names in os.walk(source_dir):
        for name in names:
            try:
                ds = pydicom.dcmread(os.path.join(folder, name))
            except Exception:
                continue
            if ds.get('SeriesInstanceUID') != series_uid:
                continue
            if 'PerFrameFunctionalGroupsSequence' in ds:
                iop = [float(v) for v in ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient]
                for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
                    positions[(ds.SOPInstanceUID, f + 1)] = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
            else:
                iop = [float(v) for v in ds.ImageOrientationPatient]
                positions[(ds.SOPInstanceUID, None)] = [float(v) for v in ds.ImagePositionPatient]
    normal = np.cross(iop[:3], iop[3:])
    keys = sorted(positions, key=lambda key: float(np.dot(positions[key], normal)))
    k_of = {key: k for k, key in enumerate(keys)}
    rows, cols = int(seg.Rows), int(seg.Columns)
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), rows, cols)
    mask = np.zeros((cols, rows, len(keys)), np.uint8)
    max_position_error = 0.0
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        key = (ref.ReferencedSOPInstanceUID, int(ref.ReferencedFrameNumber) if 'ReferencedFrameNumber' in ref else None)
        k = k_of[key]
        ipp = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        max_position_error = max(max_position_error, float(np.max(np.abs(np.subtract(ipp, positions[key])))))
        assert int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber) == 1
        mask[:, :, k] = frames[f].T[:, ::-1]
    mask.tofile(out_path)
    segment = seg.SegmentSequence[0]
    print(json.dumps({
        'frames': int(seg.NumberOfFrames),
        'segmentationType': seg.SegmentationType,
        'transferSyntax': str(seg.file_meta.TransferSyntaxUID),
        'category': segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
        'type': segment.SegmentedPropertyTypeCodeSequence[0].CodeValue,
        'algorithmType': segment.SegmentAlgorithmType,
        'algorithmName': segment.SegmentAlgorithmName,
        'seriesDescription': seg.SeriesDescription,
        'patientId': seg.PatientID,
        'patientName': str(seg.PatientName),
        'charset': seg.SpecificCharacterSet,
        'studyUid': seg.StudyInstanceUID,
        'seriesUid': seg.SeriesInstanceUID,
        'frameOfReferenceUid': seg.FrameOfReferenceUID,
        'maxPositionErrorMm': max_position_error,
    }))


if __name__ == '__main__':
    main()
