/** Photo libraries: scan folders of photos for faces, group them into people, name and export. */
export {
  LibraryDamagedError,
  LibraryDb,
  LibraryError,
  LIBRARY_FORMAT,
  checkPersonName,
  type Assignment,
  type ContentEntry,
  type FileEntry,
  type LibraryFace,
  type LibraryMeta,
  type StoredClusters,
  type UnreadableEntry,
} from './libraryDb';
export { repairLibrary, type RepairReport } from './repair';
export type { DamagedRange } from './recordLog';
export { scanFolder, listPhotos, type ScanOptions, type ScanProgress, type ScanReport } from './scan';
export { watchFolder, watchLoop, type WatchLoop, type WatchLoopOptions, type WatchOptions } from './watch';
export {
  clusterFaces,
  clusterLibrary,
  clusterSamples,
  matchKnown,
  nameCluster,
  nameFaces,
  peopleAnswer,
  unassignedFaces,
  type PeopleAnswer,
  type PeopleAnswerOptions,
} from './people';
export { exportCsv, exportLibrary, type ExportedPhoto, type LibraryExport } from './export';
export { decodePhoto, DEFAULT_MAX_SIDE, isPhotoFile, PhotoReadError, PHOTO_EXTENSIONS } from './photo';
export {
  librarySummary,
  peopleSummary,
  scanSummary,
  statusSummary,
  type LibrarySummary,
  type PersonSummary,
  type ScanSummary,
} from './summary';
