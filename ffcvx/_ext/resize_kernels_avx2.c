/* The AVX2 path of ffcvx's resize kernels: weight packing (portable C) and
 * the x86-64 AVX2 passes, selected at run time by resize_kernels.c.
 *
 * The passes compute exactly what the portable loops of resize_kernels.c
 * compute: 14-bit int16 coefficients, int32 sums, rounding by adding half,
 * arithmetic shift, saturation to 0..255. Only these functions carry the
 * avx2 target attribute, so the extension needs no -mavx2 flag and runs
 * on any x86-64 (and elsewhere, without this path). */
#include <stdint.h>
#include <string.h>

#include "resize_kernels_avx2.h"

/* One block per step g of 8 outputs (x0 = min(8g, out_size - 8)), as
 * ffcvx_rk_horizontal_gray_avx2 reads it:
 *   - int32 lane bases: the lowest lo of outputs x0 .. x0 + 3 and of
 *     x0 + 4 .. x0 + 7 (16 bytes with padding);
 *   - per load (1 or 2) the pshufb masks of the even and odd taps, 32 bytes
 *     each: for output x0 + 4L + q, bytes 4q .. 4q + 3 of lane L pick
 *     r, -, r + 2, - and r + 1, -, r + 3, - with r = lo[xx] - base counted
 *     from the load's first byte and - a zero byte (0x80);
 *   - per 4-tap chunk the int16 weight pairs (w0, w2) and (w1, w3) of each
 *     output as int32, 32 bytes each.
 * Windows as in ffcvx_rk_pack_rgb. One load per lane and chunk reaches every
 * tap when each lane's four windows start within 12 bytes of its lowest
 * start, two within 28. Returns 0 (portable loop) when the row is narrower
 * than one window or than 16 * loads pixels (loads must not pass the next
 * row), out_size < 8, or a lane's windows spread further (shrinks beyond
 * about 9x). */
int64_t ffcvx_rk_pack_gray(int64_t in_size, int64_t out_size, int64_t taps,
                           const int32_t *bounds, const int16_t *coef, int64_t chunks,
                           int32_t *lo, uint8_t *pack, int64_t *loads)
{
    int64_t xx, x0, g, q, t, j, n, start, shift, width, pos, r, idx, load, steps;
    int64_t used = 1, spread = 0, weights;
    const int16_t *k;
    uint8_t *block, *mask;
    int32_t *base, *wpair;
    uint16_t w[4];
    int32_t low[2];
    for (xx = 0; xx < out_size; xx++) {
        n = bounds[2 * xx + 1];
        if ((n + 3) / 4 > used)
            used = (n + 3) / 4;
    }
    width = 4 * used;
    if (used > chunks || in_size < width || in_size < 16 || out_size < 8)
        return 0;
    for (xx = 0; xx < out_size; xx++) {
        start = bounds[2 * xx];
        shift = start + width - in_size;
        if (shift < 0)
            shift = 0;
        lo[xx] = (int32_t)(start - shift);
    }
    steps = (out_size + 7) / 8;
    for (g = 0; g < 2 * steps; g++) {
        /* every lane's spread (mirrored tables run backwards: take min and max) */
        x0 = 8 * (g / 2) + 8 > out_size ? out_size - 8 : 8 * (g / 2);
        x0 += 4 * (g % 2);
        low[0] = lo[x0];
        low[1] = lo[x0];
        for (q = 1; q < 4; q++) {
            if (lo[x0 + q] < low[0])
                low[0] = lo[x0 + q];
            if (lo[x0 + q] > low[1])
                low[1] = lo[x0 + q];
        }
        if (low[1] - low[0] > spread)
            spread = low[1] - low[0];
    }
    *loads = spread <= 12 ? 1 : 2;
    if (spread > 28 || in_size < 16 * *loads)
        return 0;
    weights = 16 + 64 * *loads;
    for (g = 0; g < steps; g++) {
        x0 = 8 * g + 8 > out_size ? out_size - 8 : 8 * g;
        block = pack + g * (weights + 64 * used);
        base = (int32_t *)block;
        for (q = 0; q < 2; q++) {
            base[q] = lo[x0 + 4 * q];
            for (t = 1; t < 4; t++)
                if (lo[x0 + 4 * q + t] < base[q])
                    base[q] = lo[x0 + 4 * q + t];
        }
        base[2] = 0;
        base[3] = 0;
        for (q = 0; q < 8; q++) {
            xx = x0 + q;
            r = lo[xx] - base[q / 4];
            for (t = 0; t < 2; t++) {           /* tap parity: even mask, odd mask */
                for (j = 0; j < 2; j++) {       /* the two taps of that parity in a chunk */
                    idx = r + t + 2 * j;
                    for (load = 0; load < *loads; load++) {
                        mask = block + 16 + 64 * load + 32 * t + 4 * q + 2 * j;
                        pos = idx - 16 * load;
                        mask[0] = (0 <= pos && pos < 16) ? (uint8_t)pos : 0x80;
                        mask[1] = 0x80;
                    }
                }
            }
            start = bounds[2 * xx];
            n = bounds[2 * xx + 1];
            k = coef + xx * taps;
            shift = start - lo[xx];
            for (j = 0; j < used; j++) {
                for (t = 0; t < 4; t++) {
                    pos = 4 * j + t - shift;    /* index into the original taps */
                    w[t] = (0 <= pos && pos < n) ? (uint16_t)k[pos] : 0;
                }
                wpair = (int32_t *)(block + weights + 64 * j);
                /* little-endian int16 pairs: the low half meets the first picked byte */
                wpair[q] = (int32_t)(w[0] | ((uint32_t)w[2] << 16));
                wpair[8 + q] = (int32_t)(w[1] | ((uint32_t)w[3] << 16));
            }
        }
    }
    return used;
}

/* pack[xx][j] holds the 16 int16 weights of chunk j of output xx as
 * ffcvx_rk_horizontal_avx2 multiplies them: w0 w1 w0 w1 w0 w1 0 0 |
 * w2 w3 w2 w3 w2 w3 0 0. Windows moved left stay within 4 bytes of the row
 * end for the kernel's 16-byte loads. */
int64_t ffcvx_rk_pack_rgb(int64_t in_size, int64_t out_size, int64_t taps,
                          const int32_t *bounds, const int16_t *coef, int64_t chunks,
                          int32_t *lo, int16_t *pack)
{
    int64_t xx, t, j, n, start, shift, width, pos, used = 1;
    const int16_t *k;
    int16_t *dst;
    int16_t w[4];
    for (xx = 0; xx < out_size; xx++) {
        n = bounds[2 * xx + 1];
        if ((n + 3) / 4 > used)
            used = (n + 3) / 4;
    }
    width = 4 * used;
    if (used > chunks || in_size < width)
        return 0;
    for (xx = 0; xx < out_size; xx++) {
        start = bounds[2 * xx];
        n = bounds[2 * xx + 1];
        k = coef + xx * taps;
        shift = start + width - in_size;
        if (shift < 0)
            shift = 0;
        lo[xx] = (int32_t)(start - shift);
        for (j = 0; j < used; j++) {
            for (t = 0; t < 4; t++) {
                pos = 4 * j + t - shift;        /* index into the original taps */
                w[t] = (0 <= pos && pos < n) ? k[pos] : 0;
            }
            dst = pack + (xx * used + j) * 16;
            for (t = 0; t < 3; t++) {
                dst[2 * t] = w[0];
                dst[2 * t + 1] = w[1];
                dst[8 + 2 * t] = w[2];
                dst[8 + 2 * t + 1] = w[3];
            }
            dst[6] = 0;
            dst[7] = 0;
            dst[14] = 0;
            dst[15] = 0;
        }
    }
    return used;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

int ffcvx_rk_have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}

/* Vertical pass. Output row y is sum_t coef[y][t] * src row (first + t),
 * for n bytes. Pairs of input rows are byte-interleaved so that one
 * vpmaddwd does two taps for eight pixels-channels. Needs n >= 32. */
__attribute__((target("avx2")))
void ffcvx_rk_vertical_avx2(const uint8_t *src, int64_t src_stride, int64_t n,
                            uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                            const int32_t *bounds, const int16_t *coef,
                            int64_t taps)
{
    const __m256i zero = _mm256_setzero_si256();
    const __m256i half = _mm256_set1_epi32(1 << (FFCVX_RK_COEF_BITS - 1));
    int64_t y, x, t;
    for (y = 0; y < dst_h; y++) {
        const int64_t first = bounds[2 * y], count = bounds[2 * y + 1];
        const int16_t *k = coef + y * taps;
        const uint8_t *base = src + first * src_stride;
        uint8_t *out = dst + y * dst_stride;
        x = 0;
        while (x < n) {
            __m256i s0 = half, s1 = half, s2 = half, s3 = half;
            __m256i a, b, c, lo, hi;
            if (x + 32 > n)
                x = n - 32;          /* overlap the previous block */
            for (t = 0; t < count; t += 2) {
                const uint8_t *ra = base + t * src_stride + x;
                uint32_t c0 = (uint16_t)k[t], c1 = 0;
                a = _mm256_loadu_si256((const __m256i *)ra);
                if (t + 1 < count) {
                    b = _mm256_loadu_si256((const __m256i *)(ra + src_stride));
                    c1 = (uint16_t)k[t + 1];
                } else {
                    b = zero;
                }
                c = _mm256_set1_epi32((int32_t)((c1 << 16) | c0));
                lo = _mm256_unpacklo_epi8(a, b);
                hi = _mm256_unpackhi_epi8(a, b);
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, zero), c));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, zero), c));
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, zero), c));
                s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, zero), c));
            }
            s0 = _mm256_srai_epi32(s0, FFCVX_RK_COEF_BITS);
            s1 = _mm256_srai_epi32(s1, FFCVX_RK_COEF_BITS);
            s2 = _mm256_srai_epi32(s2, FFCVX_RK_COEF_BITS);
            s3 = _mm256_srai_epi32(s3, FFCVX_RK_COEF_BITS);
            /* in-lane packs undo the in-lane unpacks: bytes come out in order */
            _mm256_storeu_si256((__m256i *)(out + x),
                                _mm256_packus_epi16(_mm256_packs_epi32(s0, s1),
                                                    _mm256_packs_epi32(s2, s3)));
            x += 32;
        }
    }
}

/* One output pixel of the RGB horizontal pass (see ffcvx_rk_horizontal_avx2):
 * nchunks 4-tap chunks from p, weights c; R, G, B in bytes 0..2 of the result. */
__attribute__((target("avx2"), always_inline))
static inline __m128i rk_hpixel_avx2(const uint8_t *p, const int16_t *c,
                                     int64_t nchunks, __m256i shuf, __m128i half)
{
    __m256i acc = _mm256_madd_epi16(
        _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                            shuf),
        _mm256_loadu_si256((const __m256i *)c));
    __m128i sum;
    int64_t j;
    for (j = 1; j < nchunks; j++) {
        __m256i px = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 12 * j)));
        __m256i w = _mm256_loadu_si256((const __m256i *)(c + 16 * j));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, shuf), w));
    }
    sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    sum = _mm_srai_epi32(_mm_add_epi32(sum, half), FFCVX_RK_COEF_BITS);
    return _mm_packus_epi16(_mm_packs_epi32(sum, sum), sum);
}

/* Horizontal pass over RGB rows. For output pixel xx, chunk j covers
 * input pixels lo[xx] + 4j .. + 3, read as one 16-byte load broadcast
 * to both 128-bit lanes; the shuffle makes int16 pairs (p0, p1) of each
 * channel in the low lane and (p2, p3) in the high lane, and pack holds
 * per (xx, j) the matching 16 int16 weights
 * w0 w1 w0 w1 w0 w1 0 0 | w2 w3 w2 w3 w2 w3 0 0, so one vpmaddwd gives
 * four taps of R, G and B. A load may read 4 bytes past input pixel
 * lo + 4*nchunks - 1; the caller guarantees those bytes are readable.
 * Each pixel is stored as 4 bytes (the 4th is overwritten by the next
 * pixel), except the very last one. */
__attribute__((target("avx2")))
void ffcvx_rk_horizontal_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                              const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                              const int32_t *lo, const int16_t *pack,
                              int64_t nchunks)
{
    const __m256i shuf = _mm256_setr_epi8(
        0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
        6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
    const __m128i half = _mm_set1_epi32(1 << (FFCVX_RK_COEF_BITS - 1));
    const int64_t step = nchunks * 16;
    int64_t y, xx, end;
    uint32_t v;
    for (y = 0; y < rows; y++) {
        const uint8_t *row = (y == rows - 1 && last_row != NULL) ? last_row
                                                                 : src + y * src_stride;
        uint8_t *out = dst + y * dst_w * 3;
        end = (y == rows - 1) ? dst_w - 1 : dst_w;
        if (nchunks == 1) {
            for (xx = 0; xx < end; xx++)
                _mm_storeu_si32(out + 3 * xx,
                                rk_hpixel_avx2(row + 3 * (int64_t)lo[xx], pack + xx * 16,
                                               1, shuf, half));
        } else {
            for (xx = 0; xx < end; xx++)
                _mm_storeu_si32(out + 3 * xx,
                                rk_hpixel_avx2(row + 3 * (int64_t)lo[xx], pack + xx * step,
                                               nchunks, shuf, half));
        }
        if (end < dst_w) {
            v = (uint32_t)_mm_cvtsi128_si32(
                rk_hpixel_avx2(row + 3 * (int64_t)lo[end], pack + end * step,
                               nchunks, shuf, half));
            memcpy(out + 3 * end, &v, 3);
        }
    }
}

/* Horizontal pass over one-channel rows, eight outputs per step, one
 * output per 32-bit lane, so no horizontal sums are needed. Step g
 * writes outputs x0 = min(8g, dst_w - 8) .. x0 + 7 (the last step
 * overlaps the previous one; needs dst_w >= 8), four per 128-bit lane.
 * Its block of pack (see ffcvx_rk_pack_gray) holds two int32 lane
 * bases b0, b1 (the lowest first input pixel of each lane's outputs),
 * for each of `loads` (1 or 2) 16-byte loads the pshufb masks of the
 * even and odd taps, and per 4-tap chunk c two weight vectors. Chunk c
 * loads 16 (or 32) bytes at b0 + 4c and b1 + 4c; the masks pick for each
 * output the int16 pairs (p0, p2) and (p1, p3) of its taps 4c .. 4c + 3
 * (a byte a mask does not pick is zero, so the picks of two loads are
 * or-ed), and one vpmaddwd each multiplies them by the weight pairs
 * (w0, w2), (w1, w3). A load reads up to 16 * loads - 4 bytes past a
 * row's last window: the caller guarantees they are readable (last_row:
 * a padded copy of the last row, or NULL when the source itself is
 * padded). Same sums, rounding and saturation as the portable loop. */
__attribute__((target("avx2")))
void ffcvx_rk_horizontal_gray_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                   const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                   const uint8_t *pack, int64_t nchunks, int64_t loads)
{
    const __m256i half = _mm256_set1_epi32(1 << (FFCVX_RK_COEF_BITS - 1));
    const int64_t steps = (dst_w + 7) / 8, weights = 16 + 64 * loads;
    const int64_t block = weights + 64 * nchunks;
    int64_t y, g, c, x0;
    for (y = 0; y < rows; y++) {
        const uint8_t *row = (y == rows - 1 && last_row != NULL) ? last_row
                                                                 : src + y * src_stride;
        uint8_t *out = dst + y * dst_w;
        for (g = 0; g < steps; g++) {
            const uint8_t *p = pack + g * block;
            const int32_t *base = (const int32_t *)p;
            const __m256i even0 = _mm256_loadu_si256((const __m256i *)(p + 16));
            const __m256i odd0 = _mm256_loadu_si256((const __m256i *)(p + 48));
            const uint8_t *r0 = row + base[0], *r1 = row + base[1];
            __m256i acc = half, px, ev, od, t;
            uint32_t v0, v1;
            for (c = 0; c < nchunks; c++) {
                const uint8_t *w = p + weights + 64 * c;
                px = _mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r0 + 4 * c))),
                    _mm_loadu_si128((const __m128i *)(r1 + 4 * c)), 1);
                ev = _mm256_shuffle_epi8(px, even0);
                od = _mm256_shuffle_epi8(px, odd0);
                if (loads == 2) {
                    px = _mm256_inserti128_si256(
                        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r0 + 4 * c + 16))),
                        _mm_loadu_si128((const __m128i *)(r1 + 4 * c + 16)), 1);
                    ev = _mm256_or_si256(ev, _mm256_shuffle_epi8(
                        px, _mm256_loadu_si256((const __m256i *)(p + 80))));
                    od = _mm256_or_si256(od, _mm256_shuffle_epi8(
                        px, _mm256_loadu_si256((const __m256i *)(p + 112))));
                }
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
                    ev, _mm256_loadu_si256((const __m256i *)w)));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
                    od, _mm256_loadu_si256((const __m256i *)(w + 32))));
            }
            acc = _mm256_srai_epi32(acc, FFCVX_RK_COEF_BITS);
            /* in-lane packs: bytes 0..3 of each lane are its four outputs */
            t = _mm256_packus_epi16(_mm256_packs_epi32(acc, acc), acc);
            v0 = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(t));
            v1 = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(t, 1));
            x0 = 8 * g + 8 > dst_w ? dst_w - 8 : 8 * g;
            memcpy(out + x0, &v0, 4);
            memcpy(out + x0 + 4, &v1, 4);
        }
    }
}
#else
int ffcvx_rk_have_avx2(void) { return 0; }
void ffcvx_rk_vertical_avx2(const uint8_t *src, int64_t src_stride, int64_t n,
                            uint8_t *dst, int64_t dst_stride, int64_t dst_h,
                            const int32_t *bounds, const int16_t *coef,
                            int64_t taps) { }
void ffcvx_rk_horizontal_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                              const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                              const int32_t *lo, const int16_t *pack,
                              int64_t nchunks) { }
void ffcvx_rk_horizontal_gray_avx2(const uint8_t *src, int64_t src_stride, int64_t rows,
                                   const uint8_t *last_row, uint8_t *dst, int64_t dst_w,
                                   const uint8_t *pack, int64_t nchunks, int64_t loads) { }
#endif

