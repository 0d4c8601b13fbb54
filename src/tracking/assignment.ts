/**
 * Optimal linear assignment (Kuhn–Munkres) on a rectangular cost matrix, with a cost threshold
 * above which a pair is never made.
 *
 * The solver is the shortest-augmenting-path form of the Hungarian method (the augmentation step
 * of Jonker and Volgenant): rows enter one at a time, and each finds the cheapest alternating path
 * to a free column under reduced costs c − u − v kept non-negative by the dual potentials u, v.
 * It is O(n²·m), exact, and needs no tuning; the matrices of a face tracker are rarely over 20×20.
 *
 * The threshold works as in ByteTrack's use of `lapjv` with `cost_limit`: the matrix is extended so
 * that leaving a row and a column both unassigned costs exactly `maxCost`. The solution then
 * minimises Σ (c_ij − maxCost) over the pairs made, so a pair is made only when it is cheaper than
 * the limit (one at exactly the limit is worth nothing and is not made), and a cheap pair is never
 * given up for an expensive one just to match more rows.
 */

export interface Assignment {
  /** [row, column] pairs, by increasing row. */
  matches: [number, number][];
  unmatchedRows: number[];
  unmatchedCols: number[];
}

/** Row-major costs with explicit sizes, so that 0×m and n×0 matrices keep their other size. */
export interface CostMatrix {
  rows: number;
  cols: number;
  data: ArrayLike<number>;
}

/**
 * Pairs rows with columns at least total cost. Every entry must be a number: `Infinity` means
 * "never pair these" (a gate), NaN and `-Infinity` are errors. With `maxCost` (default `Infinity`),
 * only pairs cheaper than it are made and the objective is as described above; without
 * it, as many pairs as possible are made (min(rows, cols) unless gates forbid it), at least cost.
 */
export function linearAssignment(
  cost: CostMatrix | readonly ArrayLike<number>[],
  maxCost = Infinity,
): Assignment {
  const c = toCostMatrix(cost);
  if (Number.isNaN(maxCost) || maxCost === -Infinity)
    throw new RangeError(`maxCost must be a number or Infinity`);
  const { rows: n, cols: m, data } = c;
  for (let i = 0; i < n * m; i++) {
    const v = data[i];
    if (typeof v !== 'number' || Number.isNaN(v) || v === -Infinity) {
      throw new RangeError(
        `cost[${Math.floor(i / m)}][${i % m}] is ${v}: costs must be numbers (Infinity forbids a pair)`,
      );
    }
  }
  const rowToCol = maxCost === Infinity ? assignAll(data, n, m) : assignWithLimit(data, n, m, maxCost);
  const matches: [number, number][] = [];
  const colUsed = new Uint8Array(m);
  const unmatchedRows: number[] = [];
  for (let i = 0; i < n; i++) {
    const j = rowToCol[i];
    // The solver may pair through a forbidden or over-limit entry only when nothing else fits the
    // cardinality; such a pair is no pair.
    if (j >= 0 && data[i * m + j] < maxCost && data[i * m + j] !== Infinity) {
      matches.push([i, j]);
      colUsed[j] = 1;
    } else unmatchedRows.push(i);
  }
  const unmatchedCols: number[] = [];
  for (let j = 0; j < m; j++) if (!colUsed[j]) unmatchedCols.push(j);
  return { matches, unmatchedRows, unmatchedCols };
}

function toCostMatrix(cost: CostMatrix | readonly ArrayLike<number>[]): CostMatrix {
  if (Array.isArray(cost)) {
    const rows = cost.length;
    const cols = rows === 0 ? 0 : cost[0].length;
    const data = new Float64Array(rows * cols);
    cost.forEach((row: ArrayLike<number>, i: number) => {
      if (row.length !== cols)
        throw new RangeError(`cost row ${i} has ${row.length} entries, row 0 has ${cols}`);
      for (let j = 0; j < cols; j++) data[i * cols + j] = row[j];
    });
    return { rows, cols, data };
  }
  const c = cost as CostMatrix;
  if (!Number.isInteger(c.rows) || !Number.isInteger(c.cols) || c.rows < 0 || c.cols < 0) {
    throw new RangeError(`cost matrix sizes must be non-negative integers, got ${c.rows}×${c.cols}`);
  }
  if (c.data.length !== c.rows * c.cols) {
    throw new RangeError(
      `cost matrix ${c.rows}×${c.cols} needs ${c.rows * c.cols} entries, got ${c.data.length}`,
    );
  }
  return c;
}

/**
 * Thresholded assignment on the extended square matrix of size (n + m):
 *
 *   [ C   D ]   D: n×n, every entry maxCost / 2 (row i stays unassigned)
 *   [ E   0 ]   E: m×m, every entry maxCost / 2 (column j stays unassigned)
 *
 * A real pair (i, j) competes with leaving both free, which costs maxCost / 2 twice. Entries above
 * the limit are replaced by a finite value above it: they can never win, and the potentials stay
 * finite. Rows and columns without a single entry under the limit are left out beforehand, since
 * they can only stay unassigned, which keeps the matrix small when most pairs are gated.
 */
function assignWithLimit(data: ArrayLike<number>, n: number, m: number, limit: number): Int32Array {
  const rowToCol = new Int32Array(n).fill(-1);
  const rows: number[] = [];
  const colOk = new Uint8Array(m);
  for (let i = 0; i < n; i++) {
    let any = false;
    for (let j = 0; j < m; j++) {
      if (data[i * m + j] <= limit) {
        any = true;
        colOk[j] = 1;
      }
    }
    if (any) rows.push(i);
  }
  const cols: number[] = [];
  for (let j = 0; j < m; j++) if (colOk[j]) cols.push(j);
  const nr = rows.length;
  const nc = cols.length;
  if (nr === 0) return rowToCol;
  const size = nr + nc;
  const half = limit / 2;
  const above = limit + Math.max(1, Math.abs(limit));
  const ext = new Float64Array(size * size);
  for (let a = 0; a < size; a++) {
    for (let b = 0; b < size; b++) {
      let v: number;
      if (a < nr && b < nc) {
        const x = data[rows[a] * m + cols[b]];
        v = x <= limit ? x : above;
      } else if (a < nr || b < nc) v = half;
      else v = 0;
      ext[a * size + b] = v;
    }
  }
  const assigned = hungarian(ext, size, size);
  for (let a = 0; a < nr; a++) {
    const b = assigned[a];
    if (b < nc) rowToCol[rows[a]] = cols[b];
  }
  return rowToCol;
}

/**
 * Maximum-cardinality assignment at least cost. Forbidden (infinite) entries get a finite cost
 * larger than any assignment of allowed entries can total, so the solver uses one only when the
 * cardinality cannot be reached otherwise (and the caller drops it).
 */
function assignAll(data: ArrayLike<number>, n: number, m: number): Int32Array {
  const rowToCol = new Int32Array(n).fill(-1);
  if (n === 0 || m === 0) return rowToCol;
  let maxAbs = 0;
  for (let i = 0; i < n * m; i++) if (data[i] !== Infinity) maxAbs = Math.max(maxAbs, Math.abs(data[i]));
  const forbidden = 2 * (Math.min(n, m) + 1) * (maxAbs + 1);
  // The solver wants rows ≤ columns; transpose otherwise.
  const transpose = n > m;
  const r = transpose ? m : n;
  const k = transpose ? n : m;
  const c = new Float64Array(r * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const v = data[i * m + j];
      c[transpose ? j * k + i : i * k + j] = v === Infinity ? forbidden : v;
    }
  }
  const assigned = hungarian(c, r, k);
  for (let a = 0; a < r; a++) {
    if (transpose) rowToCol[assigned[a]] = a;
    else rowToCol[a] = assigned[a];
  }
  return rowToCol;
}

/**
 * Hungarian method with potentials for r ≤ k: every row gets a distinct column, at least total
 * cost. Returns the column of each row. Indices inside are 1-based, with column 0 a virtual start
 * that holds the row being inserted.
 */
function hungarian(c: Float64Array, r: number, k: number): Int32Array {
  const u = new Float64Array(r + 1);
  const v = new Float64Array(k + 1);
  const owner = new Int32Array(k + 1); // row (1-based) holding each column, 0 when free
  const previous = new Int32Array(k + 1); // the column before each on the current alternating path
  const slack = new Float64Array(k + 1);
  const visited = new Uint8Array(k + 1);
  for (let row = 1; row <= r; row++) {
    owner[0] = row;
    let col = 0;
    slack.fill(Infinity);
    visited.fill(0);
    // Dijkstra over columns with reduced costs until a free column is reached.
    do {
      visited[col] = 1;
      const i = owner[col];
      let delta = Infinity;
      let next = 0;
      for (let j = 1; j <= k; j++) {
        if (visited[j]) continue;
        const reduced = c[(i - 1) * k + (j - 1)] - u[i] - v[j];
        if (reduced < slack[j]) {
          slack[j] = reduced;
          previous[j] = col;
        }
        if (slack[j] < delta) {
          delta = slack[j];
          next = j;
        }
      }
      // Shifting the potentials by delta makes the cheapest frontier edge tight, keeping every
      // reduced cost non-negative and those on the tree at zero.
      for (let j = 0; j <= k; j++) {
        if (visited[j]) {
          u[owner[j]] += delta;
          v[j] -= delta;
        } else slack[j] -= delta;
      }
      col = next;
    } while (owner[col] !== 0);
    // Flip the alternating path back to the start.
    do {
      const before = previous[col];
      owner[col] = owner[before];
      col = before;
    } while (col !== 0);
  }
  const rowToCol = new Int32Array(r).fill(-1);
  for (let j = 1; j <= k; j++) if (owner[j] > 0) rowToCol[owner[j] - 1] = j - 1;
  return rowToCol;
}
