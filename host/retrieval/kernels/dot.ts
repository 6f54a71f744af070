/**
 * The dot-product kernel of VectorIndex (host/retrieval/vector-index.ts): our own trusted code,
 * loaded with plain WebAssembly (no Extism), one instance and one imported memory per index.
 *
 * Layout is the caller's: a query of `dim` f32 at `queryPtr`, `rows` rows of `dim` f32 each at
 * `matrixPtr` (row r at matrixPtr + r * dim * 4), and room for `rows` f32 scores at `outPtr`.
 * `dim` must be a multiple of 4 (callers pad rows and query with zeros) and every pointer 16-byte
 * aligned. The kernel allocates nothing and checks nothing: the caller owns the memory.
 */

/**
 * Writes the dot product of the query with each of `rows` rows to `outPtr`. Four rows per pass: each
 * query vector is loaded once for four rows, and the four accumulators are independent chains, so
 * their multiply-adds overlap. WebAssembly SIMD (as shipped in Node 20) has no fused multiply-add,
 * so it is a mul then an add, rounded twice, like the scalar loop it replaces.
 */
export function scores(queryPtr: usize, matrixPtr: usize, rows: i32, dim: i32, outPtr: usize): void {
  const stride = (<usize>dim) << 2;
  let row = 0;
  let rowPtr = matrixPtr;
  for (; row + 4 <= rows; row += 4) {
    const r1 = rowPtr + stride;
    const r2 = r1 + stride;
    const r3 = r2 + stride;
    let a = f32x4.splat(0);
    let b = f32x4.splat(0);
    let c = f32x4.splat(0);
    let d = f32x4.splat(0);
    for (let i: usize = 0; i < stride; i += 16) {
      const q = v128.load(queryPtr + i);
      a = f32x4.add(a, f32x4.mul(v128.load(rowPtr + i), q));
      b = f32x4.add(b, f32x4.mul(v128.load(r1 + i), q));
      c = f32x4.add(c, f32x4.mul(v128.load(r2 + i), q));
      d = f32x4.add(d, f32x4.mul(v128.load(r3 + i), q));
    }
    // Transpose-and-add: one vector holding the four horizontal sums (a, b, c, d), stored at once.
    const ab = f32x4.add(f32x4.shuffle(a, b, 0, 4, 1, 5), f32x4.shuffle(a, b, 2, 6, 3, 7));
    const cd = f32x4.add(f32x4.shuffle(c, d, 0, 4, 1, 5), f32x4.shuffle(c, d, 2, 6, 3, 7));
    v128.store(outPtr + ((<usize>row) << 2), f32x4.add(f32x4.shuffle(ab, cd, 0, 1, 4, 5), f32x4.shuffle(ab, cd, 2, 3, 6, 7)));
    rowPtr = r3 + stride;
  }
  for (; row < rows; row++) {
    let a = f32x4.splat(0);
    for (let i: usize = 0; i < stride; i += 16) a = f32x4.add(a, f32x4.mul(v128.load(rowPtr + i), v128.load(queryPtr + i)));
    const pairs = f32x4.add(a, f32x4.shuffle(a, a, 2, 3, 0, 1));
    store<f32>(outPtr + ((<usize>row) << 2), f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1));
    rowPtr += stride;
  }
}
