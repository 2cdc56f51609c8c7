/* backends/cpu/cpu_winograd_tmpl.h — the three transforms of the Winograd F(2x2, 3x3)
 * convolution (cpu_winograd.c), written once and included per dtype with WT (element type)
 * and WS (name suffix) and WATTR (the functions' attributes: the target ISA) defined. B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 * G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], A^T = [1 1 1 0; 0 1 -1 -1]. Every value is
 * computed by one task in a fixed order, so results do not depend on the thread count. */

#define WJOIN2(a, b) a##_##b
#define WJOIN(a, b) WJOIN2(a, b)
#define W(name) WJOIN(name, WS)

/* U[xi][o][c] = (G g G^T)[xi] for output channel `task` (g read through the plan's weight
 * strides, which flip and transpose it for the input gradient). */
WATTR static void W(wino_weights)(void *arg, int64_t task, int worker)
{
    (void)worker;
    const wino_plan *p = arg;
    const int64_t o = task, OC = p->OC, C = p->C;
    const WT *w = (const WT *)p->w + p->w_base + o * p->w_so;
    WT *U = (WT *)p->U;
    for (int64_t c = 0; c < C; c++) {
        const WT *g = w + c * p->w_sc;
        WT gr[3][3], t[4][3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                gr[i][j] = g[i * p->w_si + j * p->w_sj];
        for (int j = 0; j < 3; j++) {   /* t = G g */
            t[0][j] = gr[0][j];
            t[1][j] = (WT)0.5 * (gr[0][j] + gr[1][j] + gr[2][j]);
            t[2][j] = (WT)0.5 * (gr[0][j] - gr[1][j] + gr[2][j]);
            t[3][j] = gr[2][j];
        }
        for (int i = 0; i < 4; i++) {   /* U = t G^T */
            WT u[4] = {t[i][0], (WT)0.5 * (t[i][0] + t[i][1] + t[i][2]),
                       (WT)0.5 * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
            for (int j = 0; j < 4; j++)
                U[((int64_t)(i * 4 + j) * OC + o) * C + c] = u[j];
        }
    }
}

#ifndef WROW_H   /* else the includer's own, of the same operations */
/* d B along one input row x (W columns, pw columns of zeros on the left, zeros past the
 * right edge) for tw tiles: the row split into its even and odd columns E, O (tile tx's
 * columns 2tx..2tx+3 are E[tx], O[tx], E[tx+1], O[tx+1]), read straight from x between the
 * edges. restrict (and out of line, so that it stays so): the buffers never overlap, so the
 * loops vectorise without alias checks. */
WATTR static __attribute__((noinline)) void W(row_h)(const WT *restrict x, int64_t Wd, int64_t pw,
                                  WT *restrict E, WT *restrict O, WT *restrict h0,
                                  WT *restrict h1, WT *restrict h2, WT *restrict h3, int64_t tw)
{
    /* k in [kl, kr): columns 2k - pw and 2k + 1 - pw both inside the row */
    int64_t kl = (pw + 1) / 2, kr = (Wd + pw) / 2;
    if (kr > tw + 1)
        kr = tw + 1;
    if (kl > kr)
        kl = kr;
    for (int64_t k = 0; k <= tw; k++) {
        if (k == kl && kr > kl) {
            const WT *src = x + 2 * kl - pw;
            for (int64_t i = 0; i < kr - kl; i++) {
                E[kl + i] = src[2 * i];
                O[kl + i] = src[2 * i + 1];
            }
            k = kr - 1;
            continue;
        }
        const int64_t ce = 2 * k - pw, co = ce + 1;
        E[k] = ce >= 0 && ce < Wd ? x[ce] : (WT)0;
        O[k] = co >= 0 && co < Wd ? x[co] : (WT)0;
    }
    for (int64_t tx = 0; tx < tw; tx++) {
        h0[tx] = E[tx] - E[tx + 1];
        h1[tx] = O[tx] + E[tx + 1];
        h2[tx] = E[tx + 1] - O[tx];
        h3[tx] = O[tx] - O[tx + 1];
    }
}
#endif

/* B^T down four rows d0..d3 of n tiles into v0..v3 (restrict, kept out of line so that it
 * stays so: the loop vectorises without alias checks) */
WATTR static __attribute__((noinline)) void
W(col_bt)(const WT *restrict d0, const WT *restrict d1, const WT *restrict d2,
          const WT *restrict d3, WT *restrict v0, WT *restrict v1, WT *restrict v2,
          WT *restrict v3, int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        v0[t] = d0[t] - d2[t];
        v1[t] = d1[t] + d2[t];
        v2[t] = d2[t] - d1[t];
        v3[t] = d1[t] - d3[t];
    }
}

/* (Tile rows are tws (= tw) tiles apart in V, M and the buffers, with no gap between them;
 * the per-row passes write twp tiles (tw rounded up to a whole vector block) and go through
 * the rows in order, so a row's extra tiles land on the next row's first ones and are then
 * overwritten by it. The buffers' rows are lp = ld + twp - tws apart, room for the last
 * row's extra tiles.)
 *
 * V[xi][c][t] = (B^T d B)[xi] for every tile t of the chunk in input channel `task`, in
 * two passes that run along whole vectors: d B for each input row of each tile row (the
 * row split into its even and odd columns, row_h) into h[4i + j][t], then B^T of h over
 * every tile of the chunk at once. The worker's buffer holds h (16 ld) and E, O. */
WATTR static void W(wino_input)(void *arg, int64_t task, int worker)
{
    (void)worker;
    const wino_plan *p = arg;
    const int64_t c = task, tw = p->twp, ts = p->tws, ld = p->ld, lp = p->lp;
    WT *h = (WT *)p->rows;   /* this worker's buffer (wino_chunk) */
    WT *E = h + 16 * lp, *O = E + tw + 1;
    for (int64_t r = 0; r < p->nr; r++) {
        const int64_t R = p->r0 + r, n = R / p->th, ty = R % p->th;
        const WT *x = (const WT *)p->x + (n * p->C + c) * p->H * p->W;
        if (r + 2 < p->nr) {   /* the rows two tile rows on: planes of other images are far */
            const int64_t n2 = (R + 2) / p->th, ty2 = (R + 2) % p->th;
            const WT *x2 = (const WT *)p->x + (n2 * p->C + c) * p->H * p->W;
            for (int i = 0; i < 4; i++) {
                const int64_t iy = 2 * ty2 - p->ph + i;
                if (iy >= 0 && iy < p->H) {
                    __builtin_prefetch(x2 + iy * p->W);
                    __builtin_prefetch(x2 + iy * p->W + p->W - 1);
                }
            }
        }
        for (int i = 0; i < 4; i++) {
            WT *h0 = h + (int64_t)(4 * i) * lp + r * ts, *h1 = h0 + lp, *h2 = h1 + lp,
               *h3 = h2 + lp;
            const int64_t iy = 2 * ty - p->ph + i;
            if (iy < 0 || iy >= p->H) {
                for (int64_t tx = 0; tx < tw; tx++)
                    h0[tx] = h1[tx] = h2[tx] = h3[tx] = 0;
                continue;
            }
#ifdef WROW_H
            WROW_H(x + iy * p->W, p->W, p->pw, E, O, h0, h1, h2, h3, tw);
#else
            W(row_h)(x + iy * p->W, p->W, p->pw, E, O, h0, h1, h2, h3, tw);
#endif
        }
    }
    const int64_t step = p->C * ld;   /* between consecutive xi in V */
    WT *v = (WT *)p->V + c * ld;
    for (int j = 0; j < 4; j++) {
        const WT *d0 = h + (int64_t)j * lp;
        WT *v0 = v + (int64_t)j * step;
        W(col_bt)(d0, d0 + 4 * lp, d0 + 8 * lp, d0 + 12 * lp, v0, v0 + 4 * step,
                  v0 + 8 * step, v0 + 12 * step, ld);
    }
}

/* y = A^T m A (+ bias) for every tile of the chunk in output channel `task`: A^T m over
 * every tile at once into s[4a + j][t] (a < 2), then (. A) + bias into q[2a + b][t], then
 * each tile row's two output rows interleaved from q (columns below ow only, the second row
 * only when inside the output). The worker's buffer holds s and q (12 ld) and a row. */
WATTR static void W(wino_output)(void *arg, int64_t task, int worker)
{
    const wino_plan *p = arg;
    const int64_t o = task, ts = p->tws, ld = p->ld, lp = p->lp;
    const int64_t step = p->OC * ld, oh = p->oh, ow = p->ow;
    const WT *m = (const WT *)p->M + o * ld;
    const WT bias = p->bias ? ((const WT *)p->bias)[o] : (WT)0;
    WT *s = (WT *)p->rows, *q = s + 8 * lp;   /* this worker's buffer */
    for (int j = 0; j < 4; j++) {
        const WT *m0 = m + (int64_t)j * step, *m1 = m0 + 4 * step, *m2 = m1 + 4 * step,
                 *m3 = m2 + 4 * step;
        WT *s0 = s + (int64_t)j * lp, *s1 = s0 + 4 * lp;
        for (int64_t t = 0; t < ld; t++) {
            s0[t] = m0[t] + m1[t] + m2[t];
            s1[t] = m1[t] - m2[t] - m3[t];
        }
    }
    for (int a = 0; a < 2; a++) {
        const WT *s0 = s + (int64_t)(4 * a) * lp, *s1 = s0 + lp, *s2 = s1 + lp, *s3 = s2 + lp;
        WT *q0 = q + (int64_t)(2 * a) * lp, *q1 = q0 + lp;
        for (int64_t t = 0; t < ld; t++) {
            q0[t] = bias + (s0[t] + s1[t] + s2[t]);
            q1[t] = bias + (s1[t] - s2[t] - s3[t]);
        }
    }
    if (p->relu)   /* the backend's relu: x < 0 ? 0 : x (NaN and -0 pass) */
        for (int64_t t = 0; t < 4 * lp; t++)
            q[t] = q[t] < 0 ? (WT)0 : q[t];
    WT *row = q + 4 * lp;   /* one output row, interleaved whole, then cut to ow */
    for (int64_t r = 0; r < p->nr; r++) {
        const int64_t R = p->r0 + r, n = R / p->th, ty = R % p->th;
        WT *y = (WT *)p->y + ((n * p->OC + o) * oh + 2 * ty) * ow;
        for (int a = 0; a < 2 && 2 * ty + a < oh; a++, y += ow) {
            const WT *q0 = q + (int64_t)(2 * a) * lp + r * ts, *q1 = q0 + lp;
#ifdef WOUT_ROW
            (void)row;
            WOUT_ROW(q0, q1, y, ow);
#else
            for (int64_t tx = 0; tx < ts; tx++) {
                row[2 * tx] = q0[tx];
                row[2 * tx + 1] = q1[tx];
            }
            memcpy(y, row, sizeof(WT) * (size_t)ow);
#endif
        }
    }
}

/* ---- the weight's gradient: dw = G^T [sum over tiles (A dy A^T) . (B^T d B)] G ---- */

/* The even and odd columns of an output-gradient row (ow long; NULL: a row past the
 * output) for twp tiles, zeros past the row. */
#ifndef WSPLIT
WATTR static void W(dy_split)(const WT *restrict row, int64_t ow, WT *restrict E,
                              WT *restrict O, int64_t twp)
{
    for (int64_t tx = 0; tx < twp; tx++) {
        const int64_t c0 = 2 * tx, c1 = c0 + 1;
        E[tx] = row && c0 < ow ? row[c0] : (WT)0;
        O[tx] = row && c1 < ow ? row[c1] : (WT)0;
    }
}
#endif

/* A g A^T for every tile t of the chunk in output channel `task`, into M[xi][o][t]
 * (A^T = [1 1 1 0; 0 1 -1 -1]: a pair (g0, g1) becomes (g0, g0 + g1, g0 - g1, -g1), along
 * the tile's two columns, then its two rows). Tiles past the output see zeros. First the
 * even and odd columns of both rows of every tile row of the chunk into the worker's buffer
 * (E0, O0, E1, O1: ld each), then the 16 values of every tile in one pass along them. */
WATTR static void W(wino_dy)(void *arg, int64_t task, int worker)
{
    (void)worker;
    const wino_plan *p = arg;
    const int64_t o = task, tw = p->twp, ts = p->tws, ld = p->ld, lp = p->lp;
    const int64_t step = p->OC * ld, oh = p->oh, ow = p->ow;
    WT *restrict E0 = (WT *)p->rows, *restrict O0 = E0 + lp, *restrict E1 = O0 + lp,
       *restrict O1 = E1 + lp;
    for (int64_t r = 0; r < p->nr; r++) {
        const int64_t R = p->r0 + r, n = R / p->th, ty = R % p->th;
        const WT *g = (const WT *)p->dy + ((n * p->OC + o) * oh + 2 * ty) * ow;
        if (r + 2 < p->nr) {   /* the rows two tile rows on (another image's plane is far) */
            const int64_t n2 = (R + 2) / p->th, ty2 = (R + 2) % p->th;
            const WT *g2 = (const WT *)p->dy + ((n2 * p->OC + o) * oh + 2 * ty2) * ow;
            __builtin_prefetch(g2);
            __builtin_prefetch(g2 + 2 * ow - 1);
        }
#ifdef WSPLIT
        WSPLIT(g, ow, E0 + r * ts, O0 + r * ts, tw);
        WSPLIT(2 * ty + 1 < oh ? g + ow : NULL, ow, E1 + r * ts, O1 + r * ts, tw);
#else
        W(dy_split)(g, ow, E0 + r * ts, O0 + r * ts, tw);
        W(dy_split)(2 * ty + 1 < oh ? g + ow : NULL, ow, E1 + r * ts, O1 + r * ts, tw);
#endif
    }
    if (p->bsum) {   /* db: every element of these rows once, in 8 double lanes */
        double acc[8] = {0};
        int64_t t = 0;
        for (; t + 8 <= ld; t += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += ((double)E0[t + l] + (double)O0[t + l]) +
                          ((double)E1[t + l] + (double)O1[t + l]);
        double sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
                     ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        for (; t < ld; t++)
            sum += ((double)E0[t] + (double)O0[t]) + ((double)E1[t] + (double)O1[t]);
        p->bsum[o] += sum;
    }
    WT *restrict d = (WT *)p->M + o * ld;
#pragma GCC ivdep
    for (int64_t t = 0; t < ld; t++) {
        const WT a0 = E0[t], a1 = E0[t] + O0[t], a2 = E0[t] - O0[t], a3 = -O0[t];
        const WT b0 = E1[t], b1 = E1[t] + O1[t], b2 = E1[t] - O1[t], b3 = -O1[t];
        d[0 * step + t] = a0;
        d[1 * step + t] = a1;
        d[2 * step + t] = a2;
        d[3 * step + t] = a3;
        d[4 * step + t] = a0 + b0;
        d[5 * step + t] = a1 + b1;
        d[6 * step + t] = a2 + b2;
        d[7 * step + t] = a3 + b3;
        d[8 * step + t] = a0 - b0;
        d[9 * step + t] = a1 - b1;
        d[10 * step + t] = a2 - b2;
        d[11 * step + t] = a3 - b3;
        d[12 * step + t] = -b0;
        d[13 * step + t] = -b1;
        d[14 * step + t] = -b2;
        d[15 * step + t] = -b3;
    }
}

/* The groups' partial sums part[grp][e] added in group order into part[0][e], for one
 * block of WINO_SUM_BLOCK elements e of the 16 OC x C products `task`. */
WATTR static void W(wino_wsum)(void *arg, int64_t task, int worker)
{
    (void)worker;
    const wino_plan *p = arg;
    const int64_t blk = 16 * p->OC * p->C, e0 = task * WINO_SUM_BLOCK;
    const int64_t e1 = e0 + WINO_SUM_BLOCK < blk ? e0 + WINO_SUM_BLOCK : blk;
    WT *restrict s = (WT *)p->U;
    for (int64_t grp = 1; grp < p->ngroups; grp++) {
        const WT *restrict q = (const WT *)p->U + grp * blk;
        for (int64_t e = e0; e < e1; e++)
            s[e] += q[e];
    }
}

/* dw[o][c] = G^T m G for output channel `task`, m[xi] = part[0][xi][o][c] (the groups'
 * sum, wino_wsum) (G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]). */
WATTR static void W(wino_wout)(void *arg, int64_t task, int worker)
{
    (void)worker;
    const wino_plan *p = arg;
    const int64_t o = task, OC = p->OC, C = p->C;
    const WT *part = (const WT *)p->U;
    WT *dw = (WT *)p->y + o * C * 9;
    for (int64_t c = 0; c < C; c++) {
        WT m[16], t[3][4];
        for (int xi = 0; xi < 16; xi++)
            m[xi] = part[((int64_t)xi * OC + o) * C + c];
        for (int v = 0; v < 4; v++) {   /* t = G^T m */
            t[0][v] = m[v] + (WT)0.5 * (m[4 + v] + m[8 + v]);
            t[1][v] = (WT)0.5 * (m[4 + v] - m[8 + v]);
            t[2][v] = (WT)0.5 * (m[4 + v] + m[8 + v]) + m[12 + v];
        }
        for (int i = 0; i < 3; i++) {   /* dw = t G */
            WT *row = dw + c * 9 + i * 3;
            row[0] = t[i][0] + (WT)0.5 * (t[i][1] + t[i][2]);
            row[1] = (WT)0.5 * (t[i][1] - t[i][2]);
            row[2] = (WT)0.5 * (t[i][1] + t[i][2]) + t[i][3];
        }
    }
}

#undef W
#undef WJOIN
#undef WJOIN2
