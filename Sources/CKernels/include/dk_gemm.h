// dk_gemm: single-precision GEMM against a weight packed once at load time.
//
// C[M, N] = A[M, K] · Wᵀ (+ C) for a PyTorch-layout weight W [N, K] (row-major), the
// product of every Linear layer. W is packed once into micro-panels of 16 output features
// (k-major inside a panel: for each k, 16 consecutive floats; zero-padded past N); A is
// packed per call into 6-row panels in a caller-provided workspace. The AVX2+FMA build is
// a BLIS-style 6×16 micro-kernel chosen at run time (`__builtin_cpu_supports`); the
// portable `_ref` twin reads the same packed format. Single-threaded: the caller splits
// rows (or 16-column panels) over its threads. Shapes: M rows of activations, N output
// features, K input features; lda/ldc are row strides in floats (lda >= K, ldc >= N).
// Training adds: A given transposed (`dk_gemm_packed_at`), packing from a strided or a
// transposed source, and `dk_gemm`, a one-call op(A)·op(B) on per-thread buffers.
#ifndef DISTILLERY_DK_GEMM_H
#define DISTILLERY_DK_GEMM_H

#ifdef __cplusplus
extern "C" {
#endif

/// Output features per packed panel; a panel holds K·16 floats.
#define DK_GEMM_PANEL 16
/// Rows of A per M block (a multiple of 6 and 12): each block streams every weight panel
/// once, so a product of at most this many rows reads its weight once.
#define DK_GEMM_M_BLOCK 144

/// Floats of the packed buffer for a weight [N, K]: ceil(N / 16) · 16 · K.
long dk_packed_floats(long N, long K);

/// Packs W [N, K] (row-major) into `packed` (dk_packed_floats(N, K) floats; 64-byte
/// alignment recommended). Panel p, element (k, j) holds W[16p + j, k], 0 past N.
void dk_pack_weight(const float *W, long N, long K, float *packed);

/// dk_pack_weight for a W whose rows are `ldw` >= K floats apart (a column block of a
/// wider matrix, e.g. one attention head).
void dk_pack_weight_ld(const float *W, long ldw, long N, long K, float *packed);

/// Packs W [N, K] given its transpose Wt [K, N] (rows `ldw` >= N floats apart): the
/// packed buffer equals dk_pack_weight(W). Each k of a panel is a contiguous 16-float copy.
/// Packing N in parts at multiples of 16 (Wt + n0, packed + n0·K) gives the same buffer.
void dk_pack_weight_transposed(const float *Wt, long ldw, long N, long K, float *packed);

/// Floats of the per-call workspace dk_gemm_packed needs for M rows and K.
long dk_gemm_workspace_floats(long M, long K);

/// C[M, N] = A[M, K] · Wᵀ, or C += A · Wᵀ when `accumulate` != 0, W given packed.
/// `workspace` holds dk_gemm_workspace_floats(M, K) floats owned by the calling thread.
/// Every C[i, j] is computed by the same operations however M is split, or N at
/// multiples of 16 (per K block of at most 384: a float sum over k from zero, then added
/// to C), so results depend only on the inputs, not on the caller's thread split.
/// Dispatches to AVX-512 or AVX2+FMA (identical results: same FMA chains) when available;
/// the `_ref` twin differs only by FMA rounding.
void dk_gemm_packed(long M, long N, long K, const float *A, long lda, const float *packed,
                    float *C, long ldc, int accumulate, float *workspace);
/// Portable C of the same product over the same packed format (no workspace needed).
void dk_gemm_packed_ref(long M, long N, long K, const float *A, long lda, const float *packed,
                        float *C, long ldc, int accumulate, float *workspace);

/// C[M, N] = bias + A · Wᵀ, bias [N] broadcast over the rows: bit for bit what filling
/// each C row with the bias and calling dk_gemm_packed with accumulate gives, without that
/// extra pass over C (the bias is added where C would be loaded).
void dk_gemm_packed_bias(long M, long N, long K, const float *A, long lda, const float *packed,
                         const float *bias, float *C, long ldc, float *workspace);
void dk_gemm_packed_bias_ref(long M, long N, long K, const float *A, long lda, const float *packed,
                             const float *bias, float *C, long ldc, float *workspace);

/// C[M, N] = GELU(bias + A · Wᵀ), exact-erf GELU: bit for bit dk_gemm_packed_bias then
/// dk_bias_gelu over C on the same path. The AVX-512 build applies GELU in the GEMM's
/// store (no second pass over C); the other paths run the two kernels one after the other.
void dk_gemm_packed_bias_gelu(long M, long N, long K, const float *A, long lda, const float *packed,
                              const float *bias, float *C, long ldc, float *workspace);
void dk_gemm_packed_bias_gelu_ref(long M, long N, long K, const float *A, long lda, const float *packed,
                                  const float *bias, float *C, long ldc, float *workspace);

/// dk_gemm_packed with A given transposed: At [K, M] (rows `lda` >= M floats apart) holds
/// A(i, k) at At[k·lda + i]. Same packed W, workspace, blocking and determinism.
void dk_gemm_packed_at(long M, long N, long K, const float *At, long lda, const float *packed,
                       float *C, long ldc, int accumulate, float *workspace);
void dk_gemm_packed_at_ref(long M, long N, long K, const float *At, long lda, const float *packed,
                           float *C, long ldc, int accumulate, float *workspace);

/// C[M, N] = op(A) · op(B) (+ C when `accumulate`), single-threaded, BLAS-like and
/// row-major: op(A) is A [M, K] or, with transA, Aᵀ of A stored [K, M]; op(B) is B
/// [K, N] or, with transB, Bᵀ of B stored [N, K]. op(B) is packed into this thread's
/// DK_SLOT_GEMM_PACKED buffer, then dk_gemm_packed(_at) runs; results are those of
/// dk_gemm_packed (deterministic). Returns 0, or -1 when a buffer could not be allocated.
int dk_gemm(int transA, int transB, long M, long N, long K, const float *A, long lda,
            const float *B, long ldb, float *C, long ldc, int accumulate);
/// The same product by three plain loops (a float sum over k in order per element).
void dk_gemm_ref(int transA, int transB, long M, long N, long K, const float *A, long lda,
                 const float *B, long ldb, float *C, long ldc, int accumulate);

/// Returns 1 when dk_gemm_packed uses the AVX2+FMA micro-kernel, 0 for the portable one.
int dk_gemm_has_avx2(void);

/// A 64-byte aligned buffer of at least `floats` floats private to the calling thread,
/// reused across calls (grown when too small) and freed when the thread exits. Meant for
/// the dk_gemm_packed workspace of pool threads; NULL only when allocation fails.
float *dk_gemm_thread_workspace(long floats);

/// Per-thread buffer slots of dk_thread_buffer.
#define DK_THREAD_BUFFERS 4
/// Slot of the dk_gemm_packed workspace (dk_gemm_thread_workspace).
#define DK_SLOT_GEMM_WORKSPACE 0
/// Slot dk_gemm packs op(B) into.
#define DK_SLOT_GEMM_PACKED 1
/// First slot free for callers (per-job scratch such as an attention head's [T, T] block).
#define DK_SLOT_USER 2

/// A 64-byte aligned buffer of at least `floats` floats in slot `slot` (0 ..<
/// DK_THREAD_BUFFERS) private to the calling thread, grown when too small (contents are
/// then lost) and freed when the thread exits; NULL when allocation fails.
float *dk_thread_buffer(int slot, long floats);

#ifdef __cplusplus
}
#endif
#endif
