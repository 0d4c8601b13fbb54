import { cosine } from '../models/embedder';
import { ambiguityMarginOf } from '../models/similarityScale';
import { UNKNOWN, type Candidate, type Identity } from '../types';

export interface MatchOptions {
  /** Similarity at or above which the best identity is accepted; below it the face is `Unknown`. */
  threshold: number;
  /** How many identities to list in `topK`. */
  topK?: number;
  /**
   * A best match whose lead over the runner-up is below this is `ambiguous`: not named, since a
   * wrong name is worse than none. Unset: the gallery model's (`SimilarityScale.ambiguityMargin`:
   * 0.005 for the default pack's embedder, 0.03 for FaceRes and models of their own), or none for
   * a `MemoryGallery` made without a model id; 0 turns it off.
   */
  ambiguityMargin?: number;
}

interface Person {
  embeddings: Float32Array[];
  meta: Record<string, unknown>;
}

/**
 * Identities with any number of embeddings each, searched exhaustively in memory. An identity's
 * score for a query is its best-matching embedding, so varied photos of a person all help.
 */
export class MemoryGallery {
  private readonly people = new Map<string, Person>();
  private dim: number | undefined;

  constructor(readonly modelId?: string) {}

  get dimension(): number | undefined {
    return this.dim;
  }

  get size(): number {
    return this.people.size;
  }

  names(): string[] {
    return [...this.people.keys()].sort();
  }

  embeddingsOf(name: string): Float32Array[] {
    return [...(this.people.get(name)?.embeddings ?? [])];
  }

  add(name: string, embedding: Float32Array, meta: Record<string, unknown> = {}): void {
    if (typeof name !== 'string' || name.trim() === '')
      throw new Error('identity name must be a non-empty string');
    if (name === UNKNOWN) throw new Error(`'${UNKNOWN}' is reserved for faces that match nobody`);
    if (!(embedding instanceof Float32Array) || embedding.length === 0) {
      throw new Error('embedding must be a non-empty Float32Array');
    }
    if (this.dim !== undefined && embedding.length !== this.dim) {
      throw new Error(`embedding has ${embedding.length} dimensions, this gallery holds ${this.dim}`);
    }
    if (!embedding.every(Number.isFinite)) throw new Error('embedding contains non-finite values');
    this.dim = embedding.length;
    const person = this.people.get(name) ?? { embeddings: [], meta: {} };
    person.embeddings.push(embedding);
    Object.assign(person.meta, meta);
    this.people.set(name, person);
  }

  remove(name: string): boolean {
    return this.people.delete(name);
  }

  /** Rank every identity by its best embedding's similarity to `query`. */
  rank(query: Float32Array, exclude?: (name: string, index: number) => boolean): Candidate[] {
    if (this.dim !== undefined && query.length !== this.dim) {
      throw new Error(`query has ${query.length} dimensions, this gallery holds ${this.dim}`);
    }
    const ranked: Candidate[] = [];
    for (const [name, person] of this.people) {
      let best = -Infinity;
      person.embeddings.forEach((e, i) => {
        if (exclude?.(name, i)) return;
        const s = cosine(query, e);
        if (s > best) best = s;
      });
      if (best > -Infinity) ranked.push({ name, similarity: best });
    }
    return ranked.sort((a, b) => b.similarity - a.similarity);
  }

  match(query: Float32Array, options: MatchOptions): Identity {
    return identityFromRanking(this.rank(query), withModelMargin(options, this.modelId));
  }
}

/** The options with the model's default runner-up margin where they set none. */
export function withModelMargin<T extends MatchOptions>(options: T, modelId: string | undefined): T {
  if (options.ambiguityMargin !== undefined || modelId === undefined) return options;
  return { ...options, ambiguityMargin: ambiguityMarginOf(modelId) };
}

/** Turn a ranking into an identity decision: threshold, margin, ambiguity and top-k. */
export function identityFromRanking(ranked: Candidate[], options: MatchOptions): Identity {
  const first = ranked[0];
  if (!first) return { name: UNKNOWN, similarity: 0, margin: 0, topK: [] };
  const margin = ranked.length > 1 ? first.similarity - ranked[1].similarity : 1;
  const accepted = first.similarity >= options.threshold;
  const checked = accepted && options.ambiguityMargin !== undefined;
  const ambiguous = checked && margin < (options.ambiguityMargin as number);
  // An ambiguous face lists at least the two it could not tell apart, whatever topK asks.
  const topK = ranked.slice(0, Math.max(ambiguous ? 2 : 1, options.topK ?? 3));
  const identity: Identity = {
    name: accepted && !ambiguous ? first.name : UNKNOWN,
    similarity: first.similarity,
    margin,
    topK,
  };
  if (checked) identity.ambiguous = ambiguous;
  return identity;
}
