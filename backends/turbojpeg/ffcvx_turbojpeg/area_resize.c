/* Streaming area downscaling; see area_resize.h for the maths. */
#include "area_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Footprint threshold below which a partial coverage is dropped (OpenCV's). */
#define FFCVX_AREA_EPS 1e-3

/* Fill tab with the coverage entries of one axis, return how many.  tab has
 * room for src + 2 * dst entries: every source pixel is wholly inside at
 * most one footprint and each footprint has at most two partial ends. */
static int build_axis(int src, int dst, ffcvx_area_entry *tab, float *sums)
{
    /* double, as OpenCV: footprint ends are exact for the ratios that occur */
    double scale = (double)src / (double)dst;
    int k = 0;
    int d, s;
    for (d = 0; d < dst; d++) {
        double f1 = d * scale;
        double f2 = f1 + scale;
        double cell = scale < src - f1 ? scale : src - f1;
        int s1 = (int)ceil(f1);
        int s2 = (int)floor(f2);
        double sum = 0.0;
        if (s2 > src - 1)
            s2 = src - 1;
        if (s1 > s2)
            s1 = s2;
        if (s1 - f1 > FFCVX_AREA_EPS) {
            tab[k].src = s1 - 1;
            tab[k].dst = d;
            tab[k].weight = (float)(s1 - f1);
            sum += s1 - f1;
            k++;
        }
        for (s = s1; s < s2; s++) {
            tab[k].src = s;
            tab[k].dst = d;
            tab[k].weight = 1.0f;
            sum += 1.0;
            k++;
        }
        if (f2 - s2 > FFCVX_AREA_EPS) {
            double w = f2 - s2 < 1.0 ? f2 - s2 : 1.0;
            if (w > cell)
                w = cell;
            tab[k].src = s2;
            tab[k].dst = d;
            tab[k].weight = (float)w;
            sum += w;
            k++;
        }
        /* a footprint always covers scale >= 1 pixels, so sum > 0 */
        sums[d] = (float)sum;
    }
    return k;
}

void ffcvx_area_free(ffcvx_area *a)
{
    free(a->xtab);
    free(a->xstart);
    free(a->xsum);
    free(a->ytab);
    free(a->ysum);
    free(a->acc);
    memset(a, 0, sizeof(*a));
}

int ffcvx_area_init(ffcvx_area *a, int src_w, int src_h, int dst_w, int dst_h, int channels)
{
    size_t row_len;
    memset(a, 0, sizeof(*a));
    if (channels < 1 || channels > 4 || dst_w < 1 || dst_h < 1
        || dst_w > src_w || dst_h > src_h || src_w > (1 << 24) || src_h > (1 << 24))
        return FFCVX_AREA_BAD_ARGUMENT;
    a->src_w = src_w;
    a->src_h = src_h;
    a->dst_w = dst_w;
    a->dst_h = dst_h;
    a->channels = channels;
    a->cur_dst_row = -1;
    row_len = (size_t)src_w * (size_t)channels;
    a->xtab = malloc(sizeof(ffcvx_area_entry) * ((size_t)src_w + 2 * (size_t)dst_w));
    a->ytab = malloc(sizeof(ffcvx_area_entry) * ((size_t)src_h + 2 * (size_t)dst_h));
    a->xsum = malloc(sizeof(float) * (size_t)dst_w);
    a->xstart = malloc(sizeof(int) * ((size_t)dst_w + 1));
    a->ysum = malloc(sizeof(float) * (size_t)dst_h);
    a->acc = calloc(row_len, sizeof(float));
    if (!a->xtab || !a->xstart || !a->ytab || !a->xsum || !a->ysum || !a->acc)
        return FFCVX_AREA_NO_MEMORY;
    a->nx = build_axis(src_w, dst_w, a->xtab, a->xsum);
    {
        int k, d = 0;
        for (k = 0; k < a->nx; k++)
            while (d <= a->xtab[k].dst)
                a->xstart[d++] = k;
        while (d <= dst_w)
            a->xstart[d++] = a->nx;
    }
    a->ny = build_axis(src_h, dst_h, a->ytab, a->ysum);
    return FFCVX_AREA_OK;
}

/* Write output row cur_dst_row from the accumulator (horizontal pass) and
 * clear the accumulator.  Each output pixel sums its own consecutive
 * entries in registers; one division by the covered area per value keeps
 * integer ratios exact, so halves round up as they should.  Hot loops use
 * local restrict pointers: through `a`, a store into a buffer could alias
 * a's own pointer fields, which blocks optimisation. */
static void flush_row(ffcvx_area *a, uint8_t *dst, ptrdiff_t dst_stride)
{
    uint8_t *restrict out = dst + (ptrdiff_t)a->cur_dst_row * dst_stride;
    float *restrict acc = a->acc;
    const ffcvx_area_entry *restrict xtab = a->xtab;
    const int *restrict xstart = a->xstart;
    const float *restrict xsum = a->xsum;
    float ysum = a->ysum[a->cur_dst_row];
    int ch = a->channels, dst_w = a->dst_w;
    int x, j, c;
    /* a weighted mean of 0..255 is >= 0, so v >= 0.5: truncation rounds */
    if (ch == 3) {
        for (x = 0; x < dst_w; x++) {
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, area = xsum[x] * ysum;
            for (j = xstart[x]; j < xstart[x + 1]; j++) {
                const float *p = acc + 3 * xtab[j].src;
                float w = xtab[j].weight;
                s0 += w * p[0];
                s1 += w * p[1];
                s2 += w * p[2];
            }
            out[3 * x] = (uint8_t)(int)fminf(s0 / area + 0.5f, 255.0f);
            out[3 * x + 1] = (uint8_t)(int)fminf(s1 / area + 0.5f, 255.0f);
            out[3 * x + 2] = (uint8_t)(int)fminf(s2 / area + 0.5f, 255.0f);
        }
    } else {
        for (x = 0; x < dst_w; x++) {
            float area = xsum[x] * ysum;
            for (c = 0; c < ch; c++) {
                float sum = 0.0f;
                for (j = xstart[x]; j < xstart[x + 1]; j++)
                    sum += xtab[j].weight * acc[ch * xtab[j].src + c];
                out[ch * x + c] = (uint8_t)(int)fminf(sum / area + 0.5f, 255.0f);
            }
        }
    }
    memset(acc, 0, sizeof(float) * (size_t)a->src_w * (size_t)ch);
}

/* acc += w * row over n values: contiguous, vectorised. */
static void accumulate(float *restrict acc, const uint8_t *restrict row, float w, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        acc[i] += w * (float)row[i];
}

int ffcvx_area_push(ffcvx_area *a, const uint8_t *src_row, uint8_t *dst, ptrdiff_t dst_stride)
{
    int sy = a->next_src_row;
    size_t n = (size_t)a->src_w * (size_t)a->channels;
    if (sy >= a->src_h)
        return FFCVX_AREA_BAD_ARGUMENT;
    /* entries are ordered by output row, and so also by source row */
    while (a->next_entry < a->ny && a->ytab[a->next_entry].src == sy) {
        const ffcvx_area_entry *e = &a->ytab[a->next_entry];
        if (e->dst != a->cur_dst_row) {
            if (a->cur_dst_row >= 0)
                flush_row(a, dst, dst_stride);
            a->cur_dst_row = e->dst;
        }
        accumulate(a->acc, src_row, e->weight, n);
        a->next_entry++;
    }
    a->next_src_row = sy + 1;
    if (a->next_src_row == a->src_h && a->cur_dst_row >= 0) {
        flush_row(a, dst, dst_stride);
        a->cur_dst_row = -1;
    }
    return FFCVX_AREA_OK;
}

int ffcvx_area_done(const ffcvx_area *a)
{
    return a->next_src_row == a->src_h && a->next_entry == a->ny;
}

int ffcvx_area_resize(const uint8_t *src, int src_w, int src_h, ptrdiff_t src_stride,
                      uint8_t *dst, int dst_w, int dst_h, ptrdiff_t dst_stride, int channels)
{
    ffcvx_area a;
    int y, status = ffcvx_area_init(&a, src_w, src_h, dst_w, dst_h, channels);
    for (y = 0; status == FFCVX_AREA_OK && y < src_h; y++)
        status = ffcvx_area_push(&a, src + (ptrdiff_t)y * src_stride, dst, dst_stride);
    if (status == FFCVX_AREA_OK && !ffcvx_area_done(&a))
        status = FFCVX_AREA_BAD_ARGUMENT;
    ffcvx_area_free(&a);
    return status;
}
