/* ember/philox.h — the random number specification every backend implements, as
 * portable inline code (C, CUDA). Same seed, same counter => same numbers on every
 * backend: uniform values agree bit for bit; normal values agree to the last ulp of the
 * device's double log/cos/sqrt (then rounded to the tensor's dtype).
 *
 * Element i of a tensor drawn with (seed, counter) uses one Philox4x32-10 block:
 *   key = {lo32(seed), hi32(seed)},  ctr = {lo32(counter + i), hi32(counter + i), 0, 0}
 *   r[0..3] = philox4x32_10(ctr, key)
 * uniform:  u = ((r0:r1) >> 11) * 2^-53 in [0, 1) (f64);  f32 tensors use the same u
 *           rounded to float (values of 1.0 after rounding are mapped to the largest
 *           float below 1), then low + (high - low) * u.
 * normal:   u1 = (((r0:r1) >> 11) + 1) * 2^-53 in (0, 1], u2 = ((r2:r3) >> 11) * 2^-53,
 *           z = sqrt(-2 ln u1) * cos(2 pi u2), value = mean + std * z (computed in double).
 * The context's counter advances by numel after each draw. */
#ifndef EMBER_PHILOX_H
#define EMBER_PHILOX_H

#if defined(__CUDACC__)
#define EM_PHILOX_FN static inline __host__ __device__
#else
#define EM_PHILOX_FN static inline
#endif

#include <stdint.h>
#include <math.h>

typedef struct em_philox4 {
    uint32_t v[4];
} em_philox4;

EM_PHILOX_FN em_philox4 em_philox4x32_10(uint64_t seed, uint64_t counter)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    em_philox4 out;
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

/* u in [0, 1) with 53 random bits. */
EM_PHILOX_FN double em_philox_uniform01(em_philox4 r)
{
    uint64_t bits = (((uint64_t)r.v[0] << 32) | r.v[1]) >> 11;
    return (double)bits * (1.0 / 9007199254740992.0);
}

/* u rounded to float, kept strictly below 1. */
EM_PHILOX_FN float em_philox_uniform01_f32(em_philox4 r)
{
    float f = (float)em_philox_uniform01(r);
    return f < 1.0f ? f : 0x1.fffffep-1f;
}

EM_PHILOX_FN double em_philox_normal(em_philox4 r)
{
    uint64_t b1 = (((uint64_t)r.v[0] << 32) | r.v[1]) >> 11;
    uint64_t b2 = (((uint64_t)r.v[2] << 32) | r.v[3]) >> 11;
    double u1 = (double)(b1 + 1) * (1.0 / 9007199254740992.0);
    double u2 = (double)b2 * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

#endif
