/* Filter weights of ffcvx's antialiased resize (resize_kernels.c): the
 * fixed-point triangle weights of one axis and their mirror image.
 *
 * Filter: triangle (bilinear) with its support widened by the downscale
 * factor, the family of Pillow's Image.resize(size, Image.BILINEAR). Each
 * weight is int16 with FFCVX_RK_COEF_BITS fractional bits; the weights of
 * one output pixel sum to about 1 << FFCVX_RK_COEF_BITS. Computed once per
 * resize, for each axis. */
#include <stdint.h>

#include "resize_kernels_avx2.h"
#include "resize_weights.h"

enum {
    COEF_ONE = 1 << FFCVX_RK_COEF_BITS
};

static double rk_triangle(double x)
{
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return 1.0 - x;
    return 0.0;
}

/* Fixed-point filter weights for one axis. Output i's filter is centred on
 * input coordinate (i + 0.5) * in_size / out_size (pixel centres, as in
 * Pillow), with half-width max(in_size / out_size, 1) input pixels. Writes
 * bounds[2i] = first input index, bounds[2i + 1] = number of taps and
 * coef[i * taps ..] = the weights (summing to about COEF_ONE); leading and
 * trailing taps that round to zero are dropped. */
void ffcvx_rk_coefficients(int64_t in_size, int64_t out_size, int64_t taps,
                           int32_t *bounds, int16_t *coef)
{
    const double scale = (double)in_size / (double)out_size;
    const double filterscale = scale > 1.0 ? scale : 1.0;
    const double support = filterscale;  /* the triangle's support is 1 at unit scale */
    const double inv = 1.0 / filterscale;
    double center, total, w;
    int64_t i, t, lo, hi, n, first, last;
    int32_t q;
    int16_t *c;
    for (i = 0; i < out_size; i++) {
        center = (i + 0.5) * scale;
        lo = (int64_t)(center - support + 0.5);
        if (lo < 0)
            lo = 0;
        hi = (int64_t)(center + support + 0.5);
        if (hi > in_size)
            hi = in_size;
        n = hi - lo;
        if (n > taps)
            n = taps;
        if (n < 1) {
            /* cannot happen for positive sizes; keep the kernel total anyway */
            if (lo >= in_size)
                lo = in_size - 1;
            n = 1;
        }
        c = coef + i * taps;
        total = 0.0;
        for (t = 0; t < n; t++)
            total += rk_triangle((t + lo - center + 0.5) * inv);
        if (total <= 0.0)
            total = 1.0;
        first = -1;
        last = -1;
        for (t = 0; t < n; t++) {
            w = rk_triangle((t + lo - center + 0.5) * inv);
            q = (int32_t)(w / total * COEF_ONE + 0.5);
            c[t] = (int16_t)q;
            if (q != 0) {
                if (first < 0)
                    first = t;
                last = t;
            }
        }
        if (first < 0) {
            /* all weights rounded to zero (extreme shrink): plain average */
            first = 0;
            last = n - 1;
            for (t = 0; t < n; t++)
                c[t] = (int16_t)((COEF_ONE + n / 2) / n);
        }
        if (first > 0)
            for (t = 0; t < last - first + 1; t++)
                c[t] = c[t + first];
        bounds[2 * i] = (int32_t)(lo + first);
        bounds[2 * i + 1] = (int32_t)(last - first + 1);
    }
}

/* Reverse the order of an axis' output positions in place: output i takes
 * the weights of output out_size - 1 - i, so the pass writes the exact
 * left-right mirror of the unmirrored result. */
void ffcvx_rk_mirror_table(int64_t out_size, int64_t taps, int32_t *bounds, int16_t *coef)
{
    int64_t i, j, t;
    int32_t b;
    int16_t c;
    for (i = 0; i < out_size / 2; i++) {
        j = out_size - 1 - i;
        for (t = 0; t < 2; t++) {
            b = bounds[2 * i + t];
            bounds[2 * i + t] = bounds[2 * j + t];
            bounds[2 * j + t] = b;
        }
        for (t = 0; t < taps; t++) {
            c = coef[i * taps + t];
            coef[i * taps + t] = coef[j * taps + t];
            coef[j * taps + t] = c;
        }
    }
}
