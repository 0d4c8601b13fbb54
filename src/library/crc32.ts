/**
 * CRC-32 (IEEE 802.3, as zip and PNG use it), with what finding a record in damaged bytes needs: the
 * checksum of any stretch of bytes from the checksums of the data before it and up to its end
 * (the "combine" of zlib, here run backwards), so that every byte of a file can be tried as the
 * start of a record without checksumming each candidate's body again.
 */

const POLY = 0xedb88320;

/** The byte-at-a-time table: `state = CRC32_TABLE[(state ^ byte) & 0xff] ^ (state >>> 8)`. */
export const CRC32_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  return crc32Finish(crc32Update(CRC32_START, bytes, 0, bytes.length));
}

/** The running state before any byte; {@link crc32Finish} turns a state into the CRC of what was fed. */
export const CRC32_START = 0xffffffff;

/** The state after feeding `bytes[from..to)` to `state`. */
export function crc32Update(state: number, bytes: Uint8Array, from: number, to: number): number {
  let c = state;
  for (let i = from; i < to; i++) c = CRC32_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

export function crc32Finish(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** a·b modulo the CRC polynomial, bits reflected as the CRC keeps them. */
function multiplyModPoly(a: number, b: number): number {
  let product = 0;
  for (let bit = 0x80000000; bit !== 0; bit >>>= 1) {
    if (a & bit) product ^= b;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) modulo the polynomial, for k = 0..31: the steps of shifting a CRC by a length. */
const X_POW_2K = (() => {
  const table = new Uint32Array(32);
  table[0] = 0x40000000; // x^1
  for (let k = 1; k < 32; k++) table[k] = multiplyModPoly(table[k - 1], table[k - 1]);
  return table;
})();

/** x^(8·bytes): what the CRC of earlier data is multiplied by when `bytes` more bytes follow. */
function shiftFor(bytes: number): number {
  let p = 0x80000000; // x^0
  let k = 3; // 8 = 2^3 bits a byte
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) p = multiplyModPoly(X_POW_2K[k & 31], p);
  }
  return p;
}

/**
 * The CRC of `A ‖ B` from the CRC of A, the CRC of B and B's length. Turned around, the CRC of B is
 * `crcOfWhole ^ crc32Combine(crcOfA, 0, lengthOfB)`.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multiplyModPoly(shiftFor(lengthB), crcA) ^ crcB) >>> 0;
}
