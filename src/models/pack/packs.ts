/** A detector, an optional landmarker that refines its five points, and an embedder. */
export interface PackSpec {
  detector: string;
  landmarker?: string;
  embedder: string;
}

/**
 * The combinations measured in models/README.md; `default` is the best of them. `mesh` adds FaceMesh's
 * points (best on greyscale faces, about 4 ms more per face and frame); `faceres` is the default of 0.1 (kept
 * for galleries enrolled with it); `faceapi` names the default's models.
 */
export const PACKS: Record<string, PackSpec> = {
  default: { detector: 'human-blazeface', embedder: 'faceapi-recognition' },
  faceres: { detector: 'human-blazeface', embedder: 'human-faceres' },
  mesh: { detector: 'human-blazeface', landmarker: 'human-facemesh', embedder: 'faceapi-recognition' },
  faceapi: { detector: 'human-blazeface', embedder: 'faceapi-recognition' },
};

/** The packs whose embedder is `modelId`, `default` first: what a gallery of that model needs. */
export function packsWithEmbedder(modelId: string): string[] {
  return Object.entries(PACKS)
    .filter(([, spec]) => spec.embedder === modelId)
    .map(([name]) => name);
}

/**
 * Where a stored file's model is still the embedder of a built-in pack, the words that say which pack
 * reads it: after the default changed, that is the way back. Empty for other models.
 */
export function packHint(modelId: string): string {
  const packs = packsWithEmbedder(modelId);
  if (packs.length === 0) return '';
  const names = packs.map((p) => `'${p}'`).join(' or ');
  return ` (to keep using this file, choose the model pack ${names}; or enrol the people again in a new file)`;
}
