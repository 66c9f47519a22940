/**
 * The coded concepts of the spleen SEG, frozen (values checked against pydicom's PS3.16 concept
 * tables, pydicom/sr/_concepts_dict.py). SCT only: dciodvfy flags the retired "SRT" designator.
 */
export interface CodedConcept {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

/** Segmented property category (CID 7150). */
export const ANATOMICAL_STRUCTURE: CodedConcept = { CodeValue: '91723000', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Anatomical Structure' };
/** Segmented property type (CID 7166 / anatomic regions). */
export const SPLEEN: CodedConcept = { CodeValue: '78961009', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Spleen' };
/** Algorithm family (CID 7162). */
export const ARTIFICIAL_INTELLIGENCE: CodedConcept = { CodeValue: '123110', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Artificial Intelligence' };
/** Purpose of reference of each source image (CID 7202). */
export const SOURCE_IMAGE_FOR_PROCESSING: CodedConcept = {
  CodeValue: '121322',
  CodingSchemeDesignator: 'DCM',
  CodeMeaning: 'Source image for image processing operation',
};
/** Derivation (CID 7203). */
export const SEGMENTATION_DERIVATION: CodedConcept = { CodeValue: '113076', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Segmentation' };

export const SEGMENTATION_STORAGE = '1.2.840.10008.5.1.4.1.1.66.4';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
