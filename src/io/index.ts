/** Video ingest: files, RTSP cameras and V4L2 devices as RxJS streams of frames, via ffmpeg. */
export {
  CameraSource,
  fileFrames,
  rtspFrames,
  deviceFrames,
  backoffDelay,
  type CameraOptions,
  type ReconnectOptions,
  type CameraEvent,
  type ConnectingEvent,
  type UpEvent,
  type DownEvent,
  type DownCause,
  type ReconnectingEvent,
  type StalledEvent,
  type DroppedEvent,
  type LogEvent,
  type EndEvent,
} from './cameraSource';
export { CameraLog, type CameraLogLine } from './cameraLog';
export { FailureLog, type FailureLogOptions } from './failureLog';
export { ffmpegArgs, type CameraInput, type OutputOptions } from './ffmpegArgs';
export {
  CameraError,
  ffmpegPath,
  ffmpegVersion,
  FFMPEG_ENV,
  type FfmpegChoice,
  type FfmpegVersion,
} from './ffmpeg';
export { runningFfmpegCount, type FfmpegLogLevel } from './ffmpegProcess';
export { latestFrame, type LatestFrameOptions } from './latestFrame';
export { maskUrl, SecretMasker } from './maskUrl';
