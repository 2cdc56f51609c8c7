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

/* V[xi][c][t] = (B^T d B)[xi] for every tile t of the chunk in input channel `task`. The
 * four input rows of each tile row are copied, zero-padded, into the worker's buffer first
 * (rows[(4 r + i) * wp + k] = input column k - pw of row 2 ty - ph + i), so the transform
 * needs no bounds checks; it runs WINO_TB tiles at a time along the vector lanes, the tiles'
 * values gathered first. */
WATTR static void W(wino_input)(void *arg, int64_t task, int worker)
{
    const wino_plan *p = arg;
    const int64_t c = task, tw = p->tw, wp = p->wp, ld = p->ld;
    WT *buf = (WT *)p->rows + (int64_t)worker * 4 * wp * p->nr;
    for (int64_t r = 0; r < p->nr; r++) {
        const int64_t R = p->r0 + r, n = R / p->th, ty = R % p->th;
        const WT *x = (const WT *)p->x + (n * p->C + c) * p->H * p->W;
        for (int i = 0; i < 4; i++) {
            WT *b = buf + (4 * r + i) * wp;
            const int64_t iy = 2 * ty - p->ph + i;
            if (iy < 0 || iy >= p->H) {
                memset(b, 0, sizeof(WT) * (size_t)wp);
                continue;
            }
            int64_t lo = p->pw, hi = p->pw + p->W < wp ? p->pw + p->W : wp;
            memset(b, 0, sizeof(WT) * (size_t)lo);
            memcpy(b + lo, x + iy * p->W, sizeof(WT) * (size_t)(hi - lo));
            memset(b + hi, 0, sizeof(WT) * (size_t)(wp - hi));
        }
    }
    const int64_t step = p->C * ld;   /* between consecutive xi */
    WT *v = (WT *)p->V + c * ld;
    int64_t r = 0, tx = 0;   /* the tile row and column of tile t */
    for (int64_t t = 0; t < ld; t += WINO_TB) {
        const int cnt = ld - t < WINO_TB ? (int)(ld - t) : WINO_TB;
        WT d[4][4][WINO_TB];   /* [row][column][tile] */
        for (int u = 0; u < WINO_TB; u++) {
            if (u < cnt) {
                const WT *q = buf + 4 * r * wp + 2 * tx;
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        d[i][j][u] = q[i * wp + j];
                if (++tx == tw) {
                    tx = 0;
                    r++;
                }
            } else {
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        d[i][j][u] = 0;
            }
        }
        WT e[4][4][WINO_TB];   /* e = B^T d */
        for (int j = 0; j < 4; j++)
            for (int u = 0; u < WINO_TB; u++) {
                e[0][j][u] = d[0][j][u] - d[2][j][u];
                e[1][j][u] = d[1][j][u] + d[2][j][u];
                e[2][j][u] = d[2][j][u] - d[1][j][u];
                e[3][j][u] = d[1][j][u] - d[3][j][u];
            }
        for (int i = 0; i < 4; i++) {   /* V = e B */
            WT o[4][WINO_TB];
            for (int u = 0; u < WINO_TB; u++) {
                o[0][u] = e[i][0][u] - e[i][2][u];
                o[1][u] = e[i][1][u] + e[i][2][u];
                o[2][u] = e[i][2][u] - e[i][1][u];
                o[3][u] = e[i][1][u] - e[i][3][u];
            }
            for (int j = 0; j < 4; j++) {
                WT *vj = v + (int64_t)(4 * i + j) * step + t;
                if (cnt == WINO_TB)
                    for (int u = 0; u < WINO_TB; u++)
                        vj[u] = o[j][u];
                else
                    for (int u = 0; u < cnt; u++)
                        vj[u] = o[j][u];
            }
        }
    }
}

/* y = A^T m A (+ bias) for every tile of the chunk in output channel `task`, WINO_TB tiles
 * at a time along the vector lanes, then scattered to the tiles' 2x2 outputs. Tiles cut by
 * the bottom or right edge write only their rows and columns inside the output. */
WATTR static void W(wino_output)(void *arg, int64_t task, int worker)
{
    (void)worker;
    const wino_plan *p = arg;
    const int64_t o = task, tw = p->tw, ld = p->ld;
    const int64_t step = p->OC * ld, oh = p->oh, ow = p->ow;
    const WT *m = (const WT *)p->M + o * ld;
    const WT bias = p->bias ? ((const WT *)p->bias)[o] : (WT)0;
    int64_t R = p->r0, tx = 0;
    WT *y = (WT *)p->y + ((R / p->th * p->OC + o) * oh + 2 * (R % p->th)) * ow;
    int64_t ty = R % p->th;
    for (int64_t t = 0; t < ld; t += WINO_TB) {
        const int cnt = ld - t < WINO_TB ? (int)(ld - t) : WINO_TB;
        WT mm[16][WINO_TB];
        if (cnt == WINO_TB)
            for (int k = 0; k < 16; k++)
                for (int u = 0; u < WINO_TB; u++)
                    mm[k][u] = m[k * step + t + u];
        else
            for (int k = 0; k < 16; k++)
                for (int u = 0; u < WINO_TB; u++)
                    mm[k][u] = u < cnt ? m[k * step + t + u] : (WT)0;
        WT s[4][2][WINO_TB];   /* s = m A: [row][column][tile] */
        for (int i = 0; i < 4; i++)
            for (int u = 0; u < WINO_TB; u++) {
                s[i][0][u] = mm[4 * i][u] + mm[4 * i + 1][u] + mm[4 * i + 2][u];
                s[i][1][u] = mm[4 * i + 1][u] - mm[4 * i + 2][u] - mm[4 * i + 3][u];
            }
        WT yv[2][2][WINO_TB];
        for (int j = 0; j < 2; j++)
            for (int u = 0; u < WINO_TB; u++) {
                yv[0][j][u] = bias + (s[0][j][u] + s[1][j][u] + s[2][j][u]);
                yv[1][j][u] = bias + (s[1][j][u] - s[2][j][u] - s[3][j][u]);
            }
        for (int u = 0; u < cnt; u++) {
            const int64_t x0 = 2 * tx;
            y[x0] = yv[0][0][u];
            if (x0 + 1 < ow)
                y[x0 + 1] = yv[0][1][u];
            if (2 * ty + 1 < oh) {
                y[ow + x0] = yv[1][0][u];
                if (x0 + 1 < ow)
                    y[ow + x0 + 1] = yv[1][1][u];
            }
            if (++tx == tw) {   /* next tile row: next two output rows, or next image */
                tx = 0;
                R++;
                ty = R % p->th;
                y = (WT *)p->y + ((R / p->th * p->OC + o) * oh + 2 * ty) * ow;
            }
        }
    }
}

#undef W
#undef WJOIN
#undef WJOIN2
