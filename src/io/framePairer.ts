import type { DetectorPicture } from '../util/i420';

/** Frames (or pictures) that may wait for their partner before the two pipes count as out of step. */
const MAX_AHEAD = 3;

export interface UnpairedFrame {
  planes: Buffer;
  width: number;
  height: number;
}

/**
 * Pairs each frame from ffmpeg's stdout with its detector picture from the second pipe, by order. ffmpeg
 * writes exactly one picture per frame, the picture first, but Node reads the two pipes independently, so
 * either side can be read a little ahead of the other. More than a few of one side waiting means they no
 * longer correspond one for one (ffmpeg should never do that): pairing then stops for good and frames go on
 * without pictures, which costs the detector its shortcut and never gives it the picture of another moment.
 */
export class FramePairer {
  private readonly frames: UnpairedFrame[] = [];
  private readonly pictures: DetectorPicture[] = [];
  private outOfStep = false;

  constructor(
    private readonly deliver: (frame: UnpairedFrame, picture?: DetectorPicture) => void,
    private readonly onOutOfStep: (why: string) => void,
  ) {}

  frame(frame: UnpairedFrame): void {
    if (this.outOfStep) {
      this.deliver(frame);
      return;
    }
    this.frames.push(frame);
    this.pair();
  }

  picture(picture: DetectorPicture): void {
    if (this.outOfStep) return;
    this.pictures.push(picture);
    this.pair();
  }

  /** Stops pairing for good, saying why: the frames waiting and all later ones go on without pictures. */
  giveUp(why: string): void {
    if (this.outOfStep) return;
    this.outOfStep = true;
    this.onOutOfStep(`${why}; frames go on without detector pictures`);
    this.flush();
  }

  /** True once pairing has stopped. */
  get givenUp(): boolean {
    return this.outOfStep;
  }

  /** Delivers the frames still waiting, without pictures: the stream has ended. */
  flush(): void {
    for (const frame of this.frames.splice(0)) this.deliver(frame);
    this.pictures.length = 0;
  }

  /** Forgets everything waiting (the process was stopped). */
  clear(): void {
    this.frames.length = 0;
    this.pictures.length = 0;
  }

  private pair(): void {
    while (this.frames.length > 0 && this.pictures.length > 0) {
      this.deliver(this.frames.shift()!, this.pictures.shift()!);
    }
    const ahead = Math.max(this.frames.length, this.pictures.length);
    if (ahead <= MAX_AHEAD) return;
    this.giveUp(
      `${ahead} ${this.frames.length > 0 ? 'frames' : 'detector pictures'} came without their partners`,
    );
  }
}
