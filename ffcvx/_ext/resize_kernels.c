/* Antialiased resize kernels of ffcvx: scratch layout, portable passes, dispatch.
 *
 * Filter: triangle (bilinear) with its support widened by the downscale
 * factor, the family of Pillow's Image.resize(size, Image.BILINEAR): when
 * shrinking by s each output pixel is a weighted mean of about 2 * s input
 * pixels per axis; when enlarging it is plain bilinear interpolation.
 * Weights (resize_weights.c) are int16 with COEF_BITS fractional bits:
 * triangle weights are non-negative and sum to one, so each is at most
 * 1 << COEF_BITS and fits int16, and products with uint8 pixels and their
 * sums fit int32. The
 * vertical pass runs first (the gather-heavy horizontal pass then touches
 * only dst_h rows) and its output is rounded to uint8. The AVX2 passes of
 * resize_kernels_avx2.c are used when the CPU has AVX2 and the sizes suit
 * them; the loops here give the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "resize_kernels.h"
#include "resize_kernels_avx2.h"
#include "resize_weights.h"

enum {
    COEF_BITS = FFCVX_RK_COEF_BITS,
    COEF_HALF = 1 << (COEF_BITS - 1),
    ALIGN = 64
};

#define MAX_SIDE ((int64_t)1 << 24)  /* sizes above this are rejected */

/* Where each table lives in the scratch buffer, as offsets from its
 * ALIGN-aligned base. */
typedef struct {
    int64_t taps_y;
    int64_t taps_x;
    int64_t off_ybounds;    /* int32[dst_h][2]: first input row, number of taps */
    int64_t off_ycoef;      /* int16[dst_h][taps_y] */
    int64_t off_xbounds;    /* int32[dst_w][2]: first input column, number of taps */
    int64_t off_xcoef;      /* int16[dst_w][taps_x] */
    int64_t chunks_x;       /* ceil(taps_x / 4): 4-tap groups of the AVX2 passes */
    int64_t off_xpack;      /* AVX2 horizontal weights: int16[dst_w][chunks_x][16] RGB,
                               ceil(dst_w / 8) blocks of <= 144 + 64 * chunks_x bytes gray */
    int64_t off_xlo;        /* int32[dst_w]: AVX2 first input column per output */
    int64_t off_acc;        /* int32[src_w * channels]: vertical-pass accumulators */
    int64_t off_lastrow;    /* uint8[src_w * channels + pad]: padded copy of a last row */
    int64_t off_tmp;        /* uint8[dst_h][src_w * channels] + pad: vertical-pass output */
    int64_t total;          /* bytes from the aligned base, plus ALIGN slack */
} rk_layout;

static int64_t rk_align_up(int64_t n)
{
    return (n + (ALIGN - 1)) & ~(int64_t)(ALIGN - 1);
}

/* Upper bound on filter taps per output pixel along one axis. */
static int64_t rk_taps(int64_t in_size, int64_t out_size)
{
    double support = (double)in_size / (double)out_size;
    int64_t isupport;
    if (support < 1.0)
        support = 1.0;
    isupport = (int64_t)support;
    if ((double)isupport < support)
        isupport += 1;
    return 2 * isupport + 1;
}

/* Scratch layout for `channels` (1 or 3) bytes per pixel. */
static void rk_layout_for(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                          int64_t channels, rk_layout *lay)
{
    int64_t off = 0;
    lay->taps_y = rk_taps(src_h, dst_h);
    lay->taps_x = rk_taps(src_w, dst_w);
    lay->off_ybounds = off;
    off = rk_align_up(off + 8 * dst_h);
    lay->off_ycoef = off;
    off = rk_align_up(off + 2 * dst_h * lay->taps_y);
    lay->off_xbounds = off;
    off = rk_align_up(off + 8 * dst_w);
    lay->off_xcoef = off;
    off = rk_align_up(off + 2 * dst_w * lay->taps_x);
    lay->chunks_x = (lay->taps_x + 3) / 4;
    lay->off_xpack = off;
    if (channels == 3)
        off = rk_align_up(off + 32 * dst_w * lay->chunks_x);
    else  /* one block per step of 8 outputs: bases, masks of up to 2 loads, weights */
        off = rk_align_up(off + ((dst_w + 7) / 8) * (144 + 64 * lay->chunks_x));
    lay->off_xlo = off;
    off = rk_align_up(off + 4 * dst_w);
    lay->off_acc = off;
    off = rk_align_up(off + 4 * channels * src_w);
    lay->off_lastrow = off;
    off = rk_align_up(off + channels * src_w + ALIGN);
    lay->off_tmp = off;
    off = rk_align_up(off + channels * src_w * dst_h + ALIGN);
    lay->total = off + ALIGN;
}

static int rk_sizes_ok(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w)
{
    return 0 < src_h && src_h <= MAX_SIDE && 0 < src_w && src_w <= MAX_SIDE
        && 0 < dst_h && dst_h <= MAX_SIDE && 0 < dst_w && dst_w <= MAX_SIDE;
}

int64_t ffcvx_rk_scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                               int channels)
{
    rk_layout lay;
    if ((channels != 1 && channels != 3) || !rk_sizes_ok(src_h, src_w, dst_h, dst_w))
        return FFCVX_RESIZE_BAD_ARGUMENT;
    rk_layout_for(src_h, src_w, dst_h, dst_w, channels, &lay);
    return lay.total;
}

static uint8_t rk_clip8(int32_t v)
{
    v = v >> COEF_BITS;
    if (v < 0)
        return 0;
    if (v > 255)
        return 255;
    return (uint8_t)v;
}

/* Vertical pass: dst_h rows of n bytes. Each tap multiply-adds a whole input
 * row into the int32 accumulator row, a loop the compiler vectorises. */
static void rk_vertical(const uint8_t *src, int64_t src_stride, int64_t n, uint8_t *dst,
                        int64_t dst_stride, int64_t dst_h, const int32_t *bounds,
                        const int16_t *coef, int64_t taps, int32_t *acc)
{
    int64_t y, t, x, first, count;
    int16_t c;
    const uint8_t *row;
    const int16_t *k;
    uint8_t *out;
    for (y = 0; y < dst_h; y++) {
        first = bounds[2 * y];
        count = bounds[2 * y + 1];
        k = coef + y * taps;
        out = dst + y * dst_stride;
        row = src + first * src_stride;
        c = k[0];
        for (x = 0; x < n; x++)
            acc[x] = COEF_HALF + (int32_t)(c * (int16_t)row[x]);
        for (t = 1; t < count; t++) {
            row = src + (first + t) * src_stride;
            c = k[t];
            for (x = 0; x < n; x++)
                acc[x] += (int32_t)(c * (int16_t)row[x]);
        }
        for (x = 0; x < n; x++)
            out[x] = rk_clip8(acc[x]);
    }
}

/* Horizontal pass: `rows` rows, RGB interleaved, into packed dst. */
static void rk_horizontal(const uint8_t *src, int64_t src_stride, int64_t rows, uint8_t *dst,
                          int64_t dst_w, const int32_t *bounds, const int16_t *coef,
                          int64_t taps)
{
    int64_t y, xx, t, count;
    int32_t r, g, b, c;
    const uint8_t *p;
    const int16_t *k;
    uint8_t *out;
    for (y = 0; y < rows; y++) {
        out = dst + y * dst_w * 3;
        for (xx = 0; xx < dst_w; xx++) {
            p = src + y * src_stride + 3 * (int64_t)bounds[2 * xx];
            count = bounds[2 * xx + 1];
            k = coef + xx * taps;
            r = COEF_HALF;
            g = COEF_HALF;
            b = COEF_HALF;
            for (t = 0; t < count; t++) {
                c = k[t];
                r += c * p[0];
                g += c * p[1];
                b += c * p[2];
                p += 3;
            }
            out[0] = rk_clip8(r);
            out[1] = rk_clip8(g);
            out[2] = rk_clip8(b);
            out += 3;
        }
    }
}

/* Horizontal pass over one-channel rows: the arithmetic of one channel of
 * rk_horizontal, so a gray row gives channel 0 of that row repeated in RGB. */
static void rk_horizontal_gray(const uint8_t *src, int64_t src_stride, int64_t rows,
                               uint8_t *dst, int64_t dst_w, const int32_t *bounds,
                               const int16_t *coef, int64_t taps)
{
    int64_t y, xx, t, count;
    int32_t v;
    const uint8_t *p;
    const int16_t *k;
    uint8_t *out;
    for (y = 0; y < rows; y++) {
        out = dst + y * dst_w;
        for (xx = 0; xx < dst_w; xx++) {
            p = src + y * src_stride + bounds[2 * xx];
            count = bounds[2 * xx + 1];
            k = coef + xx * taps;
            v = COEF_HALF;
            for (t = 0; t < count; t++)
                v += k[t] * p[t];
            out[xx] = rk_clip8(v);
        }
    }
}

/* Horizontal pass with the AVX2 kernel when possible, else the loop.
 * src_padded: at least 32 readable bytes follow the last source row (true
 * for the scratch image); otherwise the last row is first copied into the
 * padded `lastrow`, as the AVX2 kernels read a few bytes past a row's last
 * window. */
static void rk_run_horizontal(int simd, int64_t channels, const uint8_t *src,
                              int64_t src_stride, int64_t rows, int src_padded, int64_t src_w,
                              uint8_t *dst, int64_t dst_w, const int32_t *bounds,
                              const int16_t *coef, int64_t taps, int64_t chunks, int32_t *xlo,
                              int16_t *xpack, uint8_t *lastrow)
{
    int64_t used = 0, loads = 1;
    const uint8_t *last = NULL;
    if (channels == 1) {
        if (simd)
            used = ffcvx_rk_pack_gray(src_w, dst_w, taps, bounds, coef, chunks, xlo,
                                      (uint8_t *)xpack, &loads);
        if (used == 0) {
            rk_horizontal_gray(src, src_stride, rows, dst, dst_w, bounds, coef, taps);
            return;
        }
        if (!src_padded) {
            memcpy(lastrow, src + (rows - 1) * src_stride, (size_t)src_w);
            memset(lastrow + src_w, 0, 32);
            last = lastrow;
        }
        ffcvx_rk_horizontal_gray_avx2(src, src_stride, rows, last, dst, dst_w,
                                      (const uint8_t *)xpack, used, loads);
        return;
    }
    if (simd)
        used = ffcvx_rk_pack_rgb(src_w, dst_w, taps, bounds, coef, chunks, xlo, xpack);
    if (used == 0) {
        rk_horizontal(src, src_stride, rows, dst, dst_w, bounds, coef, taps);
        return;
    }
    if (!src_padded) {
        memcpy(lastrow, src + (rows - 1) * src_stride, (size_t)(3 * src_w));
        memset(lastrow + 3 * src_w, 0, 16);
        last = lastrow;
    }
    ffcvx_rk_horizontal_avx2(src, src_stride, rows, last, dst, dst_w, xlo, xpack, used);
}

/* Vertical pass with the AVX2 kernel when possible, else the loop. */
static void rk_run_vertical(int simd, const uint8_t *src, int64_t src_stride, int64_t n,
                            uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                            const int32_t *bounds, const int16_t *coef, int64_t taps,
                            int32_t *acc)
{
    if (simd && n >= 32)
        ffcvx_rk_vertical_avx2(src, src_stride, n, dst, dst_stride, dst_h, bounds, coef,
                               taps);
    else
        rk_vertical(src, src_stride, n, dst, dst_stride, dst_h, bounds, coef, taps, acc);
}

/* The vertical pass treats a row as bytes whatever the channels, so a gray
 * row gets exactly the arithmetic of each channel of an RGB row. */
int ffcvx_rk_resize(const uint8_t *src, int64_t src_h, int64_t src_w, int64_t src_stride,
                    uint8_t *dst, int64_t dst_h, int64_t dst_w, uint8_t *scratch,
                    int64_t scratch_len, int channels, int allow_simd, int mirror)
{
    rk_layout lay;
    uint8_t *base, *tmp, *lastrow;
    int32_t *ybounds, *xbounds, *xlo, *acc;
    int16_t *ycoef, *xcoef, *xpack;
    int64_t y, row_bytes;
    int do_v, do_h, simd;
    if (src == NULL || dst == NULL || (channels != 1 && channels != 3))
        return FFCVX_RESIZE_BAD_ARGUMENT;
    if (!rk_sizes_ok(src_h, src_w, dst_h, dst_w) || src_stride < channels * src_w)
        return FFCVX_RESIZE_BAD_ARGUMENT;
    rk_layout_for(src_h, src_w, dst_h, dst_w, channels, &lay);
    if (scratch == NULL || scratch_len < lay.total)
        return FFCVX_RESIZE_SCRATCH_TOO_SMALL;
    base = scratch + ((ALIGN - (uintptr_t)scratch % ALIGN) % ALIGN);
    ybounds = (int32_t *)(base + lay.off_ybounds);
    ycoef = (int16_t *)(base + lay.off_ycoef);
    xbounds = (int32_t *)(base + lay.off_xbounds);
    xcoef = (int16_t *)(base + lay.off_xcoef);
    xpack = (int16_t *)(base + lay.off_xpack);
    xlo = (int32_t *)(base + lay.off_xlo);
    acc = (int32_t *)(base + lay.off_acc);
    lastrow = base + lay.off_lastrow;
    tmp = base + lay.off_tmp;
    simd = allow_simd && ffcvx_rk_have_avx2();

    do_v = src_h != dst_h;
    /* Mirroring happens in the horizontal pass, so it always runs then (at
     * unit scale its weights are single taps of 1: an exact copy). */
    do_h = src_w != dst_w || mirror;
    row_bytes = channels * src_w;
    if (!do_v && !do_h) {
        for (y = 0; y < src_h; y++)
            memcpy(dst + y * row_bytes, src + y * src_stride, (size_t)row_bytes);
        return FFCVX_RESIZE_OK;
    }
    if (do_v)
        ffcvx_rk_coefficients(src_h, dst_h, lay.taps_y, ybounds, ycoef);
    if (do_h) {
        ffcvx_rk_coefficients(src_w, dst_w, lay.taps_x, xbounds, xcoef);
        if (mirror)
            ffcvx_rk_mirror_table(dst_w, lay.taps_x, xbounds, xcoef);
    }
    if (do_v && do_h) {
        rk_run_vertical(simd, src, src_stride, row_bytes, tmp, row_bytes, dst_h, ybounds,
                        ycoef, lay.taps_y, acc);
        rk_run_horizontal(simd, channels, tmp, row_bytes, dst_h, 1, src_w, dst, dst_w, xbounds,
                          xcoef, lay.taps_x, lay.chunks_x, xlo, xpack, lastrow);
    } else if (do_v) {
        rk_run_vertical(simd, src, src_stride, row_bytes, dst, channels * dst_w, dst_h,
                        ybounds, ycoef, lay.taps_y, acc);
    } else {
        rk_run_horizontal(simd, channels, src, src_stride, dst_h, 0, src_w, dst, dst_w,
                          xbounds, xcoef, lay.taps_x, lay.chunks_x, xlo, xpack, lastrow);
    }
    return FFCVX_RESIZE_OK;
}
