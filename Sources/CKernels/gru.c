// GRU recurrence kernels (see include/dk_gru.h): the gate math of one step and its
// backward, and the per-direction loops that run them over a padded batch with the packed
// GEMM for the recurrent product.
//
// Same scheme as kernels.c and training.c: the gate bodies are static inline functions
// written so that clang vectorises them (the branch-free exp of dk_math.h gives σ and tanh),
// instantiated plainly (the `_ref` twin), under target("avx2,fma") and under the AVX-512
// target; dk_kernel_path() picks one at run time. tanh(x) = 1 − 2/(e^{2x} + 1) saturates
// cleanly at ±1 because dk_expf clamps its argument. The loops keep h and the per-step
// products in this thread's DK_SLOT_USER buffer. Left out on purpose: a non-zero initial
// state, fusing the gate math into the GEMM, and threading over the batch (a recurrence at
// batch 1 has nothing to split; the input-projection GEMMs around it are threaded).
#include "dk_gru.h"
#include "ckernels.h"
#include "dk_gemm.h"
#include "dk_math.h"
#include <string.h>

#include "dk_target.h"

DK_INLINE float sigmoid_f(float x) { return 1.0f / (1.0f + dk_expf(-x)); }
DK_INLINE float tanh_f(float x) { return 1.0f - 2.0f / (dk_expf(2.0f * x) + 1.0f); }

// ---------------------------------------------------------------- gate math

DK_INLINE void gates_body(long H, const float *xp, const float *hp, float *h, float *out, float *cache) {
    const float *xr = xp, *xz = xp + H, *xn = xp + 2 * H;
    const float *hr = hp, *hz = hp + H, *hn = hp + 2 * H;
    if (cache) {
        for (long j = 0; j < H; j++) {
            float r = sigmoid_f(xr[j] + hr[j]), z = sigmoid_f(xz[j] + hz[j]);
            float n = tanh_f(xn[j] + r * hn[j]);
            float v = (1.0f - z) * n + z * h[j];
            cache[j] = r; cache[H + j] = z; cache[2 * H + j] = n; cache[3 * H + j] = hn[j];
            h[j] = v; out[j] = v;
        }
    } else {
        for (long j = 0; j < H; j++) {
            float r = sigmoid_f(xr[j] + hr[j]), z = sigmoid_f(xz[j] + hz[j]);
            float n = tanh_f(xn[j] + r * hn[j]);
            float v = (1.0f - z) * n + z * h[j];
            h[j] = v; out[j] = v;
        }
    }
}
DK_AVX2 static void gates_avx2(long H, const float *xp, const float *hp, float *h, float *out, float *cache) {
    gates_body(H, xp, hp, h, out, cache);
}
DK_AVX512 static void gates_avx512(long H, const float *xp, const float *hp, float *h, float *out, float *cache) {
    gates_body(H, xp, hp, h, out, cache);
}
void dk_gru_gates_ref(long H, const float *xp, const float *hp, float *h, float *out, float *cache) {
    gates_body(H, xp, hp, h, out, cache);
}
void dk_gru_gates(long H, const float *xp, const float *hp, float *h, float *out, float *cache) {
    switch (dk_kernel_path()) {
    case DK_PATH_AVX512: gates_avx512(H, xp, hp, h, out, cache); break;
    case DK_PATH_AVX2: gates_avx2(H, xp, hp, h, out, cache); break;
    default: gates_body(H, xp, hp, h, out, cache);
    }
}

// h' = (1−z)n + z·h, n = tanh(a_n), a_n = x_n + r·hn, r = σ(a_r), z = σ(a_z):
//   dn = dh(1−z), dz = dh(h − n), da_n = dn(1 − n²), dr = da_n·hn,
//   da_r = dr·r(1−r), da_z = dz·z(1−z); the recurrent n-term gets da_n·r.
DK_INLINE void gates_backward_body(long H, const float *dh, const float *hprev, const float *cache,
                                   float *dxg, float *dhg, float *dhprev) {
    const float *cr = cache, *cz = cache + H, *cn = cache + 2 * H, *chn = cache + 3 * H;
    for (long j = 0; j < H; j++) {
        float g = dh[j], r = cr[j], z = cz[j], n = cn[j];
        float dan = g * (1.0f - z) * (1.0f - n * n);
        float dar = dan * chn[j] * r * (1.0f - r);
        float daz = g * (hprev[j] - n) * z * (1.0f - z);
        dxg[j] = dar; dxg[H + j] = daz; dxg[2 * H + j] = dan;
        dhg[j] = dar; dhg[H + j] = daz; dhg[2 * H + j] = dan * r;
        dhprev[j] = g * z;
    }
}
DK_AVX2 static void gates_backward_avx2(long H, const float *dh, const float *hp, const float *c, float *dx, float *dg, float *dp) {
    gates_backward_body(H, dh, hp, c, dx, dg, dp);
}
DK_AVX512 static void gates_backward_avx512(long H, const float *dh, const float *hp, const float *c, float *dx, float *dg, float *dp) {
    gates_backward_body(H, dh, hp, c, dx, dg, dp);
}
void dk_gru_gates_backward_ref(long H, const float *dh, const float *hprev, const float *cache,
                               float *dxg, float *dhg, float *dhprev) {
    gates_backward_body(H, dh, hprev, cache, dxg, dhg, dhprev);
}
void dk_gru_gates_backward(long H, const float *dh, const float *hprev, const float *cache,
                           float *dxg, float *dhg, float *dhprev) {
    switch (dk_kernel_path()) {
    case DK_PATH_AVX512: gates_backward_avx512(H, dh, hprev, cache, dxg, dhg, dhprev); break;
    case DK_PATH_AVX2: gates_backward_avx2(H, dh, hprev, cache, dxg, dhg, dhprev); break;
    default: gates_backward_body(H, dh, hprev, cache, dxg, dhg, dhprev);
    }
}

// ---------------------------------------------------------------- direction loops

static int forward_impl(int ref, long B, long T, long H, const float *xp, const float *whh, const float *bhh,
                        const int32_t *lengths, int reverse, float *out, long ldo, float *cache) {
    const long G = 3 * H, C = DK_GRU_CACHE_PER_STEP * H;
    float *buf = dk_thread_buffer(DK_SLOT_USER, B * H + B * G);
    float *ws = ref ? NULL : dk_gemm_thread_workspace(dk_gemm_workspace_floats(B, H));
    if (!buf || (!ref && !ws)) return -1;
    float *h = buf, *hp = buf + B * H;
    memset(h, 0, (size_t)(B * H) * sizeof(float));
    for (long s = 0; s < T; s++) {
        const long t = reverse ? T - 1 - s : s;
        if (ref) dk_gemm_packed_bias_ref(B, G, H, h, H, whh, bhh, hp, G, NULL);
        else dk_gemm_packed_bias(B, G, H, h, H, whh, bhh, hp, G, ws);
        for (long b = 0; b < B; b++) {
            float *o = out + (b * T + t) * ldo, *c = cache ? cache + (b * T + t) * C : NULL;
            if (t < lengths[b]) {
                const float *x = xp + (b * T + t) * G;
                if (ref) dk_gru_gates_ref(H, x, hp + b * G, h + b * H, o, c);
                else dk_gru_gates(H, x, hp + b * G, h + b * H, o, c);
            } else {
                memset(o, 0, (size_t)H * sizeof(float));
                if (c) memset(c, 0, (size_t)C * sizeof(float));
            }
        }
    }
    return 0;
}

int dk_gru_forward(long B, long T, long H, const float *xp, const float *whh_packed, const float *bhh,
                   const int32_t *lengths, int reverse, float *out, long ldo, float *cache) {
    return forward_impl(0, B, T, H, xp, whh_packed, bhh, lengths, reverse, out, ldo, cache);
}
int dk_gru_forward_ref(long B, long T, long H, const float *xp, const float *whh_packed, const float *bhh,
                       const int32_t *lengths, int reverse, float *out, long ldo, float *cache) {
    return forward_impl(1, B, T, H, xp, whh_packed, bhh, lengths, reverse, out, ldo, cache);
}

static int backward_impl(int ref, long B, long T, long H, const float *dout, long ldd, const float *out, long ldo,
                         const float *cache, const float *whh_t, const int32_t *lengths, int reverse,
                         float *dxg, float *dhg) {
    const long G = 3 * H, C = DK_GRU_CACHE_PER_STEP * H;
    float *buf = dk_thread_buffer(DK_SLOT_USER, 2 * B * H + H);
    float *ws = ref ? NULL : dk_gemm_thread_workspace(dk_gemm_workspace_floats(B, G));
    if (!buf || (!ref && !ws)) return -1;
    float *dh = buf, *dhp = buf + B * H, *zero = buf + 2 * B * H;
    memset(buf, 0, (size_t)(2 * B * H + H) * sizeof(float));
    for (long s = T - 1; s >= 0; s--) {
        const long t = reverse ? T - 1 - s : s;
        for (long b = 0; b < B; b++) {
            float *g = dh + b * H, *dx = dxg + (b * T + t) * G, *dg = dhg + (b * T + t) * G;
            const long len = lengths[b];
            if (t < len) {
                const float *d = dout + (b * T + t) * ldd;
                for (long j = 0; j < H; j++) g[j] += d[j];
                const long prev = reverse ? t + 1 : t - 1;
                const float *hprev = (prev >= 0 && prev < len) ? out + (b * T + prev) * ldo : zero;
                const float *c = cache + (b * T + t) * C;
                if (ref) dk_gru_gates_backward_ref(H, g, hprev, c, dx, dg, dhp + b * H);
                else dk_gru_gates_backward(H, g, hprev, c, dx, dg, dhp + b * H);
            } else {
                memset(dx, 0, (size_t)G * sizeof(float));
                memset(dg, 0, (size_t)G * sizeof(float));
                memcpy(dhp + b * H, g, (size_t)H * sizeof(float));
            }
        }
        // dh_prev += dhg_t · W_hh: rows of step t are T·3H floats apart.
        if (ref) dk_gemm_packed_ref(B, H, G, dhg + t * G, T * G, whh_t, dhp, H, 1, NULL);
        else dk_gemm_packed(B, H, G, dhg + t * G, T * G, whh_t, dhp, H, 1, ws);
        float *swap = dh; dh = dhp; dhp = swap;
    }
    return 0;
}

int dk_gru_backward(long B, long T, long H, const float *dout, long ldd, const float *out, long ldo,
                    const float *cache, const float *whh_t_packed, const int32_t *lengths, int reverse,
                    float *dxg, float *dhg) {
    return backward_impl(0, B, T, H, dout, ldd, out, ldo, cache, whh_t_packed, lengths, reverse, dxg, dhg);
}
int dk_gru_backward_ref(long B, long T, long H, const float *dout, long ldd, const float *out, long ldo,
                        const float *cache, const float *whh_t_packed, const int32_t *lengths, int reverse,
                        float *dxg, float *dhg) {
    return backward_impl(1, B, T, H, dout, ldd, out, ldo, cache, whh_t_packed, lengths, reverse, dxg, dhg);
}
