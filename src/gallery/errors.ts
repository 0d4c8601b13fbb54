/** A failed gallery operation whose message is meant for a person (bad name, unknown id, …). */
export class GalleryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GalleryError';
  }
}
