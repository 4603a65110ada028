// kernels_bench: single-thread throughput of the CKernels GEMMs (fp32 packed, int8, int4,
// bf16) on the MiniLM-L6 linear-layer shapes, on the path DISTILLERY_KERNELS selects.
//
// Build and run (benchmarks/kernels_bench.sh does both, for every path the CPU has):
//   clang -O3 -ISources/CKernels/include benchmarks/kernels_bench.c Sources/CKernels/*.c \
//         -lm -lpthread -o /tmp/kernels_bench && DISTILLERY_KERNELS=avx512 /tmp/kernels_bench
// Prints, per shape M×N×K, G multiply-adds×2 per second (GFLOP/s for fp32/bf16, G ops/s
// for int8/int4), best of a few timed repetitions of ≥ 0.2 s. Optional argument: a
// comma-separated subset of fp32,int8,int4,bf16,int8b,dq8,dq4,dqbf. int8b is the kernel
// int8 models run when K is a multiple of 32 (activation scales per block of 32); dq8 / dq4
// / dqbf are the same int8 / int4-g32 / bf16 weights on the dequantizing route
// (dk_dq_gemm: dequantized slices into the fp32 GEMM, fp32 activations).
// The argument `ops` instead times the encoder's other kernels at MiniLM's sizes: residual
// + bias + LayerNorm and bias + GELU in ns per element, one attention head (128 tokens,
// 32 dimensions, 100 of them attendable) in µs.
#include "ckernels.h"
#include "dk_gemm.h"
#include "dk_quant.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static float frand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return (float)(*s >> 8) / (1 << 24) * 2 - 1; }
static void *amalloc(long bytes) { return aligned_alloc(64, (size_t)((bytes + 63) / 64 * 64)); }

enum { FP32, INT8, INT4, BF16, INT8B, DQ8, DQ4, DQBF, KINDS };
static const char *names[] = {"fp32", "int8", "int4-g32", "bf16", "int8b", "dq8", "dq4", "dqbf"};

static double run(int kind, long M, long N, long K) {
    unsigned s = 1;
    float *A = amalloc(M * K * 4), *C = amalloc(M * N * 4), *W = amalloc(N * K * 4), *bias = amalloc(N * 4);
    float *scale = amalloc(N * K / 32 * 4 + 64);
    for (long i = 0; i < M * K; i++) A[i] = frand(&s);
    for (long i = 0; i < N * K; i++) W[i] = frand(&s);
    for (long i = 0; i < N; i++) bias[i] = frand(&s);
    void *packed = NULL, *ws = NULL;
    int8_t *q = amalloc(N * K);
    if (kind == FP32) {
        packed = amalloc(dk_packed_floats(N, K) * 4);
        dk_pack_weight(W, N, K, packed);
        ws = amalloc(dk_gemm_workspace_floats(M, K) * 4);
    } else if (kind == INT8) {
        dk_q8_quantize_rows(W, N, K, K, 0, q, scale);
        packed = amalloc(dk_q8_packed_bytes(N, K));
        dk_q8_pack(q, N, K, packed);
        ws = amalloc(dk_q8_workspace_bytes(M, K));
    } else if (kind == INT8B || kind == DQ8) {
        dk_q8_quantize_rows(W, N, K, K, 0, q, scale);
        packed = amalloc(dk_q8b_packed_bytes(N, K));
        dk_q8b_pack(q, N, K, packed);
        ws = amalloc(kind == DQ8 ? dk_dq_workspace_bytes(M, K) : dk_q8b_workspace_bytes(M, K));
    } else if (kind == INT4 || kind == DQ4) {
        uint8_t *nib = amalloc(N * K / 2);
        for (long i = 0; i < N * K / 2; i++) nib[i] = (uint8_t)(s = s * 1664525u + 1013904223u) >> 3;
        for (long i = 0; i < N * K / 32; i++) scale[i] = 0.01f;
        packed = amalloc(dk_q4_packed_bytes(N, K, 32));
        dk_q4_pack(nib, scale, NULL, N, K, 32, packed);
        ws = amalloc(kind == DQ4 ? dk_dq_workspace_bytes(M, K) : dk_q8_workspace_bytes(M, K));
        free(nib);
    } else {
        uint16_t *h = amalloc(N * K * 2);
        dk_f32_to_bf16(W, h, N * K);
        packed = amalloc(dk_bf16_packed_bytes(N, K));
        dk_bf16_pack(h, N, K, packed);
        ws = amalloc(kind == DQBF ? dk_dq_workspace_bytes(M, K) : dk_bf16_workspace_bytes(M, K));
        free(h);
    }
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        long calls = 0;
        double t0 = now(), t;
        do {
            if (kind == FP32) dk_gemm_packed_bias(M, N, K, A, K, packed, bias, C, N, ws);
            else if (kind == INT8) dk_q8_gemm(M, N, K, A, K, packed, scale, bias, C, N, 0, DK_EPILOGUE_NONE, ws);
            else if (kind == INT4) dk_q4_gemm(M, N, K, 32, A, K, packed, bias, C, N, 0, DK_EPILOGUE_NONE, ws);
            else if (kind == INT8B) dk_q8b_gemm(M, N, K, A, K, packed, scale, bias, C, N, DK_EPILOGUE_NONE, ws);
            else if (kind == DQ8) dk_dq_gemm(DK_DQ_Q8B, M, N, K, 0, A, K, packed, scale, bias, C, N, ws);
            else if (kind == DQ4) dk_dq_gemm(DK_DQ_Q4, M, N, K, 32, A, K, packed, NULL, bias, C, N, ws);
            else if (kind == DQBF) dk_dq_gemm(DK_DQ_BF16, M, N, K, 0, A, K, packed, NULL, bias, C, N, ws);
            else dk_bf16_gemm(M, N, K, A, K, packed, bias, C, N, DK_EPILOGUE_NONE, ws);
            calls++;
        } while ((t = now() - t0) < 0.2);
        if (t / calls < best) best = t / calls;
    }
    free(A); free(C); free(W); free(bias); free(scale); free(packed); free(ws); free(q);
    return 2.0 * M * N * K / best * 1e-9;
}

/// Best of 7 timings of `reps` calls of `call`, in seconds per call.
#define BEST_OF(reps, call) ({                                              \
    double best_ = 1e30;                                                    \
    for (int t_ = 0; t_ < 7; t_++) {                                        \
        double s_ = now();                                                  \
        for (long r_ = 0; r_ < (reps); r_++) { call; }                      \
        double e_ = (now() - s_) / (reps);                                  \
        if (e_ < best_) best_ = e_;                                         \
    }                                                                       \
    best_; })

static void ops(void) {
    unsigned s = 1;
    const long rows = 512, cols = 384, T = 128, D = 32, ld = 3 * 384;
    float *x = amalloc(rows * 1536 * 4), *res = amalloc(rows * cols * 4), *y = amalloc(rows * 1536 * 4);
    float *bias = amalloc(1536 * 4), *gamma = amalloc(cols * 4), *beta = amalloc(cols * 4);
    for (long i = 0; i < rows * 1536; i++) x[i] = frand(&s) * 3;
    for (long i = 0; i < rows * cols; i++) res[i] = frand(&s);
    for (long i = 0; i < 1536; i++) bias[i] = frand(&s) * 0.1f;
    for (long i = 0; i < cols; i++) { gamma[i] = 1 + frand(&s) * 0.1f; beta[i] = frand(&s) * 0.1f; }
    double ln = BEST_OF(20, dk_residual_layernorm(x, bias, NULL, res, NULL, y, NULL, NULL, gamma, beta, rows, cols, 1e-12f));
    printf("residual + bias + LayerNorm, %ld x %ld: %.3f ns per element\n", rows, cols, ln / (rows * cols) * 1e9);
    double gelu = BEST_OF(10, dk_bias_gelu(x, bias, NULL, y, rows, 1536));
    printf("bias + GELU, %ld x 1536: %.3f ns per element\n", rows, gelu / (rows * 1536) * 1e9);
    float *qkv = amalloc(T * ld * 4), *out = amalloc(T * 384 * 4), *scratch = amalloc(dk_attention_scratch_floats(T, D) * 4);
    for (long i = 0; i < T * ld; i++) qkv[i] = frand(&s);
    int32_t keep[128];
    for (long j = 0; j < T; j++) keep[j] = j < 100;
    double head = BEST_OF(500, dk_attention_head(qkv, qkv + 384, qkv + 768, ld, out, 384, keep, T, D, 0.17677670f,
                                                 scratch, NULL, NULL, NULL, 1.0f));
    printf("attention head, T %ld, D %ld: %.2f us\n", T, D, head * 1e6);
    free(x); free(res); free(y); free(bias); free(gamma); free(beta); free(qkv); free(out); free(scratch);
}

int main(int argc, char **argv) {
    const long shapes[][3] = {{4096, 1152, 384}, {4096, 384, 384}, {4096, 1536, 384}, {4096, 384, 1536},
                              {128, 1152, 384}, {128, 384, 384}, {128, 1536, 384}, {128, 384, 1536}};
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) { snprintf(model, sizeof model, "%s", strchr(line, ':') + 2); model[strcspn(model, "\n")] = 0; break; }
        fclose(f);
    }
    if (argc > 1 && !strcmp(argv[1], "ops")) {
        printf("CPU: %s; kernel path: %s; 1 thread\n", model, dk_quant_path());
        ops();
        return 0;
    }
    printf("CPU: %s; kernel path: %s; 1 thread; G (multiply-adds x2)/s\n", model, dk_quant_path());
    printf("%-18s", "M x N x K");
    for (int kind = 0; kind < KINDS; kind++)
        if (argc < 2 || strstr(argv[1], names[kind]) || (kind == INT4 && strstr(argv[1], "int4"))) printf("%10s", names[kind]);
    printf("\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "%ldx%ldx%ld", shapes[i][0], shapes[i][1], shapes[i][2]);
        printf("%-18s", label);
        for (int kind = 0; kind < KINDS; kind++)
            if (argc < 2 || strstr(argv[1], names[kind]) || (kind == INT4 && strstr(argv[1], "int4"))) {
                printf("%10.1f", run(kind, shapes[i][0], shapes[i][1], shapes[i][2]));
                fflush(stdout);
            }
        printf("\n");
    }
    return 0;
}
