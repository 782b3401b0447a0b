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

/* The horizontal entries of each output column as one span: optional
 * partial pixels at both ends and a run of whole pixels between.  A missing
 * end gets weight 0 and a valid index, so the sum needs no branch. */
static void build_spans(const ffcvx_area_entry *tab, int n, int dst_w, ffcvx_area_span *spans)
{
    int k = 0, d;
    for (d = 0; d < dst_w; d++) {
        int first = k, last;
        ffcvx_area_span sp;
        while (k < n && tab[k].dst == d)
            k++;
        last = k - 1;                      /* a footprint has >= 1 entry */
        sp.left = sp.right = sp.start = tab[first].src;
        sp.w_left = sp.w_right = 0.0f;
        sp.count = 0;
        if (tab[first].weight != 1.0f) {
            sp.left = tab[first].src;
            sp.w_left = tab[first].weight;
            first++;
        }
        if (last >= first && tab[last].weight != 1.0f) {
            sp.right = tab[last].src;
            sp.w_right = tab[last].weight;
            last--;
        }
        if (last >= first) {
            sp.start = tab[first].src;
            sp.count = last - first + 1;
        }
        spans[d] = sp;
    }
}

void ffcvx_area_free(ffcvx_area *a)
{
    free(a->xspans);
    free(a->xsum);
    free(a->xarea);
    free(a->rowsum);
    free(a->ytab);
    free(a->ysum);
    free(a->acc);
    memset(a, 0, sizeof(*a));
}

int ffcvx_area_init(ffcvx_area *a, int src_w, int src_h, int dst_w, int dst_h, int channels)
{
    size_t row_len;
    ffcvx_area_entry *xtab;
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
    xtab = malloc(sizeof(ffcvx_area_entry) * ((size_t)src_w + 2 * (size_t)dst_w));
    a->xspans = malloc(sizeof(ffcvx_area_span) * (size_t)dst_w);
    a->xarea = malloc(sizeof(float) * (size_t)dst_w * (size_t)channels);
    a->rowsum = malloc(sizeof(float) * ((size_t)dst_w * (size_t)channels + 4));
    a->ytab = malloc(sizeof(ffcvx_area_entry) * ((size_t)src_h + 2 * (size_t)dst_h));
    a->xsum = malloc(sizeof(float) * (size_t)dst_w);
    a->ysum = malloc(sizeof(float) * (size_t)dst_h);
    /* + 4: the 4-float loads of the last RGB pixel read one float past it */
    a->acc = calloc(row_len + 4, sizeof(float));
    if (!xtab || !a->xspans || !a->xarea || !a->rowsum || !a->ytab || !a->xsum || !a->ysum || !a->acc) {
        free(xtab);
        return FFCVX_AREA_NO_MEMORY;
    }
    build_spans(xtab, build_axis(src_w, dst_w, xtab, a->xsum), dst_w, a->xspans);
    free(xtab);
    {
        size_t i;
        for (i = 0; i < (size_t)dst_w * (size_t)channels; i++)
            a->xarea[i] = a->xsum[i / (size_t)channels];
    }
    a->ny = build_axis(src_h, dst_h, a->ytab, a->ysum);
    return FFCVX_AREA_OK;
}

/* Vector of 4 floats (GCC/Clang extension): one RGB(A) pixel per add. */
typedef float ffcvx_v4f __attribute__((vector_size(16)));

static inline ffcvx_v4f load4(const float *p)
{
    ffcvx_v4f v;
    memcpy(&v, p, sizeof(v));     /* unaligned load */
    return v;
}

/* Horizontal pass for 3 or 4 interleaved channels.  A pixel's channels are
 * one 4-float load (for RGB the 4th lane is the next pixel's red, or the
 * accumulator's padding, and is ignored), so each covered source pixel
 * costs one vector add; the whole pixels of a footprint are summed in two
 * alternating accumulators to halve the dependency chain.  The order of
 * additions is fixed by this code, so every CPU writes the same bytes. */
static void sum_vec(const ffcvx_area *a)
{
    const float *restrict acc = a->acc;
    const ffcvx_area_span *restrict spans = a->xspans;
    float *restrict rowsum = a->rowsum;
    int ch = a->channels, dst_w = a->dst_w;
    int x, i;
    for (x = 0; x < dst_w; x++) {
        const ffcvx_area_span sp = spans[x];
        const float *p = acc + (ptrdiff_t)ch * sp.start;
        ffcvx_v4f even = {0.0f, 0.0f, 0.0f, 0.0f}, odd = even, sum;
        for (i = 0; i + 1 < sp.count; i += 2) {
            even += load4(p + ch * i);
            odd += load4(p + ch * (i + 1));
        }
        if (i < sp.count)
            even += load4(p + ch * i);
        sum = load4(acc + (ptrdiff_t)ch * sp.left) * sp.w_left + (even + odd)
              + load4(acc + (ptrdiff_t)ch * sp.right) * sp.w_right;
        /* for RGB the 4th lane lands on the next pixel's red, which the
         * next store overwrites (rowsum has 4 floats of padding) */
        memcpy(rowsum + ch * x, &sum, sizeof(sum));
    }
}

/* Horizontal pass for 1 or 2 channels, same order of additions per channel. */
static void sum_scalar(const ffcvx_area *a)
{
    const float *restrict acc = a->acc;
    const ffcvx_area_span *restrict spans = a->xspans;
    float *restrict rowsum = a->rowsum;
    int ch = a->channels, dst_w = a->dst_w;
    int x, c, i;
    for (x = 0; x < dst_w; x++) {
        const ffcvx_area_span sp = spans[x];
        for (c = 0; c < ch; c++) {
            const float *p = acc + (ptrdiff_t)ch * sp.start + c;
            float even = 0.0f, odd = 0.0f;
            for (i = 0; i + 1 < sp.count; i += 2) {
                even += p[ch * i];
                odd += p[ch * (i + 1)];
            }
            if (i < sp.count)
                even += p[ch * i];
            rowsum[ch * x + c] = acc[(ptrdiff_t)ch * sp.left + c] * sp.w_left + (even + odd)
                                 + acc[(ptrdiff_t)ch * sp.right + c] * sp.w_right;
        }
    }
}

/* out = sum / area rounded, over a row's n values.  One division by the
 * covered area per value (not a multiply by its inverse) keeps integer
 * ratios exact, as every sum is then an integer, so halves round up.  A
 * weighted mean of 0..255 is >= 0, so v >= 0.5 and truncation rounds; the
 * clamp only guards float noise above 255.  Vectorised (AVX2 clone). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
static void round_means(uint8_t *restrict out, const float *restrict sums,
                        const float *restrict xarea, float ysum, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        float v = sums[i] / (xarea[i] * ysum) + 0.5f;
        out[i] = (uint8_t)(int)(v > 255.0f ? 255.0f : v);
    }
}

/* Write output row cur_dst_row from the accumulator and clear it. */
static void flush_row(ffcvx_area *a, uint8_t *dst, ptrdiff_t dst_stride)
{
    if (a->channels >= 3)
        sum_vec(a);
    else
        sum_scalar(a);
    round_means(dst + (ptrdiff_t)a->cur_dst_row * dst_stride, a->rowsum, a->xarea,
                a->ysum[a->cur_dst_row], (size_t)a->dst_w * (size_t)a->channels);
    memset(a->acc, 0, sizeof(float) * (size_t)a->src_w * (size_t)a->channels);
}

/* acc += w * row over n values: contiguous, vectorised, with an AVX2 clone
 * chosen at load time where the CPU has it (same results: no FMA, see
 * setup.py's -ffp-contract=off). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
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
